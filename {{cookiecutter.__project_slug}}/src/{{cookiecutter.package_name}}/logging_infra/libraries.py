"""Other libraries' records, once, through this project's handlers.

Many ML libraries give their top logger a console handler of their own when
they are imported, and some also stop it propagating: their records then show
twice on the console, or never reach the log files. ``adopt()`` removes such
handlers from the loggers of ``LIBRARIES`` and lets the records propagate to
the root logger, keeping each library's levels and filters. It runs when
logging is set up, and again after every import that follows, so the order of
the imports does not matter.
"""

from __future__ import annotations

import logging
import sys
import threading

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    ModuleRun = Callable[[ModuleType], None]

# Top-level logger names; their child loggers count too. To add a library, add
# the name of its top logger (usually its import name).
LIBRARIES = frozenset(
    {
        *("lightning", "pytorch_lightning", "lightning_fabric", "torchmetrics"),
        *("transformers", "datasets", "diffusers", "huggingface_hub", "accelerate"),
        "mlflow",
    }
)
_CONSOLES = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


def adopt() -> list[str]:
    """Remove the libraries' console handlers, make their loggers propagate, and
    do it again after each later import. Returns the loggers changed now."""
    changed = _sweep()
    if not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
    return changed


_seen = 0  # loggers there were at the last sweep


def _sweep(after_import: bool = False) -> list[str]:
    global _seen
    loggers = logging.Logger.manager.loggerDict
    # Libraries add their handler when they create their loggers: an import
    # that created none has nothing to sweep (and most create none).
    if after_import and len(loggers) == _seen:
        return []
    _seen = len(loggers)
    changed = []
    # A copy: another thread may create loggers meanwhile.
    for name, logger in list(loggers.items()):
        handlers = getattr(logger, "handlers", None)  # placeholders have none
        if not handlers or name.partition(".")[0] not in LIBRARIES:
            continue
        consoles = [h for h in handlers if _is_console(h)]
        for handler in consoles:
            logger.removeHandler(handler)  # type: ignore[union-attr]
        if consoles:
            logger.propagate = True  # type: ignore[union-attr]
            changed.append(name)
    return changed


def _is_console(handler: logging.Handler) -> bool:
    """A plain handler of stdout or stderr; files and others are left alone."""
    if type(handler) is not logging.StreamHandler:
        return False
    stream = handler.stream
    if any(stream is console for console in _CONSOLES):
        return True
    try:
        return stream.fileno() in (1, 2)
    except (AttributeError, OSError, ValueError):
        return False


_imports = threading.local()  # depth of the imports under way in this thread


class _AfterImport:
    """An import hook that sweeps when the outermost import of a thread ends.

    Imports made while a module runs return at once, so the cost is one
    function call each; the outermost one runs the module and then the sweep.
    """

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if getattr(_imports, "depth", 0):
            return None  # nested: the outermost import sweeps once at its end
        _imports.depth = 1  # the other finders may import too: not through here
        try:
            for finder in sys.meta_path:
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(fullname, path, target)
                    if spec is not None:
                        break
            else:
                return None
        finally:
            _imports.depth = 0
        loader = spec.loader
        run = getattr(loader, "exec_module", None)
        # Built-in and frozen modules: their loader is a class that all share.
        if run is None or isinstance(loader, type):
            return spec
        if not getattr(run, "sweeps", False):
            loader.exec_module = _sweeping(run)  # type: ignore[method-assign,union-attr]
        return spec


def _sweeping(run: ModuleRun) -> ModuleRun:
    def exec_module(module: ModuleType) -> None:
        depth = getattr(_imports, "depth", 0)
        _imports.depth = depth + 1
        try:
            run(module)
        finally:
            _imports.depth = depth
            if not depth:
                _sweep(after_import=True)

    exec_module.sweeps = True  # type: ignore[attr-defined]
    return exec_module
