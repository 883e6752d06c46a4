"""What ``config.setup_logging()`` does with LOGGING_CONFIG.

Reads the environment, points the file handlers into the log directory (or drops
them when it cannot be written), applies the dictionary with ``dictConfig``,
moves the slow handlers behind the background writer, logs warnings and
uncaught exceptions, and starts the run record.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import logging.config  # ``import logging`` alone does not load it
import os
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from . import context, libraries, redact, relay, runs, writer
from .files import make_private_dirs, open_log_file
from .text_format import ConsoleFormatter

# As typing.TYPE_CHECKING: importing typing would add a third to the start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
logger = logging.getLogger(__name__)

# Before setup(), Python's last resort handler prints warnings and above to
# stderr: masked and escaped like the console's.
if logging.lastResort is not None:
    logging.lastResort.addFilter(redact.RedactFilter())
    logging.lastResort.setFormatter(ConsoleFormatter())
_run: context.RunContext | None = None  # set by setup()
_last_setup: functools.partial[Path | None] | None = None
_lock = threading.RLock()  # one setup at a time, whichever threads call it


class EnvNames:
    """Names of the environment variables that setup() reads."""

    def __init__(self, log_level: str, log_dir: str, run_id: str) -> None:
        self.log_level, self.log_dir, self.run_id = log_level, log_dir, run_id

    @property
    def writer_address(self) -> str:
        return writer_variable(self.log_dir)


def writer_variable(log_dir_env: str) -> str:
    """Set by the process that writes the files, for those it starts."""
    return log_dir_env.removesuffix("_DIR") + "_WRITER"


def setup(
    logging_config: dict[str, Any],
    *,
    log_dir: str | os.PathLike[str] | None,
    level: str | None,
    default_dir: Path,
    env: EnvNames,
    other_ranks_console_level: str,
    run_dirs_kept: int | None = None,
) -> Path | None:
    """Apply ``logging_config``: see ``config.setup_logging()``."""
    global _last_setup
    with _lock:
        _last_setup = functools.partial(
            setup,
            logging_config,
            log_dir=log_dir,
            level=level,
            default_dir=default_dir,
            env=env,
            other_ranks_console_level=other_ranks_console_level,
            run_dirs_kept=run_dirs_kept,
        )
        return _setup(
            copy.deepcopy(logging_config),
            log_dir,
            level,
            default_dir,
            env,
            other_ranks_console_level,
            run_dirs_kept,
        )


def _setup(
    config: dict[str, Any],
    log_dir: str | os.PathLike[str] | None,
    level: str | None,
    default_dir: Path,
    env: EnvNames,
    other_ranks_console_level: str,
    run_dirs_kept: int | None,
) -> Path | None:
    notes: list[str] = []  # logged once logging works
    # A previous setup's writer finishes before its files close, and gives back
    # the environment it set: this setup starts a run of its own.
    writer.stop()

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
    console = config["handlers"].get("console", {})
    if run.rank != 0:
        console["level"] = max(
            console["level"], other_ranks_console_level, key=LEVELS.index
        )
    elif not context.rank_is_known() and console:
        # Processes started from this one may learn a rank > 0 only later.
        config["filters"]["other_ranks"] = {
            "()": context.OtherRanksFilter,
            "level": other_ranks_console_level,
        }
        console["filters"] = [*console.get("filters", []), "other_ranks"]

    if closed := _without_stream(config):  # pythonw, or stderr closed with 2>&-
        notes.append(f"No stream to write to: logging without {', '.join(closed)}")
        _drop_handlers(config, closed)
    wanted = Path(log_dir or os.environ.get(env.log_dir) or default_dir)
    directory: Path | None = wanted
    joined = _join(env.writer_address, run.rank, notes)
    if joined is not None:
        context.watch_rank()
    try:
        if run_dirs_kept is not None and joined is None:
            directory = wanted = runs.run_directory(wanted, run, run_dirs_kept, notes)
        elif run_dirs_kept is not None:  # the owner made it: only name it here
            directory = wanted = wanted / run.run_id
        _open_log_files(config, wanted, run.rank, create=joined is None)
    except OSError as error:
        notes.append(
            f"Cannot write log files in {wanted} ({error.strerror or error}); "
            "logging to the console only"
        )
        files = [name for name, h in config["handlers"].items() if "filename" in h]
        _drop_handlers(config, files)
        directory = None

    logging.config.dictConfig(config)
    libraries.adopt()  # their records once, through these handlers
    # The processes this one starts share its run id, and join its writer.
    shared = {env.run_id: run.run_id}
    writer.start(logging.getLogger(), env.writer_address, run.rank, joined, shared)
    writer.drain_on_sigterm()
    logging.captureWarnings(True)  # and captureWarnings(False) undoes this:
    warnings.showwarning = _log_warning
    sys.excepthook = _log_uncaught_exception
    threading.excepthook = _log_uncaught_thread_exception
    for note in notes:
        logger.warning(note)
    per_run = run_dirs_kept is not None
    path = directory and runs.record_path(directory, run, per_run)
    owner = run.rank == 0 and joined is None  # joined processes are not the run
    runs.start(path if owner else None, run, config, directory)
    return directory


def run_context() -> context.RunContext:
    """The run id, rank and host that setup() put on every record."""
    if _run is None:
        raise RuntimeError("setup_logging() has not been called")
    return _run


def last_setup() -> Callable[[], Path | None]:
    """setup() again, as it was last called: what a spawned worker runs."""
    if _last_setup is None:
        raise RuntimeError("setup_logging() has not been called")
    return _last_setup


def run_environment() -> dict[str, str]:
    """The variables that make a process join this run: its writer and its id."""
    if _last_setup is None:
        raise RuntimeError("setup_logging() has not been called")
    env: EnvNames = _last_setup.keywords["env"]
    names = (env.writer_address, env.run_id)
    return {name: os.environ[name] for name in names if name in os.environ}


def join_if_spawned(setup_logging: Callable[[], object], log_dir_env: str) -> None:
    """Make a process that multiprocessing starts with spawn or forkserver join
    the run, if this one belongs to it: such a process imports the config module
    again (your script, as ``__mp_main__``) but never runs its setup_logging().
    It joins with LOGGING_CONFIG as imported: changes that your script makes to
    it later reach such a process only through ``config.worker_logging()``."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None or writer_variable(log_dir_env) not in os.environ:
        return

    def join(_: object = None) -> None:
        if _run is None:  # not set up yet; a forked child has its parent's setup
            setup_logging()
            writer.send_before_exit()  # a worker ends without running atexit

    if multiprocessing.current_process().name != "MainProcess":
        join()  # a spawned process, importing your script or your workers' module
    else:
        # A forkserver imports your script once, and its children join as they
        # start (from a fork of it: they import nothing again).
        from multiprocessing import util

        util.register_after_fork(logger, join)  # which holds a weak reference


