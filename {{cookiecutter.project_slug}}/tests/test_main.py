"""The entry point, run as users run it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }} import config

RunPython = Callable[..., subprocess.CompletedProcess[str]]


PACKAGE = {{ cookiecutter.package_name }}.__name__
LEVELS = list(config.LEVELS)


def allowed_in(handler: str) -> list[str]:
    """Levels that reach ``handler`` with the configured thresholds."""
    levels = (
        config.LOGGING_CONFIG["root"]["level"],
        config.LOGGING_CONFIG["handlers"][handler]["level"],
    )
    return LEVELS[max(map(LEVELS.index, levels)) :]


def levels_in(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def run_demo(tmp_path: Path, run_python: RunPython) -> RunPython:
    """Run the entry point with its logs in tmp_path/logs and the console at INFO."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "INFO"}
        return run_python("-m", PACKAGE, *args, env=env)

    return run


def test_training_run_logs_to_console_and_files(
    tmp_path: Path, run_demo: RunPython
) -> None:
    result = run_demo("--epochs", "3")

    assert result.returncode == 0, result.stderr
    console = result.stderr.splitlines()
    assert console[0].startswith("Training started: {")
    epochs = [line.split()[1] for line in console if line.startswith("epoch ")]
    assert epochs == ["1/3", "2/3", "3/3"]
    assert console[-1] == f"Logs are in {tmp_path / 'logs'}"
    assert set(levels_in(tmp_path / "logs" / "info.log")) <= set(allowed_in("info"))
    assert levels_in(tmp_path / "logs" / "error.log") == []


def test_diverging_run_is_logged_as_an_error(
    tmp_path: Path, run_demo: RunPython
) -> None:
    result = run_demo("--lr", "5")

    assert result.returncode == 1
    assert "Training diverged: validation loss" in result.stderr
    expected = ["ERROR"] if "ERROR" in allowed_in("error") else []
    assert levels_in(tmp_path / "logs" / "error.log") == expected


def test_bad_arguments_are_rejected_before_logging_starts(
    tmp_path: Path, run_demo: RunPython
) -> None:
    result = run_demo("--epochs", "0")

    assert result.returncode == 2
    assert "--epochs: must be a positive whole number, got 0" in result.stderr
    assert not (tmp_path / "logs").exists()
