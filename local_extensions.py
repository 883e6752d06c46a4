"""Jinja filters the template uses to render answers safely into generated files."""

import json

from jinja2.ext import Extension

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _quoted(value: object) -> str:
    """Quote text as a double-quoted literal valid in both Python and TOML.

    JSON escaping covers quotes, backslashes and control characters; TOML also
    forbids a raw DEL, which JSON leaves alone. Non-ASCII text is kept as is.
    """
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def _lowest_level(levels: list[str]) -> str:
    """The least of these level names: the root logger's, below every handler's."""
    return min(levels, key=LEVELS.index)


class QuotedExtension(Extension):
    """Adds the ``quoted`` and ``lowest_level`` filters."""

    def __init__(self, environment):  # type: ignore[no-untyped-def]
        super().__init__(environment)
        environment.filters["quoted"] = _quoted
        environment.filters["lowest_level"] = _lowest_level
