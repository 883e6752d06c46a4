"""Runs at once in one log directory: each appends to the same files and rolls
them over, and none loses a record or reports a loss that did not happen."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import logfiles
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import files

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks")
DROPPED = re.compile(r"(\d+) records were dropped")

RUN = """
import logging, sys
from {{ cookiecutter.package_name }} import config
config.LOGGING_CONFIG["root"]["level"] = "INFO"
for name in ("info", "error"):
    config.LOGGING_CONFIG["handlers"][name]["maxBytes"] = 64 * 1024
    config.LOGGING_CONFIG["handlers"][name]["backupCount"] = 1000  # keep every record
config.LOGGING_CONFIG["handlers"]["info"]["level"] = "INFO"
config.LOGGING_CONFIG["handlers"]["console"]["level"] = "CRITICAL"
config.RUN_DIRS_KEPT = None  # the shared layout: every run in the same files
config.setup_logging(sys.argv[1])
log = logging.getLogger("job")
run = sys.argv[2]
for number in range({records}):
    log.info("run %s record %05d", run, number)
    if number % {every} == 0:
        log.error("run %s error %05d", run, number)
"""


def messages(log_dir: Path, name: str) -> list[str]:
    """Messages of every record in a log and its rotated files; fails on torn lines."""
    found = []
    for path in log_dir.glob(f"{name}.log*"):
        lines = path.read_text(encoding="utf-8").splitlines()
        found += [record.message for record in logfiles.parse(lines, path.name)]
    return found


def run_at_once(log_dir: Path, runs: int, records: int, every: int) -> list[str]:
    """Start ``runs`` runs logging into ``log_dir`` together, each ``records``
    INFO records and an ERROR one ``every`` records; their stderr."""
    script = log_dir.parent / "run.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(RUN.format(records=records, every=every), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(config.__file__).parents[1])}
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(log_dir), str(run)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in range(runs)
    ]
    try:
        errors = [process.communicate(timeout=120)[1] for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [process.returncode for process in processes] == [0] * runs, errors
    return errors


@posix_only
@pytest.mark.slow
def test_runs_at_once_roll_the_files_over_without_losing_or_miscounting(
    tmp_path: Path,
) -> None:
    # 3 runs x 3,000 records at 64 KiB a file: each trial rolls info.log over
    # several times, often two runs at the same moment. Each run counts only its
    # own lines towards the size, so a file grows up to 3 times 64 KiB.
    runs, records, every = 3, 3000, 100
    numbers = {"info": range(records), "error": range(0, records, every)}
    expected = {
        name: [f"run {r} {kind} {n:05d}" for r in range(runs) for n in numbers[name]]
        for name, kind in (("info", "record"), ("error", "error"))
    }
    for trial in range(20):
        log_dir = tmp_path / f"trial{trial}" / "logs"
        errors = run_at_once(log_dir, runs, records, every)

        assert not any("dropped" in e or "Cannot write" in e for e in errors), errors
        for name, wanted in expected.items():
            found = messages(log_dir, name)
            notes = [m for m in found if DROPPED.search(m)]
            counts = Counter(found)
            lost = [m for m in wanted if not counts[m]]
            repeated = [m for m in wanted if counts[m] > 1]
            assert (trial, name, lost[:3], repeated[:3], notes) == (
                trial,
                name,
                [],
                [],
                [],
            )
        assert len(list(log_dir.glob("info.log.*"))) > 2, "the files should roll over"


@posix_only
def test_a_deleted_file_s_records_are_counted_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "CHECK_SECONDS", 0.1)
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "level", "INFO")
    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"]["info"], "level", "INFO")
    config.setup_logging(tmp_path)
    log = logging.getLogger("job")
    for number in range(6):  # checked after the third: it was still there
        log.info("record %d", number)
        config.flush_logs()
        time.sleep(0.06)
    (tmp_path / "info.log").unlink()  # all 6 records go with it
    time.sleep(0.15)
    log.info("after")

    found = [record.message for record in logfiles.read(tmp_path / "info.log")]
    assert found == [
        f"6 records were dropped while {tmp_path / 'info.log'} could not be written",
        "after",
    ]
