"""The entry point, run as users run it."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import logfiles
import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }} import config, main
from {{ cookiecutter.package_name }}.logging_infra import configure

RunPython = Callable[..., subprocess.CompletedProcess[str]]


PACKAGE = {{ cookiecutter.package_name }}.__name__
LEVELS = list(configure.LEVELS)


def allowed_in(handler: str) -> list[str]:
    """Levels that reach ``handler`` with the configured thresholds."""
    levels = (
        config.LOGGING_CONFIG["root"]["level"],
        config.LOGGING_CONFIG["handlers"][handler]["level"],
    )
    return LEVELS[max(map(LEVELS.index, levels)) :]


def levels_in(path: Path) -> list[str]:
    return [record.level for record in logfiles.read(path)]


def demo_logs(tmp_path: Path) -> Path:
    """Where the demo run by run_demo() wrote its files."""
{%- if cookiecutter.log_layout == "per_run" %}
    return (tmp_path / "logs" / "latest").resolve()  # its own run directory
{%- else %}
    return tmp_path / "logs"
{%- endif %}


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
    summary = r"Run (\S+) started: .* --epochs 3; args=\{.*\}; git "
    run_id = re.match(summary, console[0])
    assert run_id, console[0]
    logs = demo_logs(tmp_path)
    assert console[1] == f"Writing logs to {logs}"
    epochs = [line.split()[1] for line in console if line.startswith("epoch ")]
    assert epochs == ["1/3", "2/3", "3/3"]
    assert re.fullmatch(rf"Run {run_id[1]} finished in \d+\.\d\ds", console[-2])
    assert console[-1] == f"Logs are in {logs}"
    assert set(levels_in(logs / "info.log")) <= set(allowed_in("info"))
    assert levels_in(logs / "error.log") == []
    record = json.loads(next(logs.rglob("*.json")).read_text(encoding="utf-8"))
    assert record["run_id"] == run_id[1]
    assert record["args"] == {"epochs": 3, "samples": 200, "lr": 0.005, "seed": 0}
    assert (record["status"], record["exit_code"]) == ("finished", 0)


def test_diverging_run_is_logged_as_an_error(
    tmp_path: Path, run_demo: RunPython
) -> None:
    result = run_demo("--lr", "5")

    assert result.returncode == 1
    assert "Training diverged: validation loss" in result.stderr
    assert re.search(r"^Run \S+ failed after \d+\.\d\ds$", result.stderr, re.M)
    expected = ["ERROR", "ERROR"] if "ERROR" in allowed_in("error") else []
    assert levels_in(demo_logs(tmp_path) / "error.log") == expected
    record = json.loads(next(demo_logs(tmp_path).rglob("*.json")).read_text("utf-8"))
    assert (record["status"], record["exit_code"]) == ("failed", 1)


def test_a_crash_still_logs_the_end_of_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise MemoryError("out of memory at step 3")

    monkeypatch.setattr(main, "train", crash)
    monkeypatch.setenv(config.LOG_DIR_ENV, str(tmp_path))
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "level", "INFO")
    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"]["info"], "level", "INFO")

    with pytest.raises(MemoryError):
        main.main(["--epochs", "1"])

    messages = [record.message for record in logfiles.read(tmp_path / "info.log")]
    run_id = config.run_context().run_id
    assert messages[0].startswith(f"Run {run_id} started: ")
    assert re.fullmatch(rf"Run {run_id} failed after \d+\.\d\ds", messages[-2])
    assert messages[-1] == f"Logs are in {tmp_path}"
    record = json.loads((tmp_path / "runs" / f"{run_id}.json").read_text("utf-8"))
    assert (record["status"], record["exit_code"]) == ("failed", 1)
    assert record["error"] == "MemoryError: out of memory at step 3"
    assert record["duration_s"] >= 0


def test_bad_arguments_are_rejected_before_logging_starts(
    tmp_path: Path, run_demo: RunPython
) -> None:
    result = run_demo("--epochs", "0")

    assert result.returncode == 2
    assert "--epochs: must be a positive whole number, got 0" in result.stderr
    assert not (tmp_path / "logs").exists()
