from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import coexist, writer

SRC_DIR = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo setup_logging() so every test starts from an unconfigured process."""
    # Tests read the files straight from the log directory they give; test_runs.py
    # and test_main.py check run directories.
    monkeypatch.setattr(config, "RUN_DIRS_KEPT", None)
    hooks = sys.excepthook, threading.excepthook
    sigterm = signal.getsignal(signal.SIGTERM)
    root = logging.getLogger()
    level = root.level
    yield
    coexist.forget()  # the next test starts a run of its own
    writer.stop()
    signal.signal(signal.SIGTERM, sigterm)
    logging.captureWarnings(False)
    sys.excepthook, threading.excepthook = hooks
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


# A test that checks INFO and WARNING records lowers the bake's levels to INFO at
# most, so that it checks the same lines whatever levels the project was made
# with (a quiet bake's WARNING, an errors-only bake's CRITICAL console). The
# statement, for the scripts of tests, after they import config:
INFO_REACHES_EVERY_SINK = """
for _entry in (config.LOGGING_CONFIG["root"], *(
    config.LOGGING_CONFIG["handlers"][name] for name in ("info", "console")
)):
    _entry["level"] = min(_entry["level"], "INFO", key=logging.getLevelName)
"""


@pytest.fixture
def info_reaches_every_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    """INFO_REACHES_EVERY_SINK, in this process."""
    handlers = config.LOGGING_CONFIG["handlers"]
    for entry in (config.LOGGING_CONFIG["root"], handlers["info"], handlers["console"]):
        lowest = min(entry["level"], "INFO", key=logging.getLevelName)
        monkeypatch.setitem(entry, "level", lowest)


@pytest.fixture
def run_python(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run Python code or ``-m`` arguments in a fresh interpreter inside tmp_path."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 60,
        stderr_closed: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, **(env or {})}
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(SRC_DIR), os.environ.get("PYTHONPATH")])
        )
        return subprocess.run(
            [sys.executable, *args],
            cwd=tmp_path,
            env=environ,
            stdout=subprocess.PIPE,
            # As under pythonw, or after 2>&-: Python sets sys.stderr to None.
            stderr=subprocess.PIPE if not stderr_closed else None,
            preexec_fn=(lambda: os.close(2)) if stderr_closed else None,
            text=True,
            timeout=timeout,
        )

    return run
