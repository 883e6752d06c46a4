"""Paths and logging: the single home of the logging configuration.

Nothing is configured at import time. The entry point calls ``setup_logging()``
once; every module then logs through ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import copy
import logging
import logging.config  # ``import logging`` alone does not load it
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from . import log_context, log_queue, log_redact
from .log_handlers import DIR_MODE, FILE_MODE

# Paths
PACKAGE_DIR = Path(__file__).resolve().parent
# The checkout when installed from source (src layout), else the working directory.
BASE_DIR = PACKAGE_DIR.parents[1]
if not (BASE_DIR / "pyproject.toml").is_file():
    BASE_DIR = Path.cwd()
LOGS_DIR = BASE_DIR / "{{ cookiecutter.log_dir }}"

# Environment variables read by setup_logging().
LOG_LEVEL_ENV = "{{ cookiecutter.package_name | upper }}_LOG_LEVEL"
LOG_DIR_ENV = "{{ cookiecutter.package_name | upper }}_LOG_DIR"
RUN_ID_ENV = "{{ cookiecutter.package_name | upper }}_RUN_ID"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Handlers that write on the calling thread, so that a record is on disk before the
# logging call returns; the others are served by a background thread.
SYNCHRONOUS_HANDLERS = ("error",)
# In distributed runs, ranks other than 0 show only this and above on the console.
OTHER_RANKS_CONSOLE_LEVEL = "WARNING"

# Logging. File names are relative to the log directory; ranks other than 0 write
# their own files (info.rank1.log, ...), so no two processes share a file.
LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    # Keep loggers that modules created with getLogger(__name__) at import time.
    "disable_existing_loggers": False,
    "formatters": {
        "minimal": {"format": "%(message)s"},
{%- if cookiecutter.log_format == "json" %}
        # One JSON object per line; setup_logging() passes it the secrets to mask
        # in ``extra`` values.
        "json": {"()": f"{__package__}.log_json.JsonFormatter"},
{%- else %}
        "detailed": {
            # One line per record: line breaks in messages are escaped.
            "class": f"{__package__}.log_format.TextFormatter",
            "format": (
                "%(levelname)s %(asctime)s run=%(run_id)s rank=%(rank)s "
                "[%(filename)s:%(funcName)s:%(lineno)d] %(message)s"
            ),
        },
{%- endif %}
    },
    "filters": {
        # Adds run_id, rank and host; setup_logging() fills in the values.
        "context": {"()": f"{__package__}.log_context.ContextFilter"},
        # Masks secrets; setup_logging() adds the values of secret-looking
        # environment variables. On every handler, so other libraries' records
        # are masked too.
        "redact": {"()": f"{__package__}.log_redact.RedactFilter"},
    },
    "handlers": {
        "console": {
{%- if cookiecutter.console_style == "rich" and cookiecutter.use_tqdm %}
            # Rich on a terminal, plain text when piped; through tqdm.write always.
            "()": f"{__package__}.log_console.console_handler",
{%- elif cookiecutter.console_style == "rich" %}
            # Rich on a terminal, plain text when piped or redirected.
            "()": f"{__package__}.log_console.console_handler",
{%- elif cookiecutter.use_tqdm %}
            # Writes through tqdm.write, so that progress bars stay whole.
            "()": f"{__package__}.log_console.console_handler",
{%- else %}
            "class": "logging.StreamHandler",
{%- endif %}
            "stream": "ext://sys.stderr",
            "formatter": "minimal",
            "filters": ["redact"],
            "level": "{{ cookiecutter.console_log_level }}",
        },
        "info": {
            "class": f"{__package__}.log_handlers.LogFileHandler",
            "filename": "info.log",
            "maxBytes": {{ (cookiecutter.log_max_mb | float * 1048576) | int }},  # {{ '%g' | format(cookiecutter.log_max_mb | float) }} MiB
            "backupCount": {{ cookiecutter.log_backup_count | int }},
            "encoding": "utf-8",
            "formatter": "{{ 'json' if cookiecutter.log_format == 'json' else 'detailed' }}",
            "filters": ["context", "redact"],
            "level": "{{ cookiecutter.info_log_level }}",
        },
        "error": {
            "class": f"{__package__}.log_handlers.LogFileHandler",
            "filename": "error.log",
            "maxBytes": {{ (cookiecutter.log_max_mb | float * 1048576) | int }},  # {{ '%g' | format(cookiecutter.log_max_mb | float) }} MiB
            "backupCount": {{ cookiecutter.log_backup_count | int }},
            "encoding": "utf-8",
            "formatter": "{{ 'json' if cookiecutter.log_format == 'json' else 'detailed' }}",
            "filters": ["context", "redact"],
            "level": "{{ cookiecutter.error_log_level }}",
        },
    },
    # The root level is the overall threshold: records below it reach no handler,
    # so keep every handler level at or above it.
    "root": {
        "level": "{{ cookiecutter.log_level }}",
        "handlers": ["console", "info", "error"],
    },
    # Libraries that are chatty below WARNING, even when the root is at DEBUG.
    "loggers": {
        "asyncio": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
        "filelock": {"level": "WARNING"},
        "fsspec": {"level": "WARNING"},
        "git": {"level": "WARNING"},
        "h5py": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "matplotlib": {"level": "WARNING"},
        "numexpr": {"level": "WARNING"},
        "PIL": {"level": "WARNING"},
        "s3transfer": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}

logger = logging.getLogger(__name__)
_run: log_context.RunContext | None = None  # set by setup_logging()


def setup_logging(
    log_dir: str | os.PathLike[str] | None = None, level: str | None = None
) -> Path | None:
    """Configure logging from LOGGING_CONFIG; calling it again replaces, never adds.

    ``log_dir`` defaults to the LOG_DIR_ENV variable, then LOGS_DIR. ``level``
    defaults to the LOG_LEVEL_ENV variable; it sets the overall and console
    thresholds, the files keep theirs. Returns the log directory, or None if it
    cannot be written: logging then goes to the console only, with a warning.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    notes: list[str] = []  # logged once logging works

    if level is None:
        level = _level_from_env(notes)
    elif level.upper() not in LEVELS:
        raise ValueError(f"level={level!r} is not one of {', '.join(LEVELS)}")
    if level is not None:
        config["root"]["level"] = config["handlers"]["console"]["level"] = level.upper()

    global _run
    _run = context = log_context.detect(os.environ, RUN_ID_ENV, notes)
    config["filters"]["context"].update(
        run_id=context.run_id, rank=context.rank, host=context.host
    )
    secrets = log_redact.secrets_in(os.environ)
    config["filters"]["redact"]["secrets"] = secrets
{%- if cookiecutter.log_format == "json" %}
    config["formatters"]["json"]["secrets"] = secrets
{%- endif %}
    if context.rank != 0:
        console = config["handlers"]["console"]
        console["level"] = max(
            console["level"], OTHER_RANKS_CONSOLE_LEVEL, key=LEVELS.index
        )

    wanted = Path(log_dir or os.environ.get(LOG_DIR_ENV) or LOGS_DIR)
    directory: Path | None = wanted
    try:
        _open_log_files(config, wanted, context.rank)
    except OSError as error:
        notes.append(
            f"Cannot write log files in {wanted} ({error.strerror or error}); "
            "logging to the console only"
        )
        _drop_file_handlers(config)
        directory = None

    log_queue.stop()  # a previous setup's writer must finish before its files close
    logging.config.dictConfig(config)
    log_queue.start(logging.getLogger(), keep=SYNCHRONOUS_HANDLERS)
    log_queue.drain_on_sigterm()
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught_exception
    threading.excepthook = _log_uncaught_thread_exception
    for note in notes:
        logger.warning(note)
    return directory


