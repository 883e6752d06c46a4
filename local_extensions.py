"""Jinja filters the template uses to render answers safely into generated files.

Keep this module as it is: `cruft update` renders a project's old template and
then the new one in one process, and Python imports this module only once, so
the new template gets the old version's filters. Use Jinja's built-ins for
anything new.
"""

import json

from jinja2.ext import Extension


def _quoted(value: object) -> str:
    """Quote text as a double-quoted literal valid in both Python and TOML.

    JSON escaping covers quotes, backslashes and control characters; TOML also
    forbids a raw DEL, which JSON leaves alone. Non-ASCII text is kept as is.
    """
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


class QuotedExtension(Extension):
    """Adds the ``quoted`` filter."""

    def __init__(self, environment):  # type: ignore[no-untyped-def]
        super().__init__(environment)
        environment.filters["quoted"] = _quoted
