"""The log file handler named in LOGGING_CONFIG."""

from __future__ import annotations

import logging
import logging.handlers
import os
from io import TextIOWrapper

FILE_MODE = 0o600  # log files are readable by their owner only
DIR_MODE = 0o700


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
        fd = os.open(
            self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE
        )
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
