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
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from . import coexist, context, libraries, redact, relay, runs, writer
from .files import make_private_dirs, open_log_file
from .text_format import ConsoleFormatter

# As typing.TYPE_CHECKING: importing typing would add a third to the start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Whose functions log the run's start and end for their caller.
_CONFIG_MODULES = (__name__, f"{__name__.split('.')[0]}.config")
logger = logging.getLogger(__name__)

# Before setup(), Python's last resort handler prints warnings and above to
# stderr: masked and escaped like the console's.
if logging.lastResort is not None:
    logging.lastResort.addFilter(redact.RedactFilter())
    logging.lastResort.setFormatter(ConsoleFormatter())
_run: context.RunContext | None = None  # set by setup()
_log_dir: Path | None = None  # where setup() put the files
_started = time.monotonic()  # when the run started: setup(), or log_run_start()
_last_setup: functools.partial[Path | None] | None = None
_lock = threading.RLock()  # one setup at a time, whichever threads call it


class EnvNames:
    """Names of the environment variables that setup() reads."""

    def __init__(self, log_level: str, log_dir: str, run_id: str) -> None:
        self.log_level, self.log_dir, self.run_id = log_level, log_dir, run_id

    @property
    def writer_address(self) -> str:
        return writer_variable(self.log_dir)

    @property
    def run_dir(self) -> str:
        """Set with the writer's address: the directory of the run's files."""
        return self.log_dir.removesuffix("_DIR") + "_RUN_DIR"


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
    new_run: bool = False,
) -> Path | None:
    """Apply ``logging_config``: see ``config.setup_logging()``."""
    global _last_setup
    with _lock:
        if new_run:  # else a process set up again goes on with its run
            coexist.forget()
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

    global _run, _log_dir, _started
    _started = time.monotonic()
    environ = coexist.run_id_source(os.environ, env.run_id)  # set up again: kept
    _run = run = context.detect(environ, env.run_id, notes)
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
    wanted = coexist.absolute(wanted)  # where it started, whatever chdir follows
    directory: Path | None = wanted
    joined = _join(env.writer_address, notes)
    if joined is not None:
        context.watch_rank()
    try:
        if joined is not None:
            # The owner's files, whatever this process's own settings: it
            # writes them itself once the owner no longer reads it (relay.py).
            if run_dirs_kept is not None:
                wanted = wanted / run.run_id
            directory = wanted = Path(os.environ.get(env.run_dir) or wanted)
        elif run_dirs_kept is not None:
            directory = wanted = runs.run_directory(wanted, run, run_dirs_kept, notes)
        _open_log_files(config, wanted, run.rank, create=joined is None)
    except OSError as error:
        notes.append(
            f"Cannot write log files in {wanted} ({error.strerror or error}); "
            "logging to the console only"
        )
        files = [name for name, h in config["handlers"].items() if "filename" in h]
        _drop_handlers(config, files)
        directory = None

    coexist.unwatch()  # this replaces root's handlers: not a surprise
    logging.config.dictConfig(config)
    for handler in logging.getLogger().handlers:  # the run's start and end lines
        handler.addFilter(_on_console if handler.name == "console" else _in_files)
    libraries.adopt()  # their records once, through these handlers
    # The processes this one starts share its run, and join its writer.
    shared = {env.run_id: run.run_id}
    if directory is not None:
        shared[env.run_dir] = str(directory)
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
    _log_dir = directory
    coexist.watch(run.run_id, _log_raised)
    return directory


def run_context() -> context.RunContext:
    """The run id, rank and host that setup() put on every record."""
    if _run is None:
        raise RuntimeError("setup_logging() has not been called")
    return _run


def log_run_start() -> None:
    """Log the start of the run: its summary (command, arguments, git, Python,
    host, run record) in the files; its id and log directory on the console."""
    global _started
    _started = time.monotonic()
    run_id = run_context().run_id
    _log(_FilesOnly, logging.INFO, "%s", runs.summary())
    if _log_dir is None:
        _log(_ConsoleOnly, logging.INFO, "Run %s started", run_id)
    elif len(line := f"Run {run_id} started; logs in {_shown(_log_dir)}") <= 100:
        _log(_ConsoleOnly, logging.INFO, "%s", line)
    else:  # a long path: on a line of its own, which a terminal can fit
        _log(_ConsoleOnly, logging.INFO, "Run %s started", run_id)
        _log(_ConsoleOnly, logging.INFO, "Logs in %s", _shown(_log_dir))
    # On the screen before the run's own output: a progress bar that the run
    # starts at once would otherwise share a line with them.
    writer.flush()


def log_run_end(exit_code: int) -> None:
    """Log how the run ended and after how long, then complete the run record.

    In a ``finally`` block, an exception on its way out decides: Ctrl+C
    (KeyboardInterrupt) means interrupted, any other exception failed.
    """
    error = sys.exc_info()[1]
    if isinstance(error, SystemExit):  # sys.exit(code): not an error, its code counts
        code = error.code
        exit_code = code if isinstance(code, int) else 0 if code is None else 1
        error = None
    seconds = time.monotonic() - _started
    run_id = run_context().run_id
    if isinstance(error, KeyboardInterrupt):
        _log(None, logging.ERROR, "Run %s interrupted after %.2fs", run_id, seconds)
    elif error is None and exit_code == 0:
        _log(None, logging.INFO, "Run %s finished in %.2fs", run_id, seconds)
    else:
        _log(None, logging.ERROR, "Run %s failed after %.2fs", run_id, seconds)
    if _log_dir is not None:
        _log(_ConsoleOnly, logging.INFO, "Logs are in %s", _shown(_log_dir))
    coexist.run_ending()
    runs.end(exit_code)


