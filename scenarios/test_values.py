"""A record shows every value as it was at the call, however late the writer
thread writes it: what the program changes afterwards never shows."""

from __future__ import annotations

{% if cookiecutter.log_format == "json" -%}
import json
{% endif -%}
import logging
import sys
import threading
from pathlib import Path
{%- if cookiecutter.log_format == "json" %}
from typing import Any
{%- endif %}

import pytest

import logfiles
from {{ cookiecutter.package_name }} import config

log = logging.getLogger(__name__)


@pytest.fixture
def held_writer(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """A handler on the writer thread that holds it until the event is set."""
    release = threading.Event()

    class Gate(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            release.wait(timeout=30)

    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"], "gate", {"()": Gate})
    handlers = [*config.LOGGING_CONFIG["root"]["handlers"], "gate"]
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "handlers", handlers)
    return release


def test_a_traceback_shows_the_exception_as_it_was_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held_writer: threading.Event
) -> None:
    # A warning: error.log's handler writes an error before the call returns.
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "level", "WARNING")
    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"]["info"], "level", "WARNING")
    config.setup_logging(tmp_path)
    log.critical("hold")  # the writer waits at the gate from now on
    try:
        raise ValueError("batch 1 is empty")
    except ValueError as error:
        log.warning("step failed", exc_info=True)
        error.args = ("changed after the call",)
        if sys.version_info >= (3, 11):  # notes are new in 3.11
            error.add_note("added after the call")
    held_writer.set()

    [_, record] = logfiles.read(tmp_path / "info.log")
    assert record.message == "step failed"
    assert record.exception.startswith("Traceback (most recent call last):")
    assert record.exception.endswith("ValueError: batch 1 is empty")
    assert "after the call" not in record.exception
{%- if cookiecutter.log_format == "json" %}


class Seen(logging.Handler):
    """Another handler: keeps the records it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Counter:
    """An object JSON cannot hold: written with its repr() as it was."""

    def __init__(self) -> None:
        self.count = 0

    def __repr__(self) -> str:
        return f"<Counter {self.count}>"


def test_extra_fields_show_their_values_at_the_call(
    tmp_path: Path, held_writer: threading.Event
) -> None:
    config.setup_logging(tmp_path)
    seen = Seen()
    logging.getLogger().addHandler(seen)  # after the writer's queue
    metrics: dict[str, Any] = {
        "loss": 1.0,
        "per_class": [0.5],
        "optimizer": {"lr": {"now": 0.1}},
    }
    counter = Counter()
    log.critical("hold")  # the writer waits at the gate from now on
    for step in range(1, 5):
        metrics["step"] = step
        metrics["loss"] = 1.0 / step
        metrics["per_class"].append(step)
        metrics["optimizer"]["lr"]["now"] = step / 10
        counter.count = step
        log.critical("metrics", extra={"metrics": metrics, "counter": counter})
    metrics["step"] = 5
    metrics["per_class"].append(5)
    metrics["optimizer"]["lr"]["now"] = 0.5
    counter.count = 5
    held_writer.set()

    config.flush_logs()
    lines = (tmp_path / "info.log").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines][1:]
    assert [(r["metrics"], r["counter"]) for r in records] == [
        (
            {
                "loss": 1.0 / step,
                "per_class": [0.5, *range(1, step + 1)],
                "optimizer": {"lr": {"now": step / 10}},
                "step": step,
            },
            f"<Counter {step}>",
        )
        for step in range(1, 5)
    ]
    # Other handlers get the record as it was logged, the objects themselves.
    extras = [vars(record) for record in seen.records[1:]]
    assert all(e["metrics"] is metrics and e["counter"] is counter for e in extras)
    assert len(extras) == 4
{%- endif %}
