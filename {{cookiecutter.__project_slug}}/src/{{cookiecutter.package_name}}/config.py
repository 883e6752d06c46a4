"""Paths and logging: the single home of the logging configuration.

Read it top to bottom: the paths, ``LOGGING_CONFIG`` (plain ``dictConfig`` data),
then the functions your code calls. Change this file, not ``logging_infra/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .logging_infra import configure, runs, writer
from .logging_infra.context import RunContext

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without the slow import of typing
if TYPE_CHECKING:
    from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]  # the checkout (src layout)
if not (BASE_DIR / "pyproject.toml").is_file():  # installed: the working directory
    BASE_DIR = Path.cwd()
LOGS_DIR = BASE_DIR / "{{ cookiecutter.log_dir }}"
{%- if cookiecutter.log_layout == "per_run" %}
# A directory per run, <log dir>/<run id>/; setup_logging() keeps the newest N.
RUN_DIRS_KEPT: int | None = 20  # None: all runs share the files
{%- else %}
# None: all runs append to the same files; N: a directory per run, the newest N kept.
RUN_DIRS_KEPT: int | None = None
{%- endif %}
MAX_BYTES, BACKUP_COUNT = 10 * 1024**2, 10  # files rotate at 10 MiB, keep 10 old ones

# Environment variables read by setup_logging().
LOG_LEVEL_ENV = "{{ cookiecutter.package_name | upper }}_LOG_LEVEL"
LOG_DIR_ENV = "{{ cookiecutter.package_name | upper }}_LOG_DIR"
RUN_ID_ENV = "{{ cookiecutter.package_name | upper }}_RUN_ID"
OTHER_RANKS_CONSOLE_LEVEL = "WARNING"  # the least that ranks > 0 show on the console

# Logging. File names are relative to the log directory; ranks other than 0 write
# their own files (info.rank1.log, ...), so no two processes share a file.
INFRA = f"{__package__}.logging_infra"
LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    # Keep loggers that modules created with getLogger(__name__) at import time.
    "disable_existing_loggers": False,
    "formatters": {
        # The message alone, control characters escaped: it cannot drive a terminal.
        "minimal": {"class": f"{INFRA}.text_format.ConsoleFormatter"},
{%- if cookiecutter.log_format == "json" %}
        # One JSON object per line, with ``extra`` fields as keys of their own.
        "detailed": {"()": f"{INFRA}.json_format.JsonFormatter"},
{%- else %}
        "detailed": {
            # One line per record: line breaks and control characters escaped.
            "class": f"{INFRA}.text_format.TextFormatter",
            "format": (
                "%(levelname)s %(asctime)s run=%(run_id)s rank=%(rank)s "
                "[%(filename)s:%(funcName)s:%(lineno)d] %(message)s"
            ),
        },
{%- endif %}
    },
    "filters": {
        # Adds run_id, rank and host; setup_logging() fills in the values.
        "context": {"()": f"{INFRA}.context.ContextFilter"},
        # Masks secrets, also values of secret-looking variables of the environment.
        "redact": {"()": f"{INFRA}.redact.RedactFilter"},
    },
    "handlers": {
        "console": {
{%- if cookiecutter.console_style == "rich" %}
            "()": f"{INFRA}.console.console_handler",  # Rich on a terminal, else plain
{%- else %}
            "()": f"{INFRA}.console.console_handler",  # never breaks a progress bar
{%- endif %}
            "stream": "ext://sys.stderr",
            "formatter": "minimal",
            "filters": ["redact"],
            "level": "{{ cookiecutter.console_log_level }}",
        },
        "info": {
            "class": f"{INFRA}.files.LogFileHandler",
            "filename": "info.log",
            "maxBytes": MAX_BYTES,
            "backupCount": BACKUP_COUNT,
            "encoding": "utf-8",
            "formatter": "detailed",
            "filters": ["context", "redact"],
            "level": "{{ cookiecutter.info_log_level }}",
        },
        "error": {
            "class": f"{INFRA}.files.LogFileHandler",
            "filename": "error.log",
            "maxBytes": MAX_BYTES,
            "backupCount": BACKUP_COUNT,
            "encoding": "utf-8",
            "formatter": "detailed",
            "filters": ["context", "redact"],
            "level": "ERROR",
            "synchronous": True,  # written before error() returns, not by a thread
        },
    },
    # The least of the handlers' levels: a record below it is not even formatted.
    "root": {"level": "{{ ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'] | select('in', [cookiecutter.console_log_level, cookiecutter.info_log_level, 'ERROR']) | first }}", "handlers": ["console", "info", "error"]},
    # Libraries that are chatty below WARNING, even when the root is at DEBUG.
    "loggers": {
        name: {"level": "WARNING"}
        for name in (
            *("asyncio", "botocore", "filelock", "fsspec", "git", "h5py", "httpcore"),
            *("httpx", "matplotlib", "numexpr", "PIL", "s3transfer", "urllib3"),
        )
    },
}


def setup_logging(
    log_dir: str | Path | None = None,
    level: str | None = None,
    *,
    new_run: bool = False,
) -> Path | None:
    """Configure logging from LOGGING_CONFIG (again: replaces, never adds). ``log_dir``
    defaults to LOG_DIR_ENV, then LOGS_DIR; ``level`` (overall and console) to
    LOG_LEVEL_ENV. Called again (a notebook's cell), the run goes on until
    log_run_end() or ``new_run=True``. Returns the log directory, or None if not
    writable: console only."""
    return configure.setup(
        LOGGING_CONFIG,
        log_dir=log_dir,
        level=level,
        default_dir=LOGS_DIR,
        env=configure.EnvNames(LOG_LEVEL_ENV, LOG_DIR_ENV, RUN_ID_ENV),
        other_ranks_console_level=OTHER_RANKS_CONSOLE_LEVEL,
        run_dirs_kept=RUN_DIRS_KEPT,
        new_run=new_run,
    )


def log_run_start() -> None:
    """Log the run's start: a summary in the files, the log directory on the console."""
    configure.log_run_start()


def log_run_end(exit_code: int) -> None:
    """From a ``finally``: log finished, failed or interrupted; complete run.json."""
    configure.log_run_end(exit_code)


def run_context() -> RunContext:
    """The run id, rank and host that setup_logging() puts on every record."""
    return configure.run_context()


def add_run_info(**fields: Any) -> None:
    """Add fields to the run record (run.json), e.g. ``add_run_info(lr=0.01)``."""
    runs.add_info(fields)


def worker_logging() -> Callable[..., None]:
    """An initializer (``initializer=``, ``worker_init_fn=``) that makes a worker
    process join this run, with this process's levels: see README, Many processes."""
    return writer.worker_initializer()


def flush_logs() -> None:
    """Wait until every record logged so far is in its file."""
    writer.flush()


# A process started with spawn or forkserver imports this again but runs no setup.
configure.join_if_spawned(setup_logging, LOG_DIR_ENV)
