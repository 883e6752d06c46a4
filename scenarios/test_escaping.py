"""No field of a record can forge a line or put a control character in a log file:
not the message only, but the file name, the function, the logger and the thread."""

from __future__ import annotations

import logging
import re
import threading
import warnings
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra.text_format import CONTROLS

pytestmark = pytest.mark.usefixtures("info_reaches_every_sink")  # WARNING records

# How a line of the file starts: a record, or an indented line of its traceback.
{%- if cookiecutter.log_format == "json" %}
RECORD_START = re.compile('[{]"time": "')
{%- else %}
RECORD_START = re.compile(r"[A-Z]+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} |  ")
{%- endif %}
# A line break and what follows it dressed as a record, then a terminal's window
# title (OSC), a clear screen, and a right-to-left override.
FORGED = (
    "\nCRITICAL 2026-01-01 00:00:00,000 run=forged rank=0 [x.py:f:1] forged"
    "\x1b]0;owned\x07\x1b[2J\u202e"
)


def assert_one_record_per_line(path: Path, message: str) -> None:
    """The record is one line of the file, which holds no control character
    and no line that does not start a record or continue one (indented)."""
    config.flush_logs()
    text = path.read_text(encoding="utf-8")
    raw = sorted({repr(c) for c in text if c in CONTROLS and c != "\n"})
    assert raw == [], f"{path.name} holds control characters {raw}"
    lines = text.splitlines()  # at every line break a reader may see
    assert [line for line in lines if not RECORD_START.match(line)] == []
    assert len([line for line in lines if message in line]) == 1
    assert [line for line in lines if line.startswith("CRITICAL 2026-01-01")] == []


def test_a_file_name_given_to_compile_is_escaped(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    code = compile(
        "logging.getLogger('compiled').warning('from compiled code')",
        f"generated{FORGED}.py",
        "exec",
    )
    exec(code, {"logging": logging})

    assert_one_record_per_line(tmp_path / "info.log", "from compiled code")


def test_a_file_name_given_to_warn_explicit_is_escaped(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    warnings.warn_explicit("careful", UserWarning, f"plugin{FORGED}.py", 3)

    assert_one_record_per_line(tmp_path / "info.log", "UserWarning: careful")


def test_a_function_name_is_escaped(tmp_path: Path) -> None:
    def report() -> None:
        logging.getLogger("renamed").warning("from a renamed function")

    report.__code__ = report.__code__.replace(co_name=f"report{FORGED}")
    config.setup_logging(tmp_path)
    report()

    assert_one_record_per_line(tmp_path / "info.log", "from a renamed function")


{%- if cookiecutter.log_format == "json" %}


def test_a_logger_name_is_escaped(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    logging.getLogger(f"plugin{FORGED}").warning("from a strange logger")

    assert_one_record_per_line(tmp_path / "info.log", "from a strange logger")


def test_a_thread_name_is_escaped(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    thread = threading.Thread(
        target=lambda: logging.getLogger("t").warning("from a strange thread"),
        name=f"worker{FORGED}",
    )
    thread.start()
    thread.join()

    assert_one_record_per_line(tmp_path / "info.log", "from a strange thread")
{%- else %}


@pytest.fixture
def names_in_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file format with the logger's and the thread's names, as a user may
    change it."""
    formatter = dict(config.LOGGING_CONFIG["formatters"]["detailed"])
    formatter["format"] = formatter["format"].replace(
        "] %(message)s", "] %(name)s %(threadName)s: %(message)s"
    )
    monkeypatch.setitem(config.LOGGING_CONFIG["formatters"], "detailed", formatter)


@pytest.mark.usefixtures("names_in_the_format")
def test_a_logger_name_is_escaped(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    logging.getLogger(f"plugin{FORGED}").warning("from a strange logger")

    assert_one_record_per_line(tmp_path / "info.log", "from a strange logger")


@pytest.mark.usefixtures("names_in_the_format")
def test_a_thread_name_is_escaped(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    thread = threading.Thread(
        target=lambda: logging.getLogger("t").warning("from a strange thread"),
        name=f"worker{FORGED}",
    )
    thread.start()
    thread.join()

    assert_one_record_per_line(tmp_path / "info.log", "from a strange thread")
{%- endif %}
