"""The entry point, run as users run it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import logfiles
import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }} import config, main, train
from {{ cookiecutter.package_name }}.logging_infra import configure

RunPython = Callable[..., subprocess.CompletedProcess[str]]


PACKAGE = {{ cookiecutter.package_name }}.__name__
SRC_DIR = Path({{ cookiecutter.package_name }}.__file__).resolve().parents[1]
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


def shown(logs: Path, tmp_path: Path) -> str:
    """The log directory as the console names it: from the working directory."""
    return str(logs.relative_to(tmp_path))


def test_training_run_logs_to_console_and_files(
    tmp_path: Path, run_demo: RunPython
) -> None:
    result = run_demo("--epochs", "3")

    assert result.returncode == 0, result.stderr
    console = result.stderr.splitlines()
    logs = demo_logs(tmp_path)
    # The start: at most two short lines, the log directory named once.
    start = console[: console.index("Generated 200 samples (seed=0, noise=0.10)")]
    assert 1 <= len(start) <= 2, start
    assert max(map(len, start)) <= 100, start
    assert " ".join(start).count(f" in {shown(logs, tmp_path)}") == 1, start
    assert str(tmp_path) not in " ".join(start), start
    started = rf"Run (\S+) started; logs in {re.escape(shown(logs, tmp_path))}"
    run_id = re.fullmatch(started, start[0])
    assert run_id, start
    epochs = [line.split()[1] for line in console if line.startswith("epoch ")]
    assert epochs == ["1/3", "2/3", "3/3"]
    assert re.fullmatch(rf"Run {run_id[1]} finished in \d+\.\d\ds", console[-2])
    assert console[-1] == f"Logs are in {shown(logs, tmp_path)}"
    # The files have the whole summary instead, and nothing that is not known.
    messages = [record.message for record in logfiles.read(logs / "info.log")]
    summary = rf"Run {run_id[1]} started: .* --epochs 3; " r"args=\{.*\}; Python .*"
    if "INFO" in allowed_in("info"):
        assert re.fullmatch(summary, messages[0]), messages[0]
        assert f"record in {next(logs.rglob('*.json'))}" in messages[0]
        assert not any(m.startswith("Logs are in") for m in messages), messages
        assert "git none" not in messages[0]  # the project is no git repository
    assert set(levels_in(logs / "info.log")) <= set(allowed_in("info"))
    assert levels_in(logs / "error.log") == []
    record = json.loads(next(logs.rglob("*.json")).read_text(encoding="utf-8"))
    assert record["run_id"] == run_id[1]
    assert record["args"] == {"epochs": 3, "samples": 200, "lr": 0.005, "seed": 0}
    assert (record["status"], record["exit_code"]) == ("finished", 0)


def test_a_debug_run_logs_every_few_steps_not_every_sample(
    tmp_path: Path, run_python: RunPython
) -> None:
    env = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "DEBUG"}
    result = run_python("-m", PACKAGE, env=env)  # the demo as it comes

    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stderr.splitlines() if " step " in line]
    # 5 epochs of 160 samples: one record every LOG_EVERY steps, not 800 records.
    assert 0 < len(steps) <= 5 * 160 // train.LOG_EVERY, len(steps)
    files = [path for path in tmp_path.joinpath("logs").rglob("*") if path.is_file()]
    written = len(result.stderr.encode()) + sum(path.stat().st_size for path in files)
    assert written < 1_000_000, written


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGINT to send")
def test_ctrl_c_is_logged_as_an_interruption_everywhere(
    tmp_path: Path, run_python: RunPython
) -> None:
    """Console, error.log and run.json all say "interrupted"; repeated, as the
    signal lands wherever the loop happens to be."""
    for attempt in range(3):
        logs = tmp_path / f"logs{attempt}"
        env = dict(os.environ, PYTHONPATH=str(SRC_DIR))
        env.update({config.LOG_DIR_ENV: str(logs), config.LOG_LEVEL_ENV: "INFO"})
        demo = subprocess.Popen(
            [sys.executable, "-m", PACKAGE, "--epochs", "100000", "--samples", "2000"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
            # As a shell's foreground job: a runner that ignores SIGINT (as a
            # pytest-xdist worker does) would pass that on.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert demo.stderr is not None
        lines = [demo.stderr.readline()]  # training has started once an epoch ends
        while not lines[-1].startswith(f"epoch {attempt + 1}/") and lines[-1]:
            lines.append(demo.stderr.readline())
        demo.send_signal(signal.SIGINT)
        console = "".join(lines) + demo.communicate(timeout=60)[1]

        assert demo.returncode == -signal.SIGINT, console  # a shell shows 130
        assert "failed" not in console
        run_id = run_id_in(console)
        ended = rf"^Run {run_id} interrupted after \d+\.\d\ds$"
        assert re.search(ended, console, re.M), console
        traceback = r"^Interrupted\nTraceback \(most recent call last\):\n"
        assert re.search(traceback, console, re.M), console
        assert console.rstrip().endswith("KeyboardInterrupt"), console
        run_dir = logs if (logs / "error.log").exists() else (logs / "latest").resolve()
        errors = logfiles.read(run_dir / "error.log")
        assert [r.level for r in errors] == ["ERROR", "ERROR"], errors
        assert re.fullmatch(ended[1:-1], errors[0].message)
        assert errors[1].message == "Interrupted"
        assert errors[1].exception.startswith("Traceback (most recent call last):")
        assert errors[1].exception.endswith("KeyboardInterrupt")
        record = json.loads(next(run_dir.rglob("*.json")).read_text("utf-8"))
        assert (record["status"], record["exit_code"]) == ("interrupted", 130)


def run_id_in(console: str) -> str:
    match = re.search(r"^Run (\S+) started", console, re.M)
    assert match, console
    return match[1]


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

    records = logfiles.read(tmp_path / "info.log")
    run_id = config.run_context().run_id
    assert records[0].message.startswith(f"Run {run_id} started: ")
    assert re.fullmatch(rf"Run {run_id} failed after \d+\.\d\ds", records[-1].message)
    # Logged by config's functions, located where main() calls them.
    assert {(r.file, r.function) for r in (records[0], records[-1])} == {
        ("main.py", "main")
    }
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
