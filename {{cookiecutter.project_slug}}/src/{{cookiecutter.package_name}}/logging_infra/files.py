"""The log file handler named in LOGGING_CONFIG."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
from io import TextIOWrapper
from pathlib import Path

FILE_MODE = 0o600  # log files are readable by their owner only
DIR_MODE = 0o700
# Appending, and never through a symbolic link: one planted in the log directory
# must not redirect the log into another file (O_NOFOLLOW is POSIX only).
OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)


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


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that creates private files and formats each record once.

    The standard handler formats every record a second time, and seeks the file,
    only to decide whether to roll over; this one counts what it writes (in
    characters, so non-ASCII text rolls over slightly late). With
    ``flush_each_record=False`` it leaves flushing to its owner: the background
    writer flushes whenever its queue runs empty, instead of once per record.
    """

    def __init__(
        self,
        filename: str,
        maxBytes: int = 0,
        backupCount: int = 0,
        encoding: str | None = None,
        synchronous: bool = False,
    ) -> None:
        self.synchronous = synchronous  # written on the logging thread, not queued
        self.flush_each_record = True
        self.size = 0
        # backslashreplace: a message with a lone surrogate is still written.
        super().__init__(
            filename, "a", maxBytes, backupCount, encoding, errors="backslashreplace"
        )

    def _open(self) -> TextIOWrapper:
        fd = open_log_file(self.baseFilename)
        self.size = os.fstat(fd).st_size
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
            if self.maxBytes and self.size and self.size + len(text) > self.maxBytes:
                self.doRollover()
            if self.stream is None:  # closed by an earlier failed rollover
                self.stream = self._open()
            self.stream.write(text)
            self.size += len(text)
            if self.flush_each_record:
                self.stream.flush()
        except Exception:
            self.handleError(record)
