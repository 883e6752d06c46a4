"""Living with other code that configures logging: Hydra, notebooks, libraries.

- When something else replaces the root logger's handlers after set-up (Hydra's
  ``dictConfig``, ``basicConfig(force=True)``, a library), the run's files get no
  more records: one warning says so, naming that code where the stack shows it,
  and the run record keeps it (``logging_replaced_by``).
- Set up again in the same process (a notebook's setup cell run twice), logging
  goes on with the same run, unless a new one is asked for.
- IPython shows a cell's exception itself, and ``sys.excepthook`` never sees it:
  it is logged with its traceback, and the run's status at the end is the
  session's, not that of the last exception a cell showed.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path

from . import runs

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without its import time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import FrameType
    from typing import Any

logger = logging.getLogger(__name__)
# Where the program started, learnt as config is imported: before Hydra's
# ``hydra.job.chdir`` moves the working directory into its output directory.
try:
    _STARTED_IN: str | None = os.getcwd()
except OSError:  # the working directory was removed
    _STARTED_IN = None
# How the standard library's functions that replace root's handlers show on the
# stack when they close ours: (module, function) -> what to name.
_REPLACERS = {
    ("logging.config", "_clearExistingHandlers"): "logging.config.dictConfig",
    ("logging", "basicConfig"): "logging.basicConfig(force=True)",
}
_LOGGING_MODULES = ("logging", "logging.config")
FIELD = "logging_replaced_by"  # the run record's key

_kept: tuple[int, str] | None = None  # (pid, run id) that set-up started
_watch: _Watch | None = None
_shell: Any = None  # the IPython shell whose cells are watched
_log_raised: Callable[[int, str, Any], None] | None = None
_exit_hooked = False


def absolute(path: Path) -> Path:
    """``path``, a relative one taken from the directory the program started in,
    once: a later ``chdir`` (Hydra's) moves neither the files nor the record."""
    if path.is_absolute() or _STARTED_IN is None:
        return path
    return Path(_STARTED_IN, path)


def run_id_source(environ: Mapping[str, str], variable: str) -> Mapping[str, str]:
    """The environment to read the run id from: set up again in this process
    (a notebook's setup cell run twice), the run it started goes on until it
    ends (``log_run_end()``) or ``forget()`` (``new_run=True``)."""
    if _kept is None or _kept[0] != os.getpid():
        return environ
    return {**environ, variable: _kept[1]}


class _Watch(logging.Handler):
    """Put first on the root logger's list, and made after the run's handlers, so
    that whoever replaces them closes it before them (``dictConfig`` closes all
    handlers, newest first; ``basicConfig(force=True)`` root's, in order): its
    warning still reaches the run's files. It handles no record."""

    def __init__(self, ours: list[logging.Handler]) -> None:
        super().__init__(sys.maxsize)  # a level no record has
        self.ours, self.pid = ours, os.getpid()

    def emit(self, record: logging.LogRecord) -> None:
        pass

    def close(self) -> None:
        super().close()
        if _watch is self and self.pid == os.getpid():
            found = _replacer(sys._getframe(1))
            if found is not None:  # else: logging.shutdown() at exit, say
                _replaced(*found)

    def intact(self) -> bool:
        handlers = logging.getLogger().handlers
        return all(handler in handlers for handler in [self, *self.ours])


def watch(run_id: str, log_raised: Callable[[int, str, Any], None]) -> None:
    """After set-up: notice when root's handlers are replaced; in IPython, log
    what cells raise. ``log_raised(level, message, exc_info)`` logs one."""
    global _kept, _watch, _log_raised, _exit_hooked
    unwatch()
    _kept, _log_raised = (os.getpid(), run_id), log_raised
    root = logging.getLogger()
    if not _exit_hooked:  # registered after runs' exit hook, so run before it
        atexit.register(_watch_exit)
        _exit_hooked = True
    _watch = _Watch(root.handlers[:])
    root.handlers = [_watch, *root.handlers]  # addHandler() appends
    _watch_cells()


def unwatch() -> None:
    """Before set-up replaces root's handlers itself."""
    global _watch
    if _watch is not None:
        watched, _watch = _watch, None
        if watched in logging.getLogger().handlers:
            logging.getLogger().removeHandler(watched)


def run_ending() -> None:
    """The run ends (``log_run_end()``): say if its handlers were replaced
    unseen (a library that emptied root's list); the next set-up starts a new run."""
    check()
    forget()


def check() -> None:
    if _watch is not None and _watch.pid == os.getpid() and not _watch.intact():
        _replaced("code that changed the root logger's handlers")


def forget() -> None:
    """Leave the handlers and the run be: the next set-up starts a new run."""
    global _kept
    unwatch()
    _kept = None


def _replacer(frame: FrameType | None) -> tuple[str, bool] | None:
    """Who is replacing root's handlers, as the stack shows (the code that called
    the standard library's function), and whether root's list is replaced; None
    if none of those functions is on the stack."""
    found, replaced = None, True
    while frame is not None:
        module, name = str(frame.f_globals.get("__name__")), frame.f_code.co_name
        if found is None:
            found = _REPLACERS.get((module, name))
        elif module == "logging.config" and name == "fileConfig":
            found = "logging.config.fileConfig"  # which clears them as dictConfig does
        elif module == "logging.config" and name == "configure":
            # A dictConfig() without "root" (uvicorn's, say) closes every handler
            # but leaves root's list as it is: ours go on, without the writer.
            settings = getattr(frame.f_locals.get("self"), "config", None)
            replaced = not isinstance(settings, dict) or "root" in settings
        elif module not in _LOGGING_MODULES:
            where = f"{module}" if name == "<module>" else f"{module}.{name}()"
            return f"{where} line {frame.f_lineno} through {found}", replaced
        frame = frame.f_back
    return None if found is None else (found, replaced)


def _replaced(replacer: str, replaced: bool = True) -> None:
    unwatch()  # once: Hydra configures logging twice (its own, then the job's)
    if replaced:
        effect = "this run's log files get no more records"
    else:
        effect = "it closed this run's handlers, which go on without the log writer"
    logger.warning(
        "Logging was configured again by %s: %s. Call setup_logging() after it, "
        "or keep it from configuring logging (Hydra: hydra/job_logging=none, see "
        "docs/logging.md)",
        replacer,
        effect,
    )
    runs.add_info({FIELD: replacer})


def _watch_cells() -> None:
    """In IPython (a notebook's kernel), log what a cell raised with its
    traceback, and end the run when the session ends."""
    global _shell
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or shell is _shell:  # not IPython, or watched already
        return
    _shell = shell
    # An event, not set_custom_exc(): events add up, a custom handler replaces
    # the user's own, and IPython still shows the traceback as it always does.
    shell.events.register("post_run_cell", _after_cell)


def _after_cell(result: Any) -> None:
    error = result.error_in_exec
    if error is None or _log_raised is None:
        return
    traceback = error.__traceback__
    module = str(traceback.tb_frame.f_globals.get("__name__")) if traceback else ""
    if traceback and traceback.tb_next and module.startswith("IPython"):
        traceback = traceback.tb_next  # IPython's exec(): it hides it too
    if isinstance(error, KeyboardInterrupt):
        message = "Cell interrupted"
    else:
        message = "Exception in a cell"
    _log_raised(logging.ERROR, message, (type(error), error, traceback))


def _watch_exit() -> None:
    """At exit, before the run record is completed: say if the handlers were
    replaced unseen. An IPython session (a kernel) that exits by itself ran to
    its end: IPython leaves the last exception a cell showed in
    ``sys.last_exc``, which is not how the session ended."""
    check()
    if _shell is not None and _kept is not None and _kept[0] == os.getpid():
        runs.end(0)
