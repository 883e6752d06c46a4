{%- set rich = cookiecutter.console_style == "rich" -%}
"""The console handler: progress bars kept whole{{ ", Rich on a terminal only" if rich }}."""

from __future__ import annotations

import io
import logging
{%- if rich %}
import re
{%- endif %}
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import {{ cookiecutter.package_name }}.logging_infra.console as console
from {{ cookiecutter.package_name }} import config
{%- if rich %}


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def text_of(output: str) -> str:
    """Output without its colours, styles and links to source files."""
    return re.sub(r"\x1b\[[0-9;]*m|\x1b\]8;[^\x1b]*\x1b\\", "", output)
{%- endif %}


def record(message: str) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"msg": message, "levelno": 30, "levelname": "WARNING"}
    )


RunPython = Callable[..., subprocess.CompletedProcess[str]]


def test_lines_go_to_standard_error_as_it_is_when_they_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.setup_logging(tmp_path)
    later = io.StringIO()  # as a Rich live display swaps it while it runs
    monkeypatch.setattr(sys, "stderr", later)
    logging.getLogger("x").critical("shown above the display")
    config.flush_logs()

    assert "shown above the display" in later.getvalue()


def test_neither_tqdm_nor_rich_is_imported_for_piped_output(
    run_python: RunPython,
) -> None:
    result = run_python(
        "-c",
        "import logging, sys\n"
        f"from {config.__name__} import setup_logging\n"
        "setup_logging('logs')\n"
        "logging.getLogger().critical('[b]piped[/b]')\n"
        "assert not {'rich', 'tqdm'} & set(sys.modules), 'imported'\n",
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == "[b]piped[/b]\n"
{%- if rich %}


def test_piped_output_is_plain_text() -> None:
    stream = io.StringIO()
    handler = console.console_handler(stream)
    handler.handle(record("[bold]as is[/bold]"))

    assert stream.getvalue() == "[bold]as is[/bold]\n"


def test_a_terminal_gets_rich_output_with_markup_left_alone() -> None:
    from rich.logging import RichHandler

    stream = Terminal()
    handler = console.console_handler(stream)
    handler.handle(record("[bold]as is[/bold]"))

    assert isinstance(handler, RichHandler)
    assert not handler.rich_tracebacks
    assert "\x1b[" in stream.getvalue()  # styled
    assert "WARNING  [bold]as is[/bold]" in text_of(stream.getvalue())


def test_a_terminal_gets_no_control_character_of_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    config.setup_logging(tmp_path)
    logging.getLogger("x").critical("a\rb\x08 \x1b]0;title\x07 \x1b[2J \x9b \u202eexe")
    config.flush_logs()

    shown = text_of(terminal.getvalue())  # Rich's own styles removed
    assert not {c for c in shown if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0} - {"\n"}
    assert "\u202e" not in shown
    escaped = ("a\\rb\\x08", "\\x1b]0;title\\x07", "\\x1b[2J", "\\x9b", "\\u202eexe")
    assert [text for text in escaped if text not in shown] == []


def test_setup_logging_uses_rich_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    config.setup_logging(tmp_path)
    logging.getLogger("x").critical("shown by rich: token=abc123")
    config.flush_logs()

    assert "CRITICAL shown by rich: token=***" in text_of(terminal.getvalue())
{%- endif %}


def visible_lines(output: str) -> list[str]:
    """What a terminal shows of each line: the text after its last carriage return."""
{%- if rich %}
    return [text_of(line.rsplit("\r", 1)[-1]) for line in output.split("\n")]
{%- else %}
    return [line.rsplit("\r", 1)[-1] for line in output.split("\n")]
{%- endif %}


def test_log_lines_do_not_break_a_progress_bar() -> None:
    tqdm = pytest.importorskip("tqdm").tqdm
    stream = {{ "Terminal()" if rich else "io.StringIO()" }}
    handler = console.console_handler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    with tqdm(total=3, desc="training", file=stream, ascii=True) as bar:
        for step in range(3):
            bar.update()
            handler.handle(record(f"step {step} done"))

    lines = visible_lines(stream.getvalue())
    for step in range(3):
        [line] = [line for line in lines if f"step {step} done" in line]
        assert "training" not in line, f"a log line broke the bar: {line!r}"
    assert "training: 100%" in lines[-2]  # the bar, drawn again under the log lines
