{%- set rich = cookiecutter.console_style == "rich" -%}
"""The console handler: log lines that never break a progress bar{{ ", drawn by Rich on\na terminal" if rich }}.

It writes to ``sys.stderr`` as it is at each line, not as it was at setup: a
Rich live display (``rich.progress``, Lightning's ``RichProgressBar``) swaps it
for a stream that prints above the display while it runs. While tqdm shows a
bar, lines go through ``tqdm.write()``, which clears the bars first and draws
them again after. Neither library is imported for this.

Lines are written by a thread of their own (``Output``), so that a console
nobody reads (standard error a pipe whose reader stopped) never stalls the log
files or the program: beyond a backlog, lines are dropped, and the files say
how many.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import io
import logging
import os
import select
import sys
import threading
import time

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    Write = Callable[[TextIO, str], object]

# Console text waiting for the console at most: beyond it, more waits for room
# while the console takes text (a slow one), and is dropped while it does not.
BACKLOG_LINES = 10_000
BACKLOG_CHARS = 4 * 1024**2
# A console that takes no text this long is stuck: whatever waits for it (the
# log writer for room, a warning, flush_logs(), the end of the program) stops
# waiting, and waits no more until it takes text again.
GRACE_SECONDS = 1.0
# A pipe takes a write of at most this many bytes whole or not at all.
PIPE_BUF: int = getattr(select, "PIPE_BUF", 512)


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
                self.stream.write(text)
        self.stream.flush()  # waits for the console, but on the writer's thread


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
        """Queue ``text`` for the console thread: never blocks."""
        output.put(self.write_to, self.stream, text)
        return len(text)

    def write_to(self, stream: TextIO, text: str) -> int:
        """Write ``text`` to ``stream``, on the console thread."""
        std = sys.modules.get("tqdm.std")
        if std is None:
            return output.write_plain(stream, text)
        # Under tqdm's lock, which a bar holds to draw itself: no bar starts
        # drawing between the look at the bars and the line.
        with std.tqdm.get_lock():
            if not getattr(std.tqdm, "_instances", None):
                return output.write_plain(stream, text)
            std.tqdm.write(text, file=stream, end="")
            return len(text)

    def flush(self) -> None:
        """Wait until the console thread has written what was queued."""
        output.wait()

    def isatty(self) -> bool:
        return self.stream.isatty()


class Output:
    """The console thread: console text is written from a thread of its own, in
    order, so that a console nobody reads (a pipe whose reader stopped, a
    terminal paused with Ctrl+S) stalls that thread alone, never the log files
    nor the program.

    At most BACKLOG_LINES lines (BACKLOG_CHARS characters) wait for it; a text
    beyond that waits for room, and a thread that wants its text shown waits for
    it to be written (``wait()``), as long as the console takes text, but never
    GRACE_SECONDS without progress, nor at all while it has made none since a
    wait last gave up: then a text beyond the backlog is dropped whole and its
    lines counted (``take_dropped()``).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        # Reentrant: a signal handler may warn while its thread queues a text.
        self.ready = threading.Condition(threading.RLock())
        self.pending: collections.deque[tuple[Write, TextIO, str, int]] = (
            collections.deque()
        )
        self.lines = self.chars = 0  # waiting or being written
        self.dropped = 0  # lines dropped and not yet told
        self.queued = self.done = 0  # texts queued, and those written or dropped
        self.progress = 0  # writes done: tells a slow console from a stuck one
        self.stuck_at = -1  # the progress at which a wait last gave up
        self.epoch = 0  # a new one when the backlog is given up
        self.item = (0, 0)  # the text being written: its epoch, lines written
        self.thread: threading.Thread | None = None

    def put(self, write: Write, stream: TextIO, text: str) -> None:
        """Queue ``write(stream, text)`` for the console thread."""
        if not text:
            return
        lines = text.count("\n")
        if sys.is_finalizing():  # no other thread runs any more: write it now
            if self.stuck_at != self.progress:
                with contextlib.suppress(Exception):
                    write(stream, text)
            return
        with self.ready:
            while self.chars and (  # a text larger than the backlog goes alone
                self.lines + lines > BACKLOG_LINES
                or self.chars + len(text) > BACKLOG_CHARS
            ):
                if not self._progressed(GRACE_SECONDS):
                    self.dropped += lines
                    return
            if not self._started():  # at exit no thread starts: write it now
                with contextlib.suppress(Exception):
                    write(stream, text)
                return
            self.pending.append((write, stream, text, lines))
            self.lines += lines
            self.chars += len(text)
            self.queued += 1
            self.ready.notify_all()

    def _started(self) -> bool:
        if self.thread is not None and self.thread.is_alive():
            return True
        thread = threading.Thread(target=self._run, name="log-console", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            return False
        self.thread = thread
        return True

    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.pending:
                    self.ready.wait()
                write, stream, text, lines = self.pending.popleft()
                epoch = self.epoch
                self.item = (epoch, 0)
            try:
                try:
                    write(stream, text)
                except UnicodeEncodeError as error:  # a stream stricter than stderr
                    codec = error.encoding
                    write(stream, text.encode(codec, "backslashreplace").decode(codec))
                stream.flush()
                failed = False
            except Exception:  # a closed console: what was not written is dropped
                failed = True
            with self.ready:
                if epoch == self.epoch:
                    rest = lines - self.item[1]  # not counted as written yet
                    self.dropped += rest if failed else 0
                    self.lines -= rest
                    self.chars -= len(text)
                    self.done += 1
                self.progress += 1
                self.ready.notify_all()

    def write_plain(self, stream: TextIO, text: str) -> int:
        """Write ``text`` to ``stream``, on the console thread.

        The interpreter's standard error or output is written with ``os.write``:
        through the stream object, a write that blocks would hold the stream's
        lock, which the interpreter waits for as it exits (and then aborts). A
        pipe takes a write of at most PIPE_BUF bytes whole or not at all, so
        whole lines go in writes that size: each line is written, or counted as
        dropped.
        """
        fd = self._descriptor(stream)
        if fd is None:
            return stream.write(text)
        data = text.encode(stream.encoding or "utf-8", "backslashreplace")
        epoch, start = self.item[0], 0
        while start < len(data) and epoch == self.epoch:  # else given up
            end = data.rfind(b"\n", start, start + PIPE_BUF) + 1
            if end <= start:  # a line longer than PIPE_BUF: alone
                end = data.find(b"\n", start) + 1 or len(data)
            chunk = memoryview(data)[start:end]
            while chunk:
                try:
                    chunk = chunk[os.write(fd, chunk) :]
                except BlockingIOError:  # a non-blocking descriptor, full
                    time.sleep(0.01)
            lines = data.count(b"\n", start, end)
            with self.ready:
                if epoch == self.epoch:
                    self.item = (epoch, self.item[1] + lines)
                    self.lines -= lines
                self.progress += 1
                self.ready.notify_all()
            start = end
        return len(text)

    def _descriptor(self, stream: TextIO) -> int | None:
        """The file descriptor of the interpreter's standard error or output
        (POSIX), on the console thread; None for any other stream."""
        standard = (sys.__stderr__, sys.__stdout__)
        if os.name != "posix" or threading.current_thread() is not self.thread:
            return None
        if not any(stream is each for each in standard):
            return None
        try:
            stream.flush()  # what the program wrote to it before
            return stream.fileno()
        except (OSError, ValueError):
            return None

    def wait(self, timeout: float = GRACE_SECONDS) -> bool:
        """Wait until every text queued so far is written; False if the console
        made no progress for ``timeout`` seconds, or none since a wait gave up.

        Never waits on the log writer's thread (``never_wait_here()``), nor on
        the console thread itself.
        """
        if getattr(_local, "never_waits", False) or sys.is_finalizing():
            return True
        if threading.current_thread() is self.thread:
            return True
        with self.ready:
            target = self.queued
            while self.done < target:
                if not self._progressed(timeout):
                    return False
            return True

    def _progressed(self, timeout: float) -> bool:
        """Under the lock: wait until the console writes something; False if it
        does not within ``timeout`` seconds, or did not since a wait gave up."""
        progress, epoch = self.progress, self.epoch
        if progress == self.stuck_at:
            return False
        deadline = time.monotonic() + timeout
        while self.progress == progress and self.epoch == epoch:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stuck_at = progress
                return False
            self.ready.wait(left)
        return True

    def discard(self) -> None:
        """Give up on what waits for the console: its lines count as dropped."""
        with self.ready:
            self.dropped += self.lines
            self.lines = self.chars = 0
            self.pending.clear()
            self.done = self.queued
            self.epoch += 1
            self.ready.notify_all()

    def take_dropped(self, caught_up: bool = False) -> int:
        """The lines dropped since the last call; with ``caught_up``, 0 until
        the console has written what waited for it."""
        with self.ready:
            if caught_up and self.lines:
                return 0
            dropped, self.dropped = self.dropped, 0
            return dropped


def never_wait_here() -> None:
    """This thread (the log writer's) never waits for the console."""
    _local.never_waits = True


_local = threading.local()
output = Output()
if hasattr(os, "register_at_fork"):  # the parent writes the texts it queued
    os.register_at_fork(after_in_child=output._reset)
atexit.register(output.wait)  # for texts queued after the log writer stopped
