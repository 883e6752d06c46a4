"""Run directories, `latest`, retention and the run record (run.json)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import runs

SCRIPT = """
import logging, sys, time
from {{ cookiecutter.package_name }} import config
config.RUN_DIRS_KEPT = {kept!r}
config.add_run_info(lr=0.1)
config.setup_logging({log_dir!r})
logging.getLogger("job").critical("hello")
{body}
"""


def start_python(
    log_dir: Path,
    body: str = "",
    kept: int | None = 20,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start a process that sets up logging in ``log_dir`` and runs ``body``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            SCRIPT.format(log_dir=str(log_dir), kept=kept, body=body),
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> int:
    process.communicate(timeout=60)
    return process.returncode


def record(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def run_dirs(log_dir: Path) -> list[Path]:
    """The run directories in ``log_dir``, not counting ``latest``."""
    return sorted(
        path
        for path in log_dir.iterdir()
        if (path / runs.MARKER).is_file() and not path.is_symlink()
    )


@pytest.fixture(autouse=True)
def new_record() -> None:
    """Fields added by an earlier test are not this test's."""
    runs.forget()


def test_run_ids_sort_by_start_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (config.RUN_ID_ENV, "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    ids = []
    for _ in range(5):
        config.setup_logging(tmp_path, new_run=True)
        ids.append(config.run_context().run_id)
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


@pytest.mark.parametrize("attempt", range(3))
def test_runs_started_in_the_same_second_get_their_own_directories(
    tmp_path: Path, attempt: int
) -> None:
    processes = [start_python(tmp_path) for _ in range(4)]  # all at once
    assert [finish(process) for process in processes] == [0, 0, 0, 0]

    directories = run_dirs(tmp_path)
    assert len(directories) == 4
    for directory in directories:
        assert record(directory / "run.json")["run_id"] == directory.name
        assert "hello" in (directory / "error.log").read_text(encoding="utf-8")


def test_all_ranks_of_a_job_share_one_directory(tmp_path: Path) -> None:
    env = {config.RUN_ID_ENV: "job-7", "WORLD_SIZE": "2"}
    ranks = [
        start_python(tmp_path, env={**env, "RANK": str(rank)}) for rank in range(2)
    ]
    assert [finish(process) for process in ranks] == [0, 0]

    assert run_dirs(tmp_path) == [tmp_path / "job-7"]
    names = {path.name for path in (tmp_path / "job-7").iterdir()}
    assert names == {
        runs.MARKER,
        "run.json",  # written by rank 0 only
        "info.log",
        "error.log",
        "info.rank1.log",
        "error.rank1.log",
    }
    assert record(tmp_path / "job-7" / "run.json")["world_size"] == 2
    assert (tmp_path / "latest").resolve() == tmp_path / "job-7"


def test_latest_names_the_newest_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "RUN_DIRS_KEPT", 5)
    first = config.setup_logging(tmp_path)
    second = config.setup_logging(tmp_path, new_run=True)

    assert first != second
    assert second is not None and second.parent == tmp_path
    assert (tmp_path / "latest").resolve() == second
    assert config.run_context().run_id == second.name


def test_latest_is_a_text_file_where_links_are_not_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError("symbolic links are not allowed here")

    monkeypatch.setattr(os, "symlink", no_links)
    monkeypatch.setattr(config, "RUN_DIRS_KEPT", 5)
    log_dir = config.setup_logging(tmp_path)

    assert log_dir is not None
    latest = tmp_path / "latest"
    assert not latest.is_symlink()
    assert latest.read_text(encoding="utf-8") == f"{log_dir.name}\n"


