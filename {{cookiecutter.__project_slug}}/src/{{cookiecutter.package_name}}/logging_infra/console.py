{%- set rich = cookiecutter.console_style == "rich" -%}
"""The console handler: log lines that never break a progress bar{{ ", drawn by Rich on\na terminal" if rich }}.

It writes to ``sys.stderr`` as it is at each line, not as it was at setup: a
Rich live display (``rich.progress``, Lightning's ``RichProgressBar``) swaps it
for a stream that prints above the display while it runs. While tqdm shows a
bar, lines go through ``tqdm.write()``, which clears the bars first and draws
them again after. Neither library is imported for this.
"""

from __future__ import annotations

import io
import logging
import sys

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from typing import TextIO


def console_handler(stream: TextIO) -> logging.Handler:
{%- if rich %}
    """A handler for ``stream``: Rich's if it is a terminal, else a plain one.

    Piped or redirected output (CI, nohup, cluster jobs) stays plain text, and
    Rich is imported only when there is a terminal to draw on.
    """
    if not stream.isatty():
        return ConsoleHandler(ConsoleStream(stream))
    from typing import cast  # typing only now: Rich imports it anyway

    from rich.console import Console
    from rich.highlighter import NullHighlighter
    from rich.logging import RichHandler
    from rich.text import Text

    class TracebackBelowHandler(RichHandler):
        """Rich's handler, which writes a traceback under its record's line at the
        terminal's full width: no file path of it is folded into the message column."""

        def emit(self, record: logging.LogRecord) -> None:
            if not (record.exc_info or record.exc_text or record.stack_info):
                super().emit(record)
                return
            try:
                text = self.format(record)  # message, traceback and stack, escaped
                line = logging.makeLogRecord(vars(record))  # a copy: others read it
                line.exc_info, line.exc_text, line.stack_info = None, None, None
                below = text[len(self.format(line)) + 1 :]
                super().emit(line)
                self.console.print(Text(below), soft_wrap=True)
            except Exception:
                self.handleError(record)

    return TracebackBelowHandler(
        console=Console(file=cast("TextIO", ConsoleStream(stream)), highlight=False),
        # Messages are text: "[red]" stays as it is, and no number, path or
        # keyword of a message gets a colour of its own.
        markup=False,
        highlighter=NullHighlighter(),
        keywords=[],
        log_time_format="%H:%M:%S",  # not the locale's date: 12/02/26 is ambiguous
        # Rich would render the exception object itself, past the redaction
        # filter; the traceback comes as masked text, and so without locals.
        rich_tracebacks=False,
    )
{%- else %}
    """A handler for ``stream`` whose lines never break a progress bar."""
    return ConsoleHandler(ConsoleStream(stream))
{%- endif %}


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that, behind the writer thread, writes a burst's lines at
    once when the writer flushes, not one system call each: standard error
    writes each line as it comes, which made a burst cost a quarter more."""

    def __init__(self, stream: ConsoleStream) -> None:
        super().__init__(stream)
        self.flush_each_record = True  # the writer thread sets it while it serves
        self.held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.flush_each_record:
            super().emit(record)
            return
        try:
            self.held.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def write_text(self, text: str) -> None:
        """Write one formatted record (ending in a line break)."""
        self.held.append(text)
        if self.flush_each_record:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self.held:
                text = "".join(self.held)
                self.held.clear()
                try:
                    self.stream.write(text)
                except UnicodeEncodeError as error:  # a stream stricter than stderr
                    codec = error.encoding
                    self.stream.write(
                        text.encode(codec, "backslashreplace").decode(codec)
                    )
            self.stream.flush()


class ConsoleStream(io.TextIOBase):
    """``stream``; if it is standard error (or output), whatever that is now."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.fixed = stream
        self.variable = next(
            (name for name in ("stderr", "stdout") if getattr(sys, name) is stream),
            None,
        )

    @property
    def stream(self) -> TextIO:
        if self.variable is None:
            return self.fixed
        return getattr(sys, self.variable, None) or self.fixed

    def write(self, text: str) -> int:
        stream = self.stream
        std = sys.modules.get("tqdm.std")
        if std is None:
            return stream.write(text)
        # Under tqdm's lock, which a bar holds to start and to draw itself: a
        # line is never written behind a bar that another thread just started.
        with std.tqdm.get_lock():
            if not getattr(std.tqdm, "_instances", None):
                return stream.write(text)
            std.tqdm.write(text, file=stream, end="")
            return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()
