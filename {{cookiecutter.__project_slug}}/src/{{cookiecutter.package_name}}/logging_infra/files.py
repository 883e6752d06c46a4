"""The log file handler named in LOGGING_CONFIG."""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

FILE_MODE = 0o600  # log files are readable by their owner only
DIR_MODE = 0o700
# Appending, and never through a symbolic link: one planted in the log directory
# must not redirect the log into another file (O_NOFOLLOW is POSIX only). Read
# too, only to check that the file ends with a whole line.
OPEN_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | os.O_APPEND
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
RETRY_SECONDS = 1.0  # a failing file is tried again at most this often
CHECK_SECONDS = 1.0  # how often a file is checked to still be where it was
TORN_LINE_MAX = 1024 * 1024  # how far back the end of a line cut short is looked for


def _whole_lines_size(fd: int, size: int) -> int | None:
    """Where the file's last whole line ends; None if no line break is near the end.

    Windows has no pread: there, a line cut short stays as it is.
    """
    if not size or not hasattr(os, "pread") or os.pread(fd, 1, size - 1) == b"\n":
        return size
    start = max(0, size - TORN_LINE_MAX)
    tail = os.pread(fd, size - start, start)
    cut = tail.rfind(b"\n")
    return start + cut + 1 if cut >= 0 else None


