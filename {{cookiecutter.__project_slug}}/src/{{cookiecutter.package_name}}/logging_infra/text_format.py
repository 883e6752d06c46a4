"""The text formatters named in LOGGING_CONFIG: what a log line may contain.

Every control character but tab is escaped (``\\x1b``, ``\\r``), so that no
message can move the cursor, recolour, retitle or clear a terminal that shows the
console or a log file (``cat``, ``tail -f``), nor make ``grep`` treat the file as
binary (NUL). So are the Unicode characters that reorder the text around them
(bidirectional overrides and isolates). In the files, line breaks are escaped too.
"""

from __future__ import annotations

import logging
import time

# Everything str.splitlines() treats as a line break.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# C0 and C1 controls and DEL, but tab; bidirectional marks, embeddings,
# overrides and isolates ("Trojan Source").
CONTROLS = (
    "".join(map(chr, (*range(0x20), *range(0x7F, 0xA0))))
    + "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
).replace("\t", "")


def _escapes(characters: str) -> dict[int, str]:
    # "\x1b" -> "\\x1b": repr() spares loading the unicode_escape codec.
    return str.maketrans({c: repr(c)[1:-1] for c in characters})


_FILE_ESCAPES = _escapes(CONTROLS + LINE_BREAKS)
# The console keeps line feeds: a multi-line message reads as it was meant to,
# and a console line tells no level or time that a forged line could fake.
_CONSOLE_ESCAPES = _escapes(CONTROLS.replace("\n", ""))


def escape(text: str, table: dict[int, str] = _FILE_ESCAPES) -> str:
    """``text`` with every character of ``table`` escaped."""
    # isprintable() is False for all of them (and for tab, spaces other than
    # " " and more): a quick check in C that spares most text the translation.
    return text if text.isprintable() else text.translate(table)


class TextFormatter(logging.Formatter):
    """One record, one line group: user data cannot forge another record.

    The whole line is escaped: the message and every other field the format
    shows (a file name given to ``compile()`` or ``warnings.warn_explicit()``,
    a function's, a logger's or a thread's name). A traceback keeps its lines,
    each escaped and indented, so none of them can pass for the start of a record.
    """

    _second: tuple[int, str] = (-1, "")  # the last second formatted

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """As the standard formatter's, with strftime() once a second, not each time."""
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached, text = self._second  # one tuple: safe to share between threads
        if second != cached:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        if self.default_msec_format:
            text = self.default_msec_format % (text, record.msecs)
        return text

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = escape(self.formatMessage(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += _indented(record.exc_text)
        if record.stack_info:
            text += _indented(self.formatStack(record.stack_info))
        return text


def _indented(block: str) -> str:
    # Split at line feeds only: a message's "\r" in the traceback is escaped.
    return "".join(f"\n  {escape(line)}" for line in block.split("\n"))


class ConsoleFormatter(logging.Formatter):
    """The standard formatter, with control characters escaped but line feeds."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record), _CONSOLE_ESCAPES)
