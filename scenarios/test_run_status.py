"""The run record tells the truth: how the run ended, whether it is alive, and
what retention may remove; job steps and nodes get run ids that fit them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import INFO_REACHES_EVERY_SINK
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import context, runs

SCRIPT = (
    """
import contextlib, logging, os, signal, sys, threading, time
from pathlib import Path
from {{ cookiecutter.package_name }} import config
config.RUN_DIRS_KEPT = {kept!r}
"""
    + INFO_REACHES_EVERY_SINK
    + """log_dir = config.setup_logging({log_dir!r})
log = logging.getLogger("job")
log.info("started")
print("ready", flush=True)
{body}
"""
)
# Launcher and scheduler variables that would give the test's runs an id.
JOB_VARIABLES = (
    config.RUN_ID_ENV,
    "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_ERROR_FILE",
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "SLURM_STEPID",
    "SLURM_RESTART_COUNT",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_WORLD_SIZE",
    "NNODES",
    "NODE_RANK",
)
LAYOUTS = pytest.mark.parametrize("kept", [None, 20], ids=["shared", "per_run"])


def start(
    log_dir: Path,
    body: str = "",
    kept: int | None = 20,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> subprocess.Popen[str]:
    """A process that sets up logging in ``log_dir``, prints "ready", runs ``body``."""
    environ = {k: v for k, v in os.environ.items() if k not in JOB_VARIABLES}
    environ["PYTHONPATH"] = os.pathsep.join(sys.path)
    code = SCRIPT.format(log_dir=str(log_dir), kept=kept, body=body)
    return subprocess.Popen(
        [sys.executable, *(args or ["-c", code])],
        env={**environ, **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    if line != "ready\n":
        process.kill()
        _, stderr = process.communicate(timeout=30)
        pytest.fail(f"the run did not start: {line!r} {stderr}")


def finish(process: subprocess.Popen[str], stdin: str = "") -> tuple[int, str]:
    """Wait (at most 60 s) for the process; its exit status and stderr."""
    try:
        _, stderr = process.communicate(stdin, timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, stderr


def run(log_dir: Path, body: str = "", **kwargs: Any) -> tuple[int, str]:
    return finish(start(log_dir, body, **kwargs))


def records(log_dir: Path) -> dict[str, dict[str, Any]]:
    """The run records in ``log_dir``, by run id, in either layout."""
    found = {}
    paths = [*log_dir.glob("runs/*.json"), *(d / "run.json" for d in run_dirs(log_dir))]
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        found[data["run_id"]] = data
    return found


def run_dirs(log_dir: Path) -> list[Path]:
    """The run directories holding a record, not counting ``latest``."""
    return [p.parent for p in log_dir.glob("*/run.json") if not p.parent.is_symlink()]


def the_record(log_dir: Path) -> dict[str, Any]:
    [data] = records(log_dir).values()
    return data


@pytest.fixture(autouse=True)
def no_job(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in JOB_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    runs.forget()


ENDINGS: dict[str, tuple[str, int, tuple[str, int | None]]] = {
    "returns": ("pass", 0, ("finished", 0)),
    "exit-0": ("sys.exit(0)", 0, ("finished", 0)),
    "exit-3": ("sys.exit(3)", 3, ("failed", 3)),
    "exit-message": ("sys.exit('no data in /data')", 1, ("failed", 1)),
    "exit-in-with": (
        "def main():\n    with contextlib.suppress(ValueError):\n"
        "        sys.exit(4)\nmain()",
        4,
        ("failed", 4),
    ),
    "exit-caught": (
        "try:\n    sys.exit(5)\nexcept SystemExit:\n    log.info('carry on')",
        0,
        ("finished", 0),
    ),
    "exit-in-thread": (
        "t = threading.Thread(target=sys.exit, args=(6,))\nt.start()\nt.join()",
        0,
        ("finished", 0),
    ),
    "exception": ("raise ValueError('bad batch')", 1, ("failed", 1)),
    # Killed by SIGINT, or exit status 1 where SIGINT is ignored (a background job)
    "ctrl-c": ("raise KeyboardInterrupt", -signal.SIGINT, ("interrupted", 130)),
    # The interpreter keeps the code of a SystemExit raised directly to itself.
    "raise-system-exit": ("raise SystemExit(7)", 7, ("exited", None)),
}


@LAYOUTS
@pytest.mark.parametrize("ending", ENDINGS)
def test_the_record_says_how_the_run_ended(
    tmp_path: Path, kept: int | None, ending: str
) -> None:
    body, expected_returncode, expected = ENDINGS[ending]
    returncode, stderr = run(tmp_path, body, kept=kept)

    ignored_sigint = ending == "ctrl-c" and returncode == 1
    assert returncode == expected_returncode or ignored_sigint, stderr

    data = the_record(tmp_path)
    assert (data["status"], data["exit_code"]) == expected
    assert data["end"] >= data["start"]
    if ending == "exit-message":
        assert data["error"] == "no data in /data"
    if ending == "exception":
        assert data["error"] == "ValueError: bad batch"
    assert not list(tmp_path.glob("runs/.*")), "the run's lock file stays"


@LAYOUTS
@pytest.mark.parametrize("busy", [False, True], ids=["sleeping", "logging"])
@pytest.mark.parametrize("attempt", range(3))
def test_sigterm_is_recorded_before_the_process_dies(
    tmp_path: Path, kept: int | None, busy: bool, attempt: int
) -> None:
    body = "while True:\n    log.info('step')" if busy else "time.sleep(60)"
    process = start(tmp_path, body, kept=kept)
    wait_ready(process)
    process.send_signal(signal.SIGTERM)

    assert finish(process)[0] == -signal.SIGTERM  # it still dies of the signal
    data = the_record(tmp_path)
    assert (data["status"], data["exit_code"]) == ("terminated", 143)
    assert data["signal"] == "SIGTERM"
    assert data["end"] >= data["start"]


def test_sigterm_is_recorded_through_the_entry_point(tmp_path: Path) -> None:
    args = ["-m", "{{ cookiecutter.package_name }}", "--epochs", "100000000"]
    process = start(tmp_path, env={config.LOG_DIR_ENV: str(tmp_path)}, args=args)
    deadline = time.monotonic() + 30
    while not records(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)  # the run record is written as the run starts
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)

    assert finish(process)[0] == -signal.SIGTERM
    data = the_record(tmp_path)
    assert (data["status"], data["exit_code"], data["signal"]) == (
        "terminated",
        143,
        "SIGTERM",
    )


@LAYOUTS
@pytest.mark.parametrize("death", ["os._exit", "SIGKILL"])
def test_a_run_that_vanished_is_marked_by_the_next_run(
    tmp_path: Path, kept: int | None, death: str
) -> None:
    alive = start(tmp_path, "sys.stdin.readline()", kept=kept)
    wait_ready(alive)
    if death == "os._exit":
        assert run(tmp_path, "os._exit(0)", kept=kept)[0] == 0
    else:
        killed = start(tmp_path, "time.sleep(60)", kept=kept)
        wait_ready(killed)
        killed.kill()
        assert finish(killed)[0] == -signal.SIGKILL
    [vanished] = [r for r in records(tmp_path).values() if r["pid"] != alive.pid]
    assert vanished["status"] == "running"  # nothing could say otherwise yet

    assert run(tmp_path, kept=kept)[0] == 0  # the next run looks

    found = records(tmp_path)
    assert found[vanished["run_id"]]["status"] == "vanished"
    assert found[vanished["run_id"]]["noticed_by"] in found
    assert found[vanished["run_id"]]["exit_code"] is None
    [still] = [r for r in found.values() if r["pid"] == alive.pid]
    assert still["status"] == "running"  # alive: never marked
    assert finish(alive, "\n")[0] == 0
    assert records(tmp_path)[still["run_id"]]["status"] == "finished"


LONG_RUN = """
for i in range(400):
    log.info("record %d", i)
    time.sleep(0.0005)
