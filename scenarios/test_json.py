"""JSON log files: one valid object per line, whatever a message or extra holds."""

from __future__ import annotations

import calendar
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }} import config

log = logging.getLogger(__name__)
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def objects(path: Path) -> list[dict[str, Any]]:
    config.flush_logs()
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_a_record_has_the_documented_fields(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    before = time.time()
    log.critical("disk is %s", "full")

    [record] = objects(tmp_path / "info.log")
    assert list(record) == [
        *("time", "severity", "logger", "message", "file", "line", "function"),
        *("process", "run_id", "rank", "host"),
    ]
    assert TIME.fullmatch(record["time"])
    logged = calendar.timegm(time.strptime(record["time"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(logged - before) < 5  # UTC
    assert record["severity"] == "CRITICAL"
    assert record["logger"] == __name__
    assert record["message"] == "disk is full"
    assert (record["file"], record["function"]) == (
        "test_json.py",
        "test_a_record_has_the_documented_fields",
    )
    assert isinstance(record["line"], int)
    assert record["process"] == os.getpid()
    assert record["run_id"] == config.run_context().run_id
    assert (record["rank"], record["host"]) == (0, socket.gethostname())


@pytest.mark.parametrize(
    "message",
    [
        'two\nlines and "quotes" and \\ backslash',
        "carriage\rreturn, tab\t, NUL\x00, escape \x1b[31m",
        "separators \x85 \u2028 \u2029 \x1c",
        "lone surrogate \udcff from a badly decoded file name",
        'fake end "} {"severity": "CRITICAL", "message": "forged"}',
        "non-ASCII: caf\u00e9, \u65e5\u672c, \U0001f600",
    ],
)
def test_any_message_is_one_valid_line(tmp_path: Path, message: str) -> None:
    config.setup_logging(tmp_path)
    log.critical(message)
    config.flush_logs()

    text = (tmp_path / "info.log").read_text(encoding="utf-8")
    assert text.isascii() and text.count("\n") == 1
    [record] = objects(tmp_path / "info.log")
    # A lone surrogate is written as the text "\\udcff", as in text files: jq
    # stops reading at the JSON escape of one.
    assert record["message"] == message.encode("utf-8", "backslashreplace").decode()


class Unserialisable:
    def __repr__(self) -> str:
        return "<Unserialisable>"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_extra_fields_become_top_level_keys(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    extra = {
        "epoch": 3,
        "loss": 0.25,
        "tags": ("a", "b"),
        "hparams": {"lr": 0.001, 7: None},
        "path": Path("data") / "x.csv",
        "model": Unserialisable(),
        "broken": BrokenRepr(),
        "diverged": float("nan"),
    }
    log.critical("epoch done", extra=extra)

    [record] = objects(tmp_path / "info.log")
    assert record["message"] == "epoch done"
    assert {key: record[key] for key in extra} == {
        "epoch": 3,
        "loss": 0.25,
        "tags": ["a", "b"],
        "hparams": {"lr": 0.001, "7": None},
        "path": repr(Path("data") / "x.csv"),
        "model": "<Unserialisable>",
        "broken": "<BrokenRepr object: repr() failed: RuntimeError('no repr')>",
        "diverged": "nan",
    }


def test_every_extra_is_kept_and_every_line_is_read_by_jq(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    big = 7**6000  # over the 4,300 digits that int() writes
    log.critical("tuple key", extra={"pairs": {(1, 2): "a"}})
    log.critical("big int", extra={"n": big, "keys": {big: 1}})
    log.critical("same key twice", extra={"d": {1: "a", "1": "b", None: "c"}})
    log.critical("lone %s", "\udcff", extra={"place": "caf\udce9"})
    log.critical("after")
    config.flush_logs()

    [pairs, big_int, twice, lone, after] = objects(tmp_path / "info.log")
    assert pairs["pairs"] == {"(1, 2)": "a"}
    assert int(big_int["n"], 16) == big
    assert list(big_int["keys"].values()) == [1]
    assert twice["d"] == {"1": "a", "'1'": "b", "null": "c"}
    assert (lone["message"], lone["place"]) == ("lone \\udcff", "caf\\udce9")
    assert after["message"] == "after"
    jq = shutil.which("jq")
    if jq:  # jq stops at the first line it cannot read
        text = (tmp_path / "info.log").read_text(encoding="utf-8")
        result = subprocess.run(
            [jq, "-r", ".message"], input=text, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "after"


def test_extra_fields_never_replace_the_standard_ones(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    forged = {
        "severity": "DEBUG",
        "time": "2000-01-01T00:00:00.000Z",
        "logger": "forged",
        "exception": "none",
        "extra_severity": "taken",
    }
    log.critical("real", extra=forged)

    [record] = objects(tmp_path / "info.log")
    assert (record["severity"], record["logger"]) == ("CRITICAL", __name__)
    assert record["time"] != forged["time"]
    assert "exception" not in record
    assert record["extra_severity"] == "DEBUG"
    assert record["extra_extra_severity"] == "taken"
    assert record["extra_time"] == forged["time"]
    assert record["extra_logger"] == "forged"
    assert record["extra_exception"] == "none"


def test_exception_is_one_string_field(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    try:
        raise ValueError("bad\nbatch")
    except ValueError:
        log.critical("step failed", exc_info=True)

    [record] = objects(tmp_path / "error.log")
    assert record["message"] == "step failed"
    assert record["exception"].startswith("Traceback (most recent call last):\n")
    assert record["exception"].endswith("ValueError: bad\nbatch")


def test_the_console_stays_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.setup_logging(tmp_path)
    log.critical("plain words", extra={"epoch": 1})

    config.flush_logs()
    assert capsys.readouterr().err == "plain words\n"
