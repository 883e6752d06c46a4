"""The logging setups under test, each behind one ``setup(log_dir)`` function.

Every setup imports what it needs inside the function, so that the ``startup``
figure (import plus configuration) is measured from the same starting point for
all of them. Each returns a ``Setup``: the logger the workload calls, the message
templates in that library's own style, and the call that flushes and closes
everything (the library's shutdown).

Keep this module free of top-level imports beyond ``os`` and ``sys`` (which the
interpreter has loaded anyway): the measuring process imports it before the clock
starts, and anything imported here would be missing from the ``startup`` figures.
"""

from __future__ import annotations

import os
import sys

# The workload's messages. ``RUN`` is a per-process id, ``i`` the record number:
# counting "<RUN> step <i> loss" in the log files finds lost records.
PERCENT = ("step %d loss %.4f", "%s step %d loss %.4f")
BRACES = ("step {} loss {:.4f}", "{} step {} loss {:.4f}")

# The article (Made With ML, config.py), as written.
MINIMAL = "%(message)s"
DETAILED = (
    "%(levelname)s %(asctime)s [%(name)s:%(filename)s:%(funcName)s:%(lineno)d]\n"
    "%(message)s\n"
)
MAX_BYTES = 10485760
BACKUP_COUNT = 10


class Setup:
    """What the workload needs from a configured library."""

    __slots__ = ("debug_template", "info_template", "log", "shutdown")

    def __init__(
        self, log: object, debug_template: str, info_template: str, shutdown: object
    ) -> None:
        self.log = log  # has .debug(template, *args) and .info(template, *args)
        self.debug_template = debug_template  # arguments: i, x
        self.info_template = info_template  # arguments: run id, i, x
        self.shutdown = shutdown  # flushes and closes every sink


def article(log_dir: str) -> Setup:
    """Console (stdout, DEBUG) + info.log + error.log, rotating, dictConfig.

    As the article's config.py does it, paths included (pathlib, mkdir); its
    imports that are not about logging (mlflow, rich, pretty_errors) are left out.
    """
    import logging
    import logging.config
    from pathlib import Path

    logs_dir = Path(log_dir)
    logs_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "minimal": {"format": MINIMAL},
            "detailed": {"format": DETAILED},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": sys.stdout,
                "formatter": "minimal",
                "level": logging.DEBUG,
            },
            "info": {
                "class": "logging.handlers.RotatingFileHandler",
                "filename": Path(logs_dir, "info.log"),
                "maxBytes": MAX_BYTES,
                "backupCount": BACKUP_COUNT,
                "formatter": "detailed",
                "level": logging.INFO,
            },
            "error": {
                "class": "logging.handlers.RotatingFileHandler",
                "filename": Path(logs_dir, "error.log"),
                "maxBytes": MAX_BYTES,
                "backupCount": BACKUP_COUNT,
                "formatter": "detailed",
                "level": logging.ERROR,
            },
        },
        "root": {
            "handlers": ["console", "info", "error"],
            "level": logging.INFO,
            "propagate": True,
        },
    }
    logging.config.dictConfig(config)
    return Setup(logging.getLogger("bench"), *PERCENT, logging.shutdown)


def floor(log_dir: str) -> Setup:
    """One plain FileHandler (info.log, the article's detailed format), no console."""
    import logging

    handler = logging.FileHandler(os.path.join(log_dir, "info.log"))
    handler.setFormatter(logging.Formatter(DETAILED))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return Setup(logging.getLogger("bench"), *PERCENT, logging.shutdown)


def project(log_dir: str, package: str) -> Setup:
    """The generated project: only ``setup_logging(log_dir)`` is relied on."""
    import importlib

    config = importlib.import_module(f"{package}.config")
    config.setup_logging(log_dir)
    import logging  # already imported by the config module

    return Setup(logging.getLogger(f"{package}.bench"), *PERCENT, logging.shutdown)


def loguru(log_dir: str) -> Setup:
    """loguru with the article's three sinks (console, two rotating files)."""
    from loguru import logger

    detailed = (
        "{level} {time:YYYY-MM-DD HH:mm:ss,SSS} [{name}:{file}:{function}:{line}]\n"
        "{message}\n"
    )
    logger.remove()
    # The article's console handler is at DEBUG under an INFO root: INFO in effect.
    logger.add(sys.stdout, format="{message}", level="INFO")
    for name, level in (("info", "INFO"), ("error", "ERROR")):
        logger.add(
            os.path.join(log_dir, f"{name}.log"),
            format=detailed,
            level=level,
            rotation=MAX_BYTES,
            retention=BACKUP_COUNT,
        )

    def shutdown() -> None:
        logger.complete()
        logger.remove()

    return Setup(logger, *BRACES, shutdown)


def structlog(log_dir: str) -> Setup:
    """structlog front end, rendering through the article's stdlib handlers.

    A level-filtering bound logger formats the message; the stdlib handlers and
    formatters are exactly the article's (structlog's stdlib logger factory keeps
    the caller's file, function and line correct).
    """
    import logging

    import structlog as sl

    article(log_dir)

    def render(_logger: object, _name: str, event: dict[str, object]) -> str:
        message = str(event.pop("event"))
        extra = " ".join(f"{key}={value!r}" for key, value in event.items())
        return f"{message} {extra}" if extra else message

    sl.configure(
        processors=[sl.contextvars.merge_contextvars, render],
        wrapper_class=sl.make_filtering_bound_logger(logging.INFO),
        logger_factory=sl.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    return Setup(sl.get_logger("bench"), *PERCENT, logging.shutdown)


def setup(kind: str, log_dir: str, package: str | None = None) -> Setup:
    if kind == "project":
        if not package:
            raise ValueError("the project configuration needs a package name")
        return project(log_dir, package)
    setups = {
        "article": article,
        "floor": floor,
        "loguru": loguru,
        "structlog": structlog,
    }
    return setups[kind](log_dir)