sys.stdin.readline()  # the short runs start meanwhile
for i in range(400, 800):
    log.info("record %d", i)
config.flush_logs()
"""


def sweep(tmp_path: Path, kept: int, short_runs: int) -> None:
    """One long run while ``short_runs`` short ones start and end."""
    long = start(tmp_path, LONG_RUN, kept=kept)
    wait_ready(long)
    [long_dir] = run_dirs(tmp_path)
    for _ in range(short_runs):
        assert run(tmp_path, kept=kept)[0] == 0
        assert (long_dir / "run.json").is_file(), "a live run's directory removed"
    returncode, stderr = finish(long, "\n")

    assert returncode == 0, stderr
    info = (long_dir / "info.log").read_text(encoding="utf-8")
    lines = [line for line in info.splitlines() if "record " in line]
    assert len(lines) == 800
    assert "dropped" not in info + stderr
    assert json.loads((long_dir / "run.json").read_text())["status"] == "finished"
    # Ended now: the next run removes it as the oldest.
    assert run(tmp_path, kept=kept)[0] == 0
    assert not long_dir.exists()
    assert len(records(tmp_path)) == kept


@pytest.mark.parametrize("attempt", range(2))
def test_retention_never_removes_a_run_that_is_alive(
    tmp_path: Path, attempt: int
) -> None:
    sweep(tmp_path, kept=3, short_runs=4)


def test_one_run_kept_and_a_second_starts_while_the_first_runs(
    tmp_path: Path,
) -> None:
    sweep(tmp_path, kept=1, short_runs=1)


@pytest.mark.slow
def test_a_sweep_of_twenty_short_runs_beside_a_long_one(tmp_path: Path) -> None:
    sweep(tmp_path, kept=20, short_runs=20)


def old_run(
    log_dir: Path, name: str, marker: str, record: dict[str, Any] | None
) -> Path:
    """A run directory as an earlier run left it, an hour ago."""
    directory = log_dir / name
    directory.mkdir(parents=True)
    (directory / "info.log").write_text("INFO old\n")
    if record is not None:
        (directory / "run.json").write_text(json.dumps({"run_id": name, **record}))
    (directory / runs.MARKER).write_text(marker)
    os.utime(directory / runs.MARKER, (time.time() - 3600,) * 2)
    return directory


def test_a_run_of_another_host_is_kept_until_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks of some cluster file systems (BeeGFS, Lustre with localflock) do not
    reach other nodes: a run of another host is judged by its record only."""
    elsewhere = {"status": "running", "host": "node-elsewhere", "pid": os.getpid()}
    running = old_run(tmp_path, "20200101-000000-000-aaaaaa", "", elsewhere)
    # Of this host, its process gone: pid 2**22 + 1 is above Linux's limit.
    here = {**elsewhere, "host": context.host_name(), "pid": 2**22 + 1}
    here["process_start"] = "x/1"
    vanished = old_run(tmp_path, "20200101-000001-000-bbbbbb", "", here)
    # No record (a node's directory, or a run killed as it started): the marker
    # names its process.
    marker = f"host {context.host_name()}\npid {2**22 + 1}\nprocess_start x/1\n"
    bare = old_run(tmp_path, "20200101-000002-000-cccccc", marker, None)
    monkeypatch.setattr(config, "RUN_DIRS_KEPT", 1)

    config.setup_logging(tmp_path)

    assert json.loads((running / "run.json").read_text())["status"] == "running"
    assert (running / "info.log").is_file()
    assert not vanished.exists() and not bare.exists()


