"""The log file handler named in LOGGING_CONFIG."""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

from .console import output

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from collections.abc import Callable

    Flock = Callable[[int, int], None]

try:
    from fcntl import LOCK_EX, LOCK_UN
    from fcntl import flock as _flock
except ImportError:  # Windows
    _flock = None  # type: ignore[assignment]
    LOCK_EX = LOCK_UN = 0  # type: ignore[misc]

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


def lock(fd: int, flock: Flock | None = _flock, mode: int = LOCK_EX) -> None:
    """Lock the file against the other processes that append to it, to write, cut
    a torn line or roll the file over. Advisory, and POSIX only."""
    if flock is None:
        return
    try:
        flock(fd, mode)
    except OSError:  # a file system without locks: as on Windows
        return


unlock = functools.partial(lock, mode=LOCK_UN)


def open_log_file(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for appending, private if new; OSError if it is a link."""
    return os.open(path, OPEN_FLAGS, FILE_MODE)


def someone_elses(status: os.stat_result) -> bool:
    """Is this file another user's, or a hard link to one (in a directory that
    others can write)? Its content is not ours to append to."""
    if not hasattr(os, "getuid"):  # Windows: no owner ids
        return False
    return status.st_uid != os.getuid() or status.st_nlink > 1


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
    handler may interrupt. A write that fails halfway (a full disk) keeps the
    whole lines that fit and takes back the line it cut short. Other processes
    that append to the file wait meanwhile. The names stay bound to this object,
    so a record logged during interpreter shutdown (from ``__del__``) is still
    written.
    """

    def __init__(self, fd: int, encoding: str, errors: str) -> None:
        self.fd, self.encoding, self.errors = fd, encoding, errors
        # A deque: a signal handler that logs may flush in the middle of a
        # flush, and popleft() hands each text to exactly one of them.
        self.pending: collections.deque[str] = collections.deque()
        self.lost = 0  # texts of the last flush that did not fit (a full disk)
        self._write, self._truncate, self._close = os.write, os.ftruncate, os.close
        self._fstat, self._lock, self._unlock = os.fstat, lock, unlock

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
        self._lock(self.fd)
        try:
            while written < len(data):
                written += self._write(self.fd, data[written:])
        except OSError:
            self._keep_whole_lines(texts, written)
            raise
        finally:
            self._unlock(self.fd)

    def _keep_whole_lines(self, texts: list[str], written: int) -> None:
        """After a write failed: keep the texts (whole lines) that the ``written``
        bytes hold, and take back the part of the next one; ``lost`` says how
        many texts are not in the file."""
        whole = kept = 0
        for text in texts:
            size = len(text.encode(self.encoding, self.errors))
            if whole + size > written:
                break
            whole, kept = whole + size, kept + 1
        self.lost = len(texts) - kept
        if written > whole:  # the part written is the end of the file
            with contextlib.suppress(OSError):
                end = self._fstat(self.fd).st_size
                self._truncate(self.fd, end - written + whole)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._close(self.fd)


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler for log files that must not fail their program.

    - Private files (0600), opened without following a symlink. A file that
      another user owns (in a directory that others can write) is never
      written: one warning, and the records go to a file of this user's
      beside it (``info.uid1000.log``).
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
    - Several processes may append to one file (runs at once in one log
      directory): one of them rolls it over, holding a lock on it, while the
      others go on to the new file. Records a process wrote to the file after
      another one moved it are in the moved file; only those in a deleted one
      are counted as dropped.
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
        self.in_file = 0  # records written to the open file, lost if it is deleted
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
        if someone_elses(stat):
            os.close(fd)
            fd, stat = self._open_beside(stat.st_uid)
        self.identity, self.in_file = (stat.st_dev, stat.st_ino), 0
        lock(fd)  # another process's write in progress is not a torn line
        try:
            self.size = os.fstat(fd).st_size
            whole = _whole_lines_size(fd, self.size)
            if whole is not None and whole < self.size:
                # A line cut short by a crash (SIGKILL can stop a write between
                # two pages of the file): it goes, so that every line is a record.
                os.ftruncate(fd, whole)
                self.size = whole
        finally:
            unlock(fd)
        stream = AppendFile(fd, self.encoding or "utf-8", self.errors or "strict")
        if whole is None:  # no line break near the end: not a line of ours
            stream.write(self.terminator)
            self.size += 1
        self.check_at = time.monotonic() + CHECK_SECONDS
        return stream

    def _open_beside(self, owner: int) -> tuple[int, os.stat_result]:
        """Use a file of this user's next to another user's; OSError if that
        one is another user's too."""
        taken, uid = self.baseFilename, os.getuid()
        root, extension = os.path.splitext(taken)
        if root.endswith(f".uid{uid}"):  # this is the file beside already
            raise PermissionError(errno.EPERM, "it belongs to another user", taken)
        self.baseFilename = f"{root}.uid{uid}{extension}"
        warn(
            f"{taken} belongs to another user (uid {owner}) or is a link to "
            f"another file: writing {self.baseFilename} instead"
        )
        fd = open_log_file(self.baseFilename)
        stat = os.fstat(fd)
        if someone_elses(stat):
            os.close(fd)
            raise PermissionError(
                errno.EPERM, "it belongs to another user", self.baseFilename
            )
        return fd, stat

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
            self.in_file += 1
            if self.flush_each_record:
                stream.flush()
        except OSError as error:
            self._failed(error, records=1)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            stream = self.stream
            if stream is None:
                return
            try:
                stream.flush()
            except OSError as error:
                self._failed(error, stream.lost)

    def detach(self) -> None:
        """In a forked child: the parent writes this file, never this process."""
        self.detached = True
        if self.stream is not None:
            self.stream.pending.clear()
            self._drop_stream()

    def doRollover(self) -> None:
        """Roll the files over, unless another process appending to the file
        has already: then go on to the file that took its place."""
        stream = self.stream
        if stream is None or _flock is None:
            super().doRollover()
            return
        stream.flush()  # first: writing takes the lock too
        held = os.dup(stream.fd)  # locked until the files are renamed
        try:
            lock(held)
            moved = self._moved()
            if moved:
                self._close_moved_stream()
            else:
                super().doRollover()
        finally:
            os.close(held)  # and so unlocked
        if moved:
            self._reopen()  # and say what was lost, if anything

    def _moved(self) -> bool:
        """Is the file no longer at its name (rolled over, deleted, replaced)?"""
        try:
            stat = os.stat(self.baseFilename, follow_symlinks=False)
        except OSError:
            return True
        return (stat.st_dev, stat.st_ino) != self.identity

    def _close_moved_stream(self) -> None:
        """Close the file that left its name, writing what waits for it there.

        Moved (another process rolled it over): its records stay in it. Deleted:
        every record written to it since it was opened is lost.
        """
        stream = self.stream
        if stream is None:
            return
        try:
            deleted = os.fstat(stream.fd).st_nlink == 0
            if not deleted:
                stream.flush()
        except OSError as error:
            self._failed(error, records=0)  # counts what waits, closes it
            return
        if deleted:
            self.dropped += self.in_file
        self._drop_stream()

    def _reopen(self) -> bool:
        """Open the file if it is closed or was moved away; False while it fails."""
        now = time.monotonic()
        if self.stream is not None:
            self.check_at = now + CHECK_SECONDS
            if not self._moved():
                return True
            self._close_moved_stream()
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
    """A line on standard error, where the console is: never through logging, and
    written by the console thread (see console.Output for how long it waits)."""
    stream = sys.stderr or sys.__stderr__
    if stream is not None:
        output.put(output.write_plain, stream, f"logging: {message}\n")
        output.wait()
