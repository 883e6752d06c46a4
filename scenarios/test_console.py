{%- set rich = cookiecutter.console_style == "rich" -%}
"""The console handler: progress bars kept whole{{ ", Rich on a terminal only" if rich }}."""

from __future__ import annotations

import io
import logging
import multiprocessing
{%- if rich %}
import os
import re
{%- endif %}
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import {{ cookiecutter.package_name }}
import {{ cookiecutter.package_name }}.logging_infra.console as console
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import writer
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
PACKAGE = {{ cookiecutter.package_name }}.__name__


def test_lines_go_to_standard_error_as_it_is_when_they_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.setup_logging(tmp_path)
    later = io.StringIO()  # as a Rich live display swaps it while it runs
    monkeypatch.setattr(sys, "stderr", later)
    logging.getLogger("x").critical("shown above the display")
    config.flush_logs()

    assert "shown above the display" in later.getvalue()


class CountedStream(io.StringIO):
    """Standard error as a test sees it: what was written, and in how many writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def held_writer(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """A handler on the writer thread that holds it until the event is set."""
    release = threading.Event()

    class Gate(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            release.wait(timeout=30)

    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"], "gate", {"()": Gate})
    handlers = [*config.LOGGING_CONFIG["root"]["handlers"], "gate"]
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "handlers", handlers)
    return release


def test_a_burst_reaches_the_console_in_a_few_writes_every_line_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held_writer: threading.Event
) -> None:
    stream = CountedStream()
    monkeypatch.setattr(sys, "stderr", stream)
    config.setup_logging(tmp_path)
    log = logging.getLogger("burst")
    log.critical("hold")
    for number in range(1000):  # queued while the gate holds the writer
        log.critical("line %04d", number)
    stream.writes = 0
    held_writer.set()
    config.flush_logs()

    burst = [line for line in stream.getvalue().splitlines() if "line " in line]
    assert [line[-9:] for line in burst] == [f"line {n:04d}" for n in range(1000)]
    assert stream.writes <= 2, stream.writes  # the flush every 1024, the last one

    writer.stop()  # without the writer thread, each line is written as it comes
    log.critical("after the writer")
    assert stream.getvalue().endswith("after the writer\n")


def log_and_shut_down() -> None:
    logging.getLogger("child").critical("from the child")
    logging.shutdown()  # flushes every handler of the process, the parent's too


@pytest.mark.skipif(sys.platform == "win32", reason="no fork")
def test_a_forked_child_never_writes_console_lines_its_parent_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held_writer: threading.Event
) -> None:
    console_file = tmp_path / "console.txt"
    stream = console_file.open("w", encoding="utf-8", buffering=1)  # shared by both
    monkeypatch.setattr(sys, "stderr", stream)
    config.setup_logging(tmp_path / "logs")
    logging.getLogger("parent").critical("held by the parent")  # the gate holds it

    child = multiprocessing.get_context("fork").Process(target=log_and_shut_down)
    child.start()
    child.join(timeout=60)
    held_writer.set()
    config.flush_logs()
    stream.close()

    assert child.exitcode == 0
    lines = console_file.read_text(encoding="utf-8").splitlines()
    assert sum("held by the parent" in line for line in lines) == 1
    assert sum("from the child" in line for line in lines) == 1


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


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_rich_at_80_columns_keeps_paths_whole_and_the_text_uncoloured(
    tmp_path: Path,
) -> None:
    pyte = pytest.importorskip("pyte")
    output = on_a_terminal(tmp_path, 80, "-m", PACKAGE, "--epochs", "2")
    screen = pyte.Screen(80, 40)
    pyte.ByteStream(screen).feed(output)
    rows = [row.rstrip() for row in screen.display if row.strip()]

    [start] = [row for row in rows if " started" in row]
    assert re.match(r"\d\d:\d\d:\d\d INFO ", start), rows  # the time as HH:MM:SS
    logs = next(tmp_path.joinpath("logs").rglob("info.log")).parent
    shown = str(logs.relative_to(tmp_path))  # as the console names it
    assert any(f" {shown} " in f" {row} " for row in rows), (shown, rows)
    # Rich styles the time, level and source; the messages keep their own text.
    assert re.search(rb"Run [\w.:@+-]+ started; logs in", output), output
    assert re.search(rb"epoch 1/2 valid_loss=\d+\.\d{4} ", output), output


def test_rich_writes_a_traceback_under_its_line_at_full_width(tmp_path: Path) -> None:
    pyte = pytest.importorskip("pyte")
    script = tmp_path / "job.py"
    script.write_text(
        f"import {config.__name__} as config\n"
        "config.setup_logging()\n"
        "def load_batch():\n"
        "    raise ValueError('bad batch')\n"
        "load_batch()\n",
        encoding="utf-8",
    )
    frame = f'  File "{script}", line 4, in load_batch'
    columns = max(80, len(frame) + 1)  # wider than Rich's message column
    screen = pyte.Screen(columns, 40)
    pyte.ByteStream(screen).feed(on_a_terminal(tmp_path, columns, "job.py", code=1))
    rows = [row.rstrip() for row in screen.display if row.strip()]

    assert "CRITICAL Uncaught exception" in rows[0], rows
    assert frame in rows, rows  # whole, on a row of its own
    assert rows[-1] == "ValueError: bad batch", rows


def on_a_terminal(tmp_path: Path, columns: int, *args: str, code: int = 0) -> bytes:
    """Run Python with its console on a pseudo-terminal; return what it drew."""
    import fcntl
    import pty
    import struct
    import termios

    main, terminal = pty.openpty()
    # A new pseudo-terminal has no size: Rich would guess one.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(columns))
    env[config.LOG_DIR_ENV] = str(tmp_path / "logs")
    env[config.LOG_LEVEL_ENV] = "INFO"
    env["PYTHONPATH"] = str(Path(config.__file__).resolve().parents[1])
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    while chunk := read_or_nothing(main):
        output += chunk
    assert process.wait(timeout=60) == code, output
    os.close(main)
    return output


def read_or_nothing(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # the terminal closed with the process
        return b""
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