USER_FILES = """
latest = log_dir.parent / "latest"
(latest / "model.ckpt").write_text("weights")
(latest / "checkpoints").mkdir()
(latest / "checkpoints" / "epoch1.pt").write_text("weights")
"""


def test_retention_keeps_the_files_it_did_not_write(tmp_path: Path) -> None:
    assert run(tmp_path, USER_FILES, kept=1)[0] == 0
    [first] = run_dirs(tmp_path)
    (first / "error.log.1").write_text("rotated\n")  # as a rollover leaves it

    returncode, stderr = run(tmp_path, kept=1)

    assert returncode == 0, stderr
    assert sorted(p.name for p in first.iterdir()) == ["checkpoints", "model.ckpt"]
    assert (first / "checkpoints" / "epoch1.pt").read_text() == "weights"
    [warning] = [line for line in stderr.splitlines() if "did not write" in line]
    assert str(first / "model.ckpt") in warning
    assert str(first / "checkpoints") in warning
    [second] = [path for path in run_dirs(tmp_path) if path != first]
    assert "did not write" in (second / "info.log").read_text(encoding="utf-8")
    assert (tmp_path / "latest").resolve() == second
    # No longer a run directory: the next run neither removes it nor says so again.
    returncode, stderr = run(tmp_path, kept=1)
    assert returncode == 0 and "did not write" not in stderr
    assert (first / "model.ckpt").read_text() == "weights"