def test_set_up_removes_only_the_oldest_directories_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = []
    for age in (4, 3, 2):  # hours ago
        old = tmp_path / f"20200101-00000{age}-000-abcdef"
        old.mkdir()
        (old / runs.MARKER).touch()
        (old / "info.log").touch()
        os.utime(old / runs.MARKER, (time.time() - age * 3600,) * 2)
        made.append(old)
    unrelated = tmp_path / "checkpoints"
    unrelated.mkdir()
    # Shaped like a run, with a run.json, but not marked by set-up: kept.
    lookalike = tmp_path / "20200101-000000-000-abcdef"  # older than all
    lookalike.mkdir()
    (lookalike / "run.json").write_text("{}", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")

    monkeypatch.setattr(config, "RUN_DIRS_KEPT", 2)
    current = config.setup_logging(tmp_path)

    assert run_dirs(tmp_path) == sorted([made[-1], current])  # type: ignore[type-var]
    assert unrelated.is_dir() and lookalike.is_dir()
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_run_that_raises_is_recorded_as_failed(tmp_path: Path) -> None:
    process = start_python(tmp_path, "time.sleep(0.05)\nraise ValueError('bad batch')")
    assert finish(process) == 1

    [directory] = run_dirs(tmp_path)
    data = record(directory / "run.json")
    assert (data["status"], data["exit_code"]) == ("failed", 1)
    assert data["error"] == "ValueError: bad batch"
    assert data["duration_s"] >= 0.05
    assert data["end"] > data["start"]
    assert data["lr"] == 0.1


def test_a_run_that_ends_is_recorded_as_finished(tmp_path: Path) -> None:
    assert finish(start_python(tmp_path, kept=None)) == 0

    [path] = (tmp_path / "runs").iterdir()  # the shared layout's records
    data = record(path)
    assert (data["status"], data["exit_code"]) == ("finished", 0)
    assert data["run_id"] == path.stem


def test_the_record_describes_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "s3cr3t-value-from-env")
    config.add_run_info(lr=0.01, note="url https://me:hunter22@example.org/x")
    log_dir = config.setup_logging(tmp_path)
    config.add_run_info(epochs=3)
    run_id = config.run_context().run_id

    path = tmp_path / "runs" / f"{run_id}.json"
    text = path.read_text(encoding="utf-8")
    assert "hunter22" not in text and "s3cr3t" not in text
    data = record(path)
    assert data["status"] == "running"
    assert (data["lr"], data["epochs"]) == (0.01, 3)
    assert data["log_dir"] == str(log_dir)
    assert data["log_files"]["info"] == str(tmp_path / "info.log")
    assert data["log_levels"]["root"] == config.LOGGING_CONFIG["root"]["level"]
    assert data["python"] == ".".join(map(str, sys.version_info[:3]))
    assert data["host"] == config.run_context().host
    assert ("torch" in data) == ("torch" in sys.modules)
    assert runs.summary().startswith(f"Run {run_id} started: ")
    with pytest.raises(ValueError, match="status: set by the run record itself"):
        config.add_run_info(status="great")


def test_torch_is_never_imported_for_the_record(tmp_path: Path) -> None:
    body = "assert 'torch' not in sys.modules, 'torch imported'"
    assert finish(start_python(tmp_path, body)) == 0


def test_outside_a_repository_git_is_skipped_quickly(tmp_path: Path) -> None:
    started = time.perf_counter()
    assert runs.git_info(tmp_path) is None
    assert time.perf_counter() - started < 0.1


def test_without_git_the_record_has_no_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    started = time.perf_counter()
    assert runs.git_info(Path(__file__).parent) is None
    assert time.perf_counter() - started < 0.1


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_in_a_repository_the_commit_branch_and_changes_are_recorded(
    tmp_path: Path,
) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q", "-b", "trunk")
    (tmp_path / "train.py").write_text("print(1)\n", encoding="utf-8")
    git("add", "train.py")
    git("commit", "-q", "-m", "first")
    commit = git("rev-parse", "HEAD")

    assert runs.git_info(tmp_path) == {
        "commit": commit,
        "branch": "trunk",
        "dirty": False,
    }
    (tmp_path / "train.py").write_text("print(2)\n", encoding="utf-8")
    assert runs.git_info(tmp_path) == {
        "commit": commit,
        "branch": "trunk",
        "dirty": True,
    }
