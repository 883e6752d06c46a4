"""Read back the records a log file holds; fail on a line that is not one."""

from __future__ import annotations

{% if cookiecutter.log_format == "json" -%}
import json
{%- else -%}
import re
{%- endif %}
from dataclasses import dataclass
from pathlib import Path

from {{ cookiecutter.package_name }} import config

# How the line of a CRITICAL record starts (a line cut short may hold less).
{%- if cookiecutter.log_format == "json" %}
CRITICAL_LINE_START = '{"time": "'
{%- else %}
CRITICAL_LINE_START = "CRITICAL "
{%- endif %}
{%- if cookiecutter.log_format != "json" %}

DETAILED = re.compile(
    r"(?P<level>[A-Z]+) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    r"run=(?P<run_id>\S+) rank=(?P<rank>\d+) "
    r"\[(?P<file>[^:\]]+):(?P<function>[^:\]]+):\d+\] (?P<message>.*)"
)
{%- endif %}


@dataclass
class Record:
    level: str
    message: str
    file: str
    function: str
    run_id: str
    rank: int
    exception: str = ""  # the traceback, if any


def parse(lines: list[str], name: str = "log") -> list[Record]:
{%- if cookiecutter.log_format == "json" %}
    """One JSON object per line."""
    records = []
    for line in lines:
        fields = json.loads(line)
        assert isinstance(fields, dict), f"{name}: not a record: {line!r}"
        records.append(
            Record(
                level=fields["severity"],
                message=fields["message"],
                file=fields["file"],
                function=fields["function"],
                run_id=fields["run_id"],
                rank=fields["rank"],
                exception=fields.get("exception", ""),
            )
        )
    return records
{%- else %}
    """Records in the detailed format; indented lines belong to the one above."""
    records: list[Record] = []
    for line in lines:
        if line.startswith("  ") and records:
            records[-1].exception += line[2:] + "\n"
            continue
        match = DETAILED.fullmatch(line)
        assert match, f"{name}: not a record: {line!r}"
        records.append(
            Record(
                level=match["level"],
                message=match["message"],
                file=match["file"],
                function=match["function"],
                run_id=match["run_id"],
                rank=int(match["rank"]),
            )
        )
    for record in records:
        record.exception = record.exception.rstrip("\n")
    return records
{%- endif %}


def read(path: Path) -> list[Record]:
    """The records in a log file, once the background writer has written them."""
    config.flush_logs()
    return parse(path.read_text(encoding="utf-8").splitlines(), path.name)