@LAYOUTS
def test_job_steps_of_one_slurm_job_get_a_record_each(
    tmp_path: Path, kept: int | None
) -> None:
    steps = [
        start(tmp_path, kept=kept, env={"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": step})
        for step in ("0", "1")
    ]
    assert [finish(step)[0] for step in steps] == [0, 0]

    found = records(tmp_path)
    assert sorted(found) == ["4242.0", "4242.1"]
    assert {r["status"] for r in found.values()} == {"finished"}


def test_a_requeued_slurm_job_is_another_run() -> None:
    notes: list[str] = []
    environ = {"SLURM_JOB_ID": "77", "SLURM_RESTART_COUNT": "2"}
    assert context.detect(environ, config.RUN_ID_ENV, notes).run_id == "77.restart2"
    assert context.detect({"SLURM_JOB_ID": "77"}, "X", notes).run_id == "77"
    assert notes == []


NODE = {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "none"}


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({**NODE, "RANK": "0", "LOCAL_RANK": "0"}, True),
        ({**NODE, "RANK": "2", "LOCAL_RANK": "0"}, True),  # the second node
        ({**NODE, "RANK": "3", "LOCAL_RANK": "1"}, False),  # its node's first says it
        ({**NODE, "RANK": "0", "TORCHELASTIC_RUN_ID": "job-9"}, False),
        ({**NODE, "RANK": "0", config.RUN_ID_ENV: "job-9"}, False),
        ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "RANK": "0"}, False),
        ({"GROUP_WORLD_SIZE": "2", "RANK": "0"}, True),
    ],
    ids=["node0", "node1", "node1-rank1", "rdzv-id", "run-id", "one-node", "groups"],
)
def test_nodes_without_a_shared_run_id_are_told_how_to_get_one(
    tmp_path: Path, env: dict[str, str], warned: bool
) -> None:
    returncode, stderr = run(tmp_path, kept=None, env=env)

    assert returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if "--rdzv-id" in line]
    assert len(warnings) == warned
    if warned:
        assert config.RUN_ID_ENV in warnings[0]
        rank = env["RANK"]
        name = "info.log" if rank == "0" else f"info.rank{rank}.log"
        assert "--rdzv-id" in (tmp_path / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("launch", ["none_k3j_2a_", "none_", "none_x_y_z_w"])
def test_an_elastic_launch_id_has_a_random_part(tmp_path: Path, launch: str) -> None:
    launcher = tmp_path / "torchelastic_ab12" / launch
    environ = {
        "TORCHELASTIC_RUN_ID": "none",
        "TORCHELASTIC_ERROR_FILE": str(launcher / "attempt_0" / "0" / "error.json"),
    }
    launcher.mkdir(parents=True)
    run_id = context.detect(environ, "X", []).run_id
    # Another rank of the launch on this host.
    error_file = launcher / "attempt_0" / "1" / "error.json"
    other = {**environ, "TORCHELASTIC_ERROR_FILE": str(error_file)}

    stamp, _, random = run_id.rpartition("-")
    assert random.strip("_") and stamp[:8].isdigit()
    assert context.detect(other, "X", []).run_id == run_id