def run_context() -> log_context.RunContext:
    """The run id, rank and host that setup_logging() puts on every record."""
    if _run is None:
        raise RuntimeError("setup_logging() has not been called")
    return _run


def worker_logging() -> Callable[..., None]:
    """Return an initializer that sends a worker process's logs to this process.

    Pass it as ``ProcessPoolExecutor(initializer=...)``, ``Pool(initializer=...)``
    or ``DataLoader(worker_init_fn=...)``. Forked workers do this by themselves;
    workers started with ``spawn`` or ``forkserver`` need it.
    """
    return log_queue.worker_initializer()


def _level_from_env(notes: list[str]) -> str | None:
    value = os.environ.get(LOG_LEVEL_ENV, "").strip()
    if value.upper() in LEVELS:
        return value
    if value:
        notes.append(
            f"{LOG_LEVEL_ENV}={value!r} is not one of {', '.join(LEVELS)}; ignoring it"
        )
    return None


def _open_log_files(config: dict[str, Any], directory: Path, rank: int) -> None:
    """Point file handlers into ``directory``; raise OSError if it is not writable."""
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for handler in config["handlers"].values():
        if "filename" in handler:
            path = directory / handler["filename"]
            if rank != 0:
                path = path.with_suffix(f".rank{rank}{path.suffix}")
            handler["filename"] = str(path)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))


def _drop_file_handlers(config: dict[str, Any]) -> None:
    names = [name for name, h in config["handlers"].items() if "filename" in h]
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
