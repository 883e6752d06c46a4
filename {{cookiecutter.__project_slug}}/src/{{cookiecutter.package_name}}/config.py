"""Paths, ``LOGGING_CONFIG`` (plain ``dictConfig`` data), then the functions your
code calls: the one home of the logging set-up. Change it, not ``logging_infra/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .logging_infra import configure, runs, {{ "tracking, " if cookiecutter.tracker != "none" }}writer
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
{%- if cookiecutter.tracker == "mlflow" %}
MLFLOW_URI = f"sqlite:///{BASE_DIR / 'mlflow.db'}"  # or MLFLOW_TRACKING_URI's server
{%- endif %}

# File names are relative to the log directory; rank 1 writes info.rank1.log, ...
INFRA = f"{__package__}.logging_infra"
LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,  # keep loggers that modules made at import
    "formatters": {  # minimal: the message alone, escaped: it cannot drive a terminal
        "minimal": {"class": f"{INFRA}.text_format.ConsoleFormatter"},
{%- if cookiecutter.log_format == "json" %}
        # One JSON object per line, with ``extra`` fields as keys of their own.
        "detailed": {"()": f"{INFRA}.json_format.JsonFormatter"},
{%- else %}
        "detailed": {  # one line per record: line breaks, control characters escaped
            "class": f"{INFRA}.text_format.TextFormatter",
            "format": (
                "%(levelname)s %(asctime)s run=%(run_id)s rank=%(rank)s "
                "[%(filename)s:%(funcName)s:%(lineno)d] %(message)s"
            ),
        },
{%- endif %}
    },
    "filters": {
        "context": {"()": f"{INFRA}.context.ContextFilter"},  # run_id, rank, host
        "redact": {"()": f"{INFRA}.redact.RedactFilter"},  # masks secrets
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
    "loggers": {  # libraries chatty below WARNING, even with the root at DEBUG
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
    """Configure logging (log_dir: LOG_DIR_ENV or LOGS_DIR; level: LOG_LEVEL_ENV); if
    again, the same run unless ``new_run``. Returns the log dir (None: console only)."""
{%- if cookiecutter.tracker == "none" %}
    return configure.setup(
{%- else %}
    directory = configure.setup(
{%- endif %}
        LOGGING_CONFIG,
        log_dir=log_dir,
        level=level,
        default_dir=LOGS_DIR,
        env=configure.EnvNames(LOG_LEVEL_ENV, LOG_DIR_ENV, RUN_ID_ENV),
        other_ranks_console_level=OTHER_RANKS_CONSOLE_LEVEL,
        run_dirs_kept=RUN_DIRS_KEPT,
        new_run=new_run,
    )
{%- if cookiecutter.tracker == "mlflow" %}
    tracking.start(RUN_DIRS_KEPT is not None, MLFLOW_URI)
    return directory
{%- elif cookiecutter.tracker == "tensorboard" %}
    tracking.start(RUN_DIRS_KEPT is not None)  # event files beside the logs
    return directory
{%- endif %}


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


def log_metrics(step: int, **values: float) -> None:
{%- if cookiecutter.tracker == "none" %}
    """Log metrics as one record in the files: ``log_metrics(epoch, loss=0.25)``."""
    configure.log_metrics(step, values)
{%- else %}
    """``log_metrics(epoch, loss=0.2)``: queued for metrics.jsonl and {{ "MLflow" if cookiecutter.tracker == "mlflow" else "TensorBoard" }}."""
    tracking.log(step, values)
{%- endif %}


def worker_logging() -> Callable[..., None]:
    """For ``initializer=`` or ``worker_init_fn=``: the worker process joins the run."""
    return writer.worker_initializer()


def flush_logs() -> None:
    """Wait until every record logged so far is in its file."""
    writer.flush()


# A process started with spawn or forkserver imports this again but runs no setup.
configure.join_if_spawned(setup_logging, LOG_DIR_ENV)