def log_metrics(step: int, values: dict[str, Any]) -> None:
    """Metrics as one record in the files, "Metrics at step 3: loss=0.25", and
    in JSON files as the fields ``step`` and ``metrics`` too."""
    text = " ".join(
        f"{name}={float.__repr__(value) if isinstance(value, float) else value}"
        for name, value in values.items()
    )
    extra = {"step": step, "metrics": values}
    _log(_FilesOnly, logging.INFO, "Metrics at step %d: %s", step, text, extra=extra)


class _ConsoleOnly(logging.LogRecord):
    """A record that only the console shows: where the logs are, say."""


class _FilesOnly(logging.LogRecord):
    """A record that only the files keep: the run's summary, say."""


def _on_console(record: logging.LogRecord) -> bool:
    return type(record) is not _FilesOnly


def _in_files(record: logging.LogRecord) -> bool:
    return type(record) is not _ConsoleOnly


def _log(
    kind: type[logging.LogRecord] | None,
    level: int,
    msg: str,
    *args: Any,
    extra: dict[str, Any] | None = None,
) -> None:
    """Log as the code that called config's function would, from its module's
    logger and at its line; only to the console or the files if ``kind`` says so."""
    frame = sys._getframe(1)
    while frame.f_back and frame.f_globals.get("__name__") in _CONFIG_MODULES:
        frame = frame.f_back
    log = logging.getLogger(frame.f_globals.get("__name__"))
    if not log.isEnabledFor(level):
        return
    where = (frame.f_code.co_filename, frame.f_lineno)
    record = (kind or logging.LogRecord)(
        log.name, level, *where, msg, args, None, frame.f_code.co_name
    )
    record.__dict__.update(extra or {})
    log.handle(record)


def _shown(path: Path) -> str:
    """``path`` as short as a console line can name it: from the working
    directory if it is in it, else from the home directory, else whole."""
    with contextlib.suppress(OSError):  # the working directory was removed
        path = Path(os.path.abspath(path))
        with contextlib.suppress(ValueError):
            return str(path.relative_to(Path.cwd()))
    with contextlib.suppress(ValueError, RuntimeError):  # RuntimeError: no home
        return f"~{os.sep}{path.relative_to(Path.home())}"
    return str(path)


def last_setup() -> Callable[[], Path | None]:
    """setup() again, as it was last called: what a spawned worker runs."""
    if _last_setup is None:
        raise RuntimeError("setup_logging() has not been called")
    return _last_setup


def run_environment() -> dict[str, str]:
    """The variables that make a process join this run: its writer, its id and
    the directory of its files."""
    if _last_setup is None:
        raise RuntimeError("setup_logging() has not been called")
    env: EnvNames = _last_setup.keywords["env"]
    names = (env.writer_address, env.run_id, env.run_dir)
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


def _join(variable: str, notes: list[str]) -> socket.socket | None:
    """A connection to the process that writes this run's files, if there is one."""
    address = os.environ.get(variable)
    if not address:
        return None
    try:
        return relay.connect(address)
    except OSError as error:
        notes.append(
            f"{variable} names no log writer this process can use ({error}); "
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
    if issubclass(exc_type, KeyboardInterrupt):  # Ctrl+C: a request, not a crash
        _log_raised(logging.ERROR, "Interrupted", (exc_type, exc_value, traceback))
    else:
        exc_info = (exc_type, exc_value, traceback)
        _log_raised(logging.CRITICAL, "Uncaught exception", exc_info)


def _log_uncaught_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:  # as the default hook: exiting a thread is silent
        return
    thread = args.thread.name if args.thread else "unknown"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    _log_raised(logging.CRITICAL, f"Uncaught exception in thread {thread}", exc_info)


def _log_raised(level: int, message: str, exc_info: Any) -> None:
    """Log an exception with its traceback, located where it was raised: at the
    file, function and line of the traceback's last frame, not in this module."""
    if not logger.isEnabledFor(level):
        return
    last = exc_info[2]
    while last is not None and last.tb_next is not None:
        last = last.tb_next
    if last is None:  # no frame to name
        logger.log(level, "%s", message, exc_info=exc_info)
        return
    code = last.tb_frame.f_code
    # None (-1 on Python 3.10) where the interpreter knows no line: Ctrl+C
    # between two of them, say. The function's first line then.
    line = last.tb_lineno
    if line is None or line < 0:
        line = code.co_firstlineno
    record = logger.makeRecord(
        logger.name,
        level,
        code.co_filename,
        line,
        "%s",
        (message,),
        exc_info,
        func=code.co_name,
    )
    logger.handle(record)
