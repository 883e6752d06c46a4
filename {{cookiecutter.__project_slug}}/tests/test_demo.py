"""Tests of the demo: examples of testing code that logs. Make them yours.

Two ways to test logging: ``caplog`` captures the records your code logs, in this
process, with no set-up; a run of the entry point in a subprocess writes real log
files, which the test reads back (set-up and exit stay out of the test process).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.data import make_dataset, split
from {{ cookiecutter.package_name }}.train import TrainingDiverged, train


def test_split_keeps_every_sample_in_order() -> None:
    samples = make_dataset(50, seed=1)
    train_set, valid_set = split(samples)
    assert (len(train_set), len(valid_set)) == (40, 10)
    assert train_set + valid_set == samples


def test_training_logs_each_epoch(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    train_set, valid_set = split(make_dataset(100))

    train(train_set, valid_set, epochs=3, lr=0.01)

    epochs = [r.getMessage() for r in caplog.records if r.msg.startswith("epoch ")]
    assert [message.split()[1] for message in epochs] == ["1/3", "2/3", "3/3"]
    assert all(record.levelname != "ERROR" for record in caplog.records)


def test_divergence_is_an_exception_not_a_log_line() -> None:
    train_set, valid_set = split(make_dataset(100))
    with pytest.raises(TrainingDiverged, match="validation loss"):
        train(train_set, valid_set, epochs=5, lr=5.0)


def run_demo(log_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the entry point as a user does, with its logs in ``log_dir``."""
    return subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", *args],
        env={**os.environ, config.LOG_DIR_ENV: str(log_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_record(log_dir: Path) -> dict[str, object]:
{%- if cookiecutter.log_layout == "per_run" %}
    path = log_dir / "latest" / "run.json"
{%- else %}
    [path] = (log_dir / "runs").glob("*.json")
{%- endif %}
    record: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return record


def test_a_run_records_how_it_ended(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "--epochs", "2")

    assert result.returncode == 0, result.stderr
    record = run_record(tmp_path)
    assert (record["status"], record["exit_code"]) == ("finished", 0)


def test_a_failed_run_writes_error_log(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "--lr", "5")

    assert result.returncode == 1
    [error_log] = tmp_path.rglob("error.log")
    assert "Training diverged" in error_log.read_text(encoding="utf-8")
    assert run_record(tmp_path)["status"] == "failed"
