"""The text formatter named in LOGGING_CONFIG."""

from __future__ import annotations

import logging

# Everything str.splitlines() treats as a line break.
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# "\n" -> "\\n", "\x85" -> "\\x85": repr() spares loading the unicode_escape codec.
_ESCAPES = str.maketrans({c: repr(c)[1:-1] for c in _LINE_BREAKS})


class TextFormatter(logging.Formatter):
    """One record, one line group: user data cannot forge another record.

    Line breaks inside the message are escaped (``\\n``); a traceback keeps its
    lines, each indented, so none of them can pass for the start of a record.
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if any(c in message for c in _LINE_BREAKS):
            message = message.translate(_ESCAPES)
        record.message = message
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += _indented(record.exc_text)
        if record.stack_info:
            text += _indented(self.formatStack(record.stack_info))
        return text


def _indented(block: str) -> str:
    return "".join(f"\n  {line}" for line in block.splitlines())