def _join(variable: str, rank: int, notes: list[str]) -> socket.socket | None:
    """A connection to the process that writes this run's files, if there is one."""
    address = os.environ.get(variable)
    if not address:
        return None
    try:
        return relay.connect(address, rank)
    except OSError as error:
        notes.append(
            f"{variable} names no running log writer ({error}); "
            "this process writes its own log files"
        )
        del os.environ[variable]
        return None


def _level_from_env(variable: str, notes: list[str]) -> str | None:
    value = os.environ.get(variable, "").strip()
    if value.upper() in LEVELS:
        return value
    if value:
        notes.append(
            f"{variable}={value!r} is not one of {', '.join(LEVELS)}; ignoring it"
        )
    return None


def _open_log_files(
    config: dict[str, Any], directory: Path, rank: int, create: bool
) -> None:
    """Point file handlers into ``directory``; raise OSError if it is not writable.

    Without ``create`` the handlers only format: another process writes.
    """
    if create:
        make_private_dirs(directory)
    for handler in config["handlers"].values():
        if "filename" in handler:
            path = directory / handler["filename"]
            if rank != 0:
                path = path.with_suffix(f".rank{rank}{path.suffix}")
            handler["filename"] = str(path)
            if not create:
                handler["delay"] = True
                continue
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


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """As ``logging.captureWarnings()``, but the record points at the code that
    warned, not at the warnings module."""
    if file is not None:  # showwarning() asked for a file: no logging
        with contextlib.suppress(OSError):
            file.write(
                warnings.formatwarning(message, category, filename, lineno, line)
            )
        return
    warnings_logger = logging.getLogger("py.warnings")
    if not warnings_logger.isEnabledFor(logging.WARNING):
        return
    frame = sys._getframe(1)
    while frame and (frame.f_code.co_filename, frame.f_lineno) != (filename, lineno):
        frame = frame.f_back  # type: ignore[assignment]
    record = warnings_logger.makeRecord(
        warnings_logger.name,
        logging.WARNING,
        filename,
        lineno,
        "%s: %s",
        (category.__name__, message),
        None,
        func=frame.f_code.co_name if frame else None,
    )
    warnings_logger.handle(record)


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
