{%- set rich = cookiecutter.console_style == "rich" -%}
{%- set tqdm = cookiecutter.use_tqdm -%}
{%- if rich and tqdm -%}
"""The console handler: Rich on a terminal, plain text anywhere else, and log
lines written through tqdm so that they never break a progress bar."""
{%- elif rich -%}
"""The console handler: Rich on a terminal, plain text anywhere else."""
{%- else -%}
"""The console handler: log lines written through tqdm, so that they never break
a progress bar."""
{%- endif %}

from __future__ import annotations

{% if rich and tqdm -%}
import io
{% endif -%}
import logging
from typing import TextIO{{ ", cast" if rich and tqdm }}
{%- if tqdm %}

from tqdm import tqdm
{%- endif %}


def console_handler(stream: TextIO) -> logging.Handler:
{%- if rich %}
    """A handler for ``stream``: Rich's if it is a terminal, else a plain one.

    Piped or redirected output (CI, nohup, cluster jobs) stays plain text, and
    Rich is imported only when there is a terminal to draw on.
    """
    if not stream.isatty():
        return {{ "TqdmHandler" if tqdm else "logging.StreamHandler" }}(stream)
    from rich.console import Console
    from rich.logging import RichHandler

    return RichHandler(
        console=Console(file={{ "_through_tqdm(stream)" if tqdm else "stream" }}),
        markup=False,  # messages are text: "[red]" in a message stays as it is
        # Rich would render the exception object itself, past the redaction
        # filter; the traceback comes as masked text, and so without locals.
        rich_tracebacks=False,
    )
{%- else %}
    """A handler for ``stream`` whose lines never break a progress bar."""
    return TqdmHandler(stream)
{%- endif %}
{%- if tqdm %}


class TqdmHandler(logging.Handler):
    """Writes through ``tqdm.write``, which clears the bars on the stream first and
    draws them again after; tqdm's lock makes this safe from any thread."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.stream.flush()
{%- if rich %}


class _TqdmStream(io.TextIOBase):
    """A text stream for Rich that writes through ``tqdm.write``."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        tqdm.write(text, file=self.stream, end="")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


def _through_tqdm(stream: TextIO) -> TextIO:
    return cast(TextIO, _TqdmStream(stream))  # Rich asks for IO[str]
{%- endif %}
{%- endif %}
