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
from pathlib import Path
from types import TracebackType
from typing import Any

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
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Logging. File names are relative to the log directory.
LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    # Keep loggers that modules created with getLogger(__name__) at import time.
    "disable_existing_loggers": False,
    "formatters": {
        "minimal": {"format": "%(message)s"},
        "detailed": {
            "format": (
                "%(levelname)s %(asctime)s "
                "[%(filename)s:%(funcName)s:%(lineno)d] %(message)s"
            ),
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "minimal",
            "level": "{{ cookiecutter.console_log_level }}",
        },
        "info": {
            "class": "logging.handlers.RotatingFileHandler",
            "filename": "info.log",
            "maxBytes": {{ (cookiecutter.log_max_mb | float * 1048576) | int }},  # {{ '%g' | format(cookiecutter.log_max_mb | float) }} MiB
            "backupCount": {{ cookiecutter.log_backup_count | int }},
            "encoding": "utf-8",
            "formatter": "detailed",
            "level": "{{ cookiecutter.info_log_level }}",
        },
        "error": {
            "class": "logging.handlers.RotatingFileHandler",
            "filename": "error.log",
            "maxBytes": {{ (cookiecutter.log_max_mb | float * 1048576) | int }},  # {{ '%g' | format(cookiecutter.log_max_mb | float) }} MiB
            "backupCount": {{ cookiecutter.log_backup_count | int }},
            "encoding": "utf-8",
            "formatter": "detailed",
            "level": "{{ cookiecutter.error_log_level }}",
        },
    },
    # The root level is the overall threshold: records below it reach no handler,
    # so keep every handler level at or above it.
    "root": {
        "level": "{{ cookiecutter.log_level }}",
        "handlers": ["console", "info", "error"],
    },
}

logger = logging.getLogger(__name__)


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

    wanted = Path(log_dir or os.environ.get(LOG_DIR_ENV) or LOGS_DIR)
    directory: Path | None = wanted
    try:
        _open_log_files(config, wanted)
    except OSError as error:
        notes.append(
            f"Cannot write log files in {wanted} ({error.strerror or error}); "
            "logging to the console only"
        )
        _drop_file_handlers(config)
        directory = None

    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught_exception
    threading.excepthook = _log_uncaught_thread_exception
    for note in notes:
        logger.warning(note)
    return directory


def _level_from_env(notes: list[str]) -> str | None:
    value = os.environ.get(LOG_LEVEL_ENV, "").strip()
    if value.upper() in LEVELS:
        return value
    if value:
        notes.append(
            f"{LOG_LEVEL_ENV}={value!r} is not one of {', '.join(LEVELS)}; ignoring it"
        )
    return None


def _open_log_files(config: dict[str, Any], directory: Path) -> None:
    """Point file handlers into ``directory``; raise OSError if it is not writable."""
    directory.mkdir(parents=True, exist_ok=True)
    for handler in config["handlers"].values():
        if "filename" in handler:
            handler["filename"] = str(directory / handler["filename"])
            with open(handler["filename"], "a", encoding="utf-8"):
                pass


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