def open_log_file(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for appending, private if new; OSError if it is a link."""
    return os.open(path, OPEN_FLAGS, FILE_MODE)


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, owner-only whatever the umask."""
    missing = [p for p in (directory, *directory.parents) if not p.is_dir()]
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another process
            path.mkdir(DIR_MODE)
            path.chmod(DIR_MODE)  # mkdir's mode is narrowed by the umask


class AppendFile:
    """A file written whole lines at a time, with ``os.write``.

    Text waits in a list until ``flush()``, which writes it with one system
    call: only SIGKILL can cut a line short (the kernel may stop a long write
    between two pages), and no io buffer is shared with code that a signal
    handler may interrupt. A write
    that fails halfway (a full disk) is taken back, so the file keeps whole
    lines. The names stay bound to this object, so a record logged during
    interpreter shutdown (from ``__del__``) is still written.
    """

    def __init__(self, fd: int, encoding: str, errors: str, size: int) -> None:
        self.fd, self.encoding, self.errors = fd, encoding, errors
        self.size = size  # bytes in the file: all of them whole lines
        # A deque: a signal handler that logs may flush in the middle of a
        # flush, and popleft() hands each text to exactly one of them.
        self.pending: collections.deque[str] = collections.deque()
        self._write, self._truncate, self._close = os.write, os.ftruncate, os.close

    def write(self, text: str) -> int:
        self.pending.append(text)
        return len(text)

    def flush(self) -> None:
        if not self.pending:
            return
        pending, texts = self.pending, []
        while pending:
            texts.append(pending.popleft())
        data = "".join(texts).encode(self.encoding, self.errors)
        written = 0
        try:
            while written < len(data):
                written += self._write(self.fd, data[written:])
        except OSError:
            if written:
                with contextlib.suppress(OSError):
                    self._truncate(self.fd, self.size)
            raise
        self.size += written

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._close(self.fd)


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler for log files that must not fail their program.

    - Private files (0600), opened without following a symlink.
    - Each record formatted once: the standard handler formats it a second
      time, and seeks the file, only to decide whether to roll over.
    - With ``flush_each_record=False`` flushing is left to the owner: the
      background writer flushes whenever its queue runs empty.
    - A record logged by a signal handler in the middle of a write (a
      rollover, say) is written right after it, never in it.
    - A file that cannot be written (disk full, directory deleted or made
      read-only) gives one warning on standard error per kind of failure, its
      records are counted as dropped, and writing resumes by itself when it
      works again (a deleted directory is made again), with a record saying how
      many were dropped. A line cut short by a crash goes when the file is
      opened again.
    """

    stream: AppendFile | None  # type: ignore[assignment]

    def __init__(
        self,
        filename: str,
        maxBytes: int = 0,
        backupCount: int = 0,
        encoding: str | None = None,
        synchronous: bool = False,
        delay: bool = False,
    ) -> None:
        self.synchronous = synchronous  # written on the logging thread, not queued
        self.flush_each_record = True
        self.size = 0
        self.dropped = 0  # records lost since the file last failed
        self.unchecked = 0  # records written since the file was last checked
        self.failures: set[int] = set()  # errno values already reported
        self.retry_at = 0.0
        self.check_at = 0.0
        self.identity: tuple[int, int] | None = None  # (device, inode) of the file
        self.waiting: collections.deque[str] = collections.deque()
        self.writing = False
        # backslashreplace: a message with a lone surrogate is still written.
        super().__init__(
            filename,
            "a",
            maxBytes,
            backupCount,
            encoding or "utf-8",
            delay=True,
            errors="backslashreplace",
        )
        self.detached = delay  # formats only: another process writes the file
        if not delay:
            self.stream = self._open()  # fails here, not on the first record

    def _open(self) -> AppendFile:  # type: ignore[override]
        directory = Path(self.baseFilename).parent
        if not directory.is_dir():  # deleted while the program ran
            make_private_dirs(directory)
        fd = open_log_file(self.baseFilename)
        stat = os.fstat(fd)
        self.identity, self.size = (stat.st_dev, stat.st_ino), stat.st_size
        whole = _whole_lines_size(fd, self.size)
        if whole is not None and whole < self.size:
            # A line cut short by a crash (SIGKILL can stop a write between two
            # pages of the file): it goes, so that every line is a record.
            os.ftruncate(fd, whole)
            self.size = whole
        stream = AppendFile(
            fd, self.encoding or "utf-8", self.errors or "strict", self.size
        )
        if whole is None:  # no line break near the end: not a line of ours
            stream.write(self.terminator)
            self.size += 1
        self.check_at = time.monotonic() + CHECK_SECONDS
        return stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self.write_text(text)

    def write_text(self, text: str) -> None:
        """Append one formatted record (ending in a line break)."""
        if self.detached:
            return
        # A signal handler that logs while this thread writes (say, rolls the
        # files over) must not start a write of its own in the middle: its
        # text waits for the interrupted call, which writes it next.
        self.waiting.append(text)
        while self.waiting and not self.writing:
            self.writing = True
            try:
                while self.waiting:
                    self._write(self.waiting.popleft())
            finally:
                self.writing = False

    def _write(self, text: str) -> None:
        try:
            stale = self.stream is None or time.monotonic() >= self.check_at
            if stale and not self._reopen():
                self.dropped += 1
                return
            if self.maxBytes and self.size and self.size + len(text) > self.maxBytes:
                self.doRollover()
            stream = self.stream or self._open()
            self.stream = stream
            stream.write(text)
            self.size += len(text)
            self.unchecked += 1
            if self.flush_each_record:
                stream.flush()
        except OSError as error:
            self._failed(error, records=1)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            stream = self.stream
            if stream is None:
                return
            records = len(stream.pending)
            try:
                stream.flush()
            except OSError as error:
                self._failed(error, records)

    def detach(self) -> None:
        """In a forked child: the parent writes this file, never this process."""
        self.detached = True
        if self.stream is not None:
            self.stream.pending.clear()
            self._drop_stream()

    def _reopen(self) -> bool:
        """Open the file if it is closed or was moved away; False while it fails."""
        now = time.monotonic()
        if self.stream is not None:
            self.check_at = now + CHECK_SECONDS
            unchecked, self.unchecked = self.unchecked, 0
            with contextlib.suppress(OSError):
                stat = os.stat(self.baseFilename, follow_symlinks=False)
                if (stat.st_dev, stat.st_ino) == self.identity:
                    return True
            # Deleted or replaced: what was written since the last check is gone.
            self.dropped += unchecked
            self._drop_stream()
        if now < self.retry_at:
            return False
        try:
            self.stream = self._open()
        except OSError as error:
            self._failed(error, records=0)
            return False
        if self.dropped:
            self._note_dropped()
        return True

    def _failed(self, error: OSError, records: int) -> None:
        self.dropped += records
        if self.stream is not None:
            records_waiting = len(self.stream.pending)
            self.dropped += records_waiting
            self._drop_stream()
        self.retry_at = time.monotonic() + RETRY_SECONDS
        code = error.errno or 0
        if code not in self.failures:
            self.failures.add(code)
            reason = os.strerror(code) if code else str(error)
            if code == errno.ELOOP:
                reason = "it is a symbolic link"
            warn(
                f"Cannot write {self.baseFilename} ({reason}); its records are "
                "dropped until it can be written again"
            )

    def _drop_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.pending.clear()
            with contextlib.suppress(OSError):
                stream.close()

    def _note_dropped(self) -> None:
        message = (
            f"{self.dropped} records were dropped while {self.baseFilename} "
            "could not be written"
        )
        self.dropped = 0
        warn(f"Writing {self.baseFilename} again; {message}")
        record = logging.LogRecord(
            __name__, logging.WARNING, __file__, 0, message, None, None, "write_text"
        )
        if self.filter(record) and self.stream is not None:
            text = self.format(record) + self.terminator
            self.stream.write(text)
            self.size += len(text)


def warn(message: str) -> None:
    """A line on standard error, where the console is: never through logging."""
    stream = sys.stderr or sys.__stderr__
    if stream is not None:
        try:
            stream.write(f"logging: {message}\n")
            stream.flush()
        except (OSError, ValueError):
            pass
