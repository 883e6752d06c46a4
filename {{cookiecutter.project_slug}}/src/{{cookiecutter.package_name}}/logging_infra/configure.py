"""What ``config.setup_logging()`` does with LOGGING_CONFIG.

Reads the environment, points the file handlers into the log directory (or drops
them when it cannot be written), applies the dictionary with ``dictConfig``,
moves the slow handlers behind the background writer and logs warnings and
uncaught exceptions.
"""

from __future__ import annotations

import copy
import logging
import logging.config  # ``import logging`` alone does not load it
import os
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from . import context, redact, writer
from .files import make_private_dirs, open_log_file
from .text_format import ConsoleFormatter

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
logger = logging.getLogger(__name__)

# Before setup(), Python's last resort handler prints warnings and above to
# stderr: masked and escaped like the console's.
if logging.lastResort is not None:
    logging.lastResort.addFilter(redact.RedactFilter())
    logging.lastResort.setFormatter(ConsoleFormatter())
_run: context.RunContext | None = None  # set by setup()


class EnvNames(NamedTuple):
    """Names of the environment variables that setup() reads."""

    log_level: str
    log_dir: str
    run_id: str


def setup(
    logging_config: dict[str, Any],
    *,
    log_dir: str | os.PathLike[str] | None,
    level: str | None,
    default_dir: Path,
    env: EnvNames,
    other_ranks_console_level: str,
) -> Path | None:
    """Apply ``logging_config``: see ``config.setup_logging()``."""
    config = copy.deepcopy(logging_config)
    notes: list[str] = []  # logged once logging works

    if level is None:
        level = _level_from_env(env.log_level, notes)
    elif level.upper() not in LEVELS:
        raise ValueError(f"level={level!r} is not one of {', '.join(LEVELS)}")
    if level is not None:
        config["root"]["level"] = config["handlers"]["console"]["level"] = level.upper()

    global _run
    _run = run = context.detect(os.environ, env.run_id, notes)
    config["filters"]["context"].update(run_id=run.run_id, rank=run.rank, host=run.host)
    redact.use_secrets(redact.secrets_in(os.environ))
    if run.rank != 0:
        console = config["handlers"]["console"]
        console["level"] = max(
            console["level"], other_ranks_console_level, key=LEVELS.index
        )

    if closed := _without_stream(config):  # pythonw, or stderr closed with 2>&-
        notes.append(f"No stream to write to: logging without {', '.join(closed)}")
        _drop_handlers(config, closed)
    wanted = Path(log_dir or os.environ.get(env.log_dir) or default_dir)
    directory: Path | None = wanted
    try:
        _open_log_files(config, wanted, run.rank)
    except OSError as error:
        notes.append(
            f"Cannot write log files in {wanted} ({error.strerror or error}); "
            "logging to the console only"
        )
        files = [name for name, h in config["handlers"].items() if "filename" in h]
        _drop_handlers(config, files)
        directory = None

    writer.stop()  # a previous setup's writer must finish before its files close
    logging.config.dictConfig(config)
    writer.start(logging.getLogger())
    writer.drain_on_sigterm()
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught_exception
    threading.excepthook = _log_uncaught_thread_exception
    for note in notes:
        logger.warning(note)
    return directory


def run_context() -> context.RunContext:
    """The run id, rank and host that setup() put on every record."""
    if _run is None:
        raise RuntimeError("setup_logging() has not been called")
    return _run


def _level_from_env(variable: str, notes: list[str]) -> str | None:
    value = os.environ.get(variable, "").strip()
    if value.upper() in LEVELS:
        return value
    if value:
        notes.append(
            f"{variable}={value!r} is not one of {', '.join(LEVELS)}; ignoring it"
        )
    return None


def _open_log_files(config: dict[str, Any], directory: Path, rank: int) -> None:
    """Point file handlers into ``directory``; raise OSError if it is not writable."""
    make_private_dirs(directory)
    for handler in config["handlers"].values():
        if "filename" in handler:
            path = directory / handler["filename"]
            if rank != 0:
                path = path.with_suffix(f".rank{rank}{path.suffix}")
            handler["filename"] = str(path)
            try:
                os.close(open_log_file(path))
            except OSError as error:
                if path.is_symlink():
                    error.strerror = f"{path.name} is a symbolic link, never followed"
                raise


def _without_stream(config: dict[str, Any]) -> list[str]:
    """The handlers of a standard stream that is None."""
    return [
        name
        for name, handler in config["handlers"].items()
        if str(handler.get("stream")).startswith("ext://sys.")
        and getattr(sys, handler["stream"].removeprefix("ext://sys."), None) is None
    ]


def _drop_handlers(config: dict[str, Any], names: list[str]) -> None:
    for name in names:
        del config["handlers"][name]
    for user in [config["root"], *config.get("loggers", {}).values()]:
        user["handlers"] = [h for h in user.get("handlers", []) if h not in names]


def _log_uncaught_exception(
    exc_type: type[BaseException],
    exc_value: BaseException,
    traceback: TracebackType | None,
) -> None:
    if issubclass(exc_type, KeyboardInterrupt):  # Ctrl+C is a request, not a crash
        sys.__excepthook__(exc_type, exc_value, traceback)
        return
    logger.critical("Uncaught exception", exc_info=(exc_type, exc_value, traceback))


def _log_uncaught_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:  # as the default hook: exiting a thread is silent
        return
    thread = args.thread.name if args.thread else "unknown"
    logger.critical("Uncaught exception in thread %s", thread, exc_info=args.exc_value)
