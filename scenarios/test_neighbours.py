"""Living with the program's other tools: an event loop or a library that takes
SIGTERM over, scripts that start scripts, worker pools that start a process
per task.

Each scenario runs in a fresh interpreter with a time limit, so that a hang
fails the test instead of stopping the suite.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import logfiles
from conftest import INFO_REACHES_EVERY_SINK
from {{ cookiecutter.package_name }}.logging_infra import relay

RunPython = Callable[..., subprocess.CompletedProcess[str]]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

PRELUDE = """
import asyncio, logging, os, signal, subprocess, sys, time
from {{ cookiecutter.package_name }} import config
config.LOGGING_CONFIG["handlers"]["info"]["backupCount"] = 1000  # keep every record
config.RUN_DIRS_KEPT = None  # the files straight in the log directory
log = logging.getLogger("job")
LOG_DIR = {log_dir!r}
"""


def script(log_dir: Path, body: str) -> str:
    return PRELUDE.format(log_dir=str(log_dir)) + INFO_REACHES_EVERY_SINK + body


def records(log_dir: Path, name: str = "info") -> list[logfiles.Record]:
    """Every record in a log and its rotated files; fails on torn lines."""
    found = []
    for path in sorted(log_dir.glob(f"{name}.log*")):
        lines = path.read_text(encoding="utf-8").splitlines()
        found += logfiles.parse(lines, path.name)
    return found


def messages(log_dir: Path, name: str = "info") -> list[str]:
    return [record.message for record in records(log_dir, name)]


# CRITICAL records reach every sink whatever levels the project was made with.
BURST = "for n in range(20000):\n    log.critical('record %05d', n)\n"
EXPECTED_BURST = [f"record {n:05d}" for n in range(20000)]

# asyncio.run() with a SIGTERM handler of the loop's; closing the loop puts
# SIGTERM back to its default action and the wakeup fd to -1.
ASYNC_MAIN = """
async def main(order):
    if order == "inside":
        config.setup_logging(LOG_DIR)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, print, "loop's")
    if order == "inside, after the loop's handler":
        config.setup_logging(LOG_DIR)
    await asyncio.sleep(0.01)

order = {order!r}
if order == "before":
    config.setup_logging(LOG_DIR)
asyncio.run(main(order))
log.critical("after the loop")
time.sleep(0.5)  # later on
"""


@posix_only
@pytest.mark.parametrize("attempt", range(3))
@pytest.mark.parametrize(
    "order", ["before", "inside", "inside, after the loop's handler"]
)
def test_sigterm_after_an_event_loop_closed_writes_what_is_queued(
    tmp_path: Path, run_python: RunPython, order: str, attempt: int
) -> None:
    body = ASYNC_MAIN.format(order=order) + BURST
    body += "os.kill(os.getpid(), signal.SIGTERM)\nlog.critical('not reached')\n"

    result = run_python("-c", script(tmp_path, body), timeout=60)

    assert result.returncode == -15, result.stderr[-2000:]
    expected = ["after the loop", *EXPECTED_BURST, "Terminated by SIGTERM"]
    found = messages(tmp_path)
    assert found == expected, f"{len(found)} of {len(expected)} records"


@posix_only
def test_sigterm_while_the_loop_s_handler_is_in_place_is_the_loop_s(
    tmp_path: Path, run_python: RunPython
) -> None:
    body = """
config.setup_logging(LOG_DIR)
async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    for n in range(20000):
        log.critical('record %05d', n)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(stop.wait(), 10)
    log.critical("stopped by the loop's handler")
asyncio.run(main())
"""
    result = run_python("-c", script(tmp_path, body), timeout=60)

    assert result.returncode == 0, result.stderr[-2000:]
    assert messages(tmp_path) == [*EXPECTED_BURST, "stopped by the loop's handler"]


@posix_only
def test_the_user_s_own_sigterm_handler_runs_once_and_the_process_lives_on(
    tmp_path: Path, run_python: RunPython
) -> None:
    """A graceful stop: the user's handler asks the loop to end; the process
    takes its time (more than the watcher's grace) and is never killed."""
    body = f"""
config.setup_logging(LOG_DIR)
calls = []
signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
{BURST}
os.kill(os.getpid(), signal.SIGTERM)
started = time.monotonic()
while time.monotonic() - started < 6:  # a checkpoint being saved, say
    time.sleep(0.01)
log.critical("stopped gracefully, the handler ran %d times", len(calls))
"""
    result = run_python("-c", script(tmp_path, body), timeout=60)

    assert result.returncode == 0, result.stderr[-2000:]
    ended = "stopped gracefully, the handler ran 1 times"
    assert messages(tmp_path) == [*EXPECTED_BURST, ended]


@posix_only
@pytest.mark.parametrize("attempt", range(3))
def test_a_library_s_handler_that_ends_the_process_at_once_loses_nothing_queued(
    tmp_path: Path, run_python: RunPython, attempt: int
) -> None:
    """A handler that chains nothing and leaves by os._exit(), which runs no
    exit handler, after its own clean-up."""
    body = f"""
config.setup_logging(LOG_DIR)
def library_handler(signum, frame):
    time.sleep(1)  # its own clean-up
    os._exit(143)
signal.signal(signal.SIGTERM, library_handler)
{BURST}
os.kill(os.getpid(), signal.SIGTERM)
log.critical('not reached')
"""
    result = run_python("-c", script(tmp_path, body), timeout=60)

    assert result.returncode == 143, result.stderr[-2000:]
    assert messages(tmp_path) == EXPECTED_BURST


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork"
)
def test_forked_workers_never_compile_the_masking_pattern(
    tmp_path: Path, run_python: RunPython
) -> None:
    """A pool that forks a process per task: the parent compiles the pattern
    once, before the first fork, and every worker inherits it."""
    body = """
import multiprocessing
from {{ cookiecutter.package_name }}.logging_infra import redact
real_compile = redact._compile
def counted_compile():
    with open("compiled", "a") as file:
        file.write(f"{os.getpid()}\\n")
    return real_compile()
redact._compile = counted_compile
config.setup_logging(LOG_DIR)
def task(number):
    for record in range(3):
        log.critical("task %02d record %d", number, record)
if __name__ == "__main__":
    pool = multiprocessing.get_context("fork").Pool(2, maxtasksperchild=1)
    pool.map(task, range(20), chunksize=1)
    pool.close()
    pool.join()
    print(os.getpid())
"""
    path = tmp_path / "pool.py"
    path.write_text(script(tmp_path, body), encoding="utf-8")

    result = run_python(str(path), timeout=60)

    assert result.returncode == 0, result.stderr[-2000:]
    compiled = (tmp_path / "compiled").read_text(encoding="utf-8").split()
    assert compiled == [result.stdout.strip()]  # the parent's pid, once
    expected = {f"task {n:02d} record {r}" for n in range(20) for r in range(3)}
    assert sorted(messages(tmp_path)) == sorted(expected)


CHILD = """
config.setup_logging(LOG_DIR)  # joins the run of the process that started it
with open("child.pid", "w") as file:
    file.write(str(os.getpid()))
every = float(sys.argv[1])
for number in range(8):
    log.critical("child record %d", number)
    time.sleep(every)
log.error("child error text")
"""


def write_child(log_dir: Path) -> Path:
    path = log_dir / "child.py"
    path.write_text(script(log_dir, CHILD), encoding="utf-8")
    return path


def test_a_child_s_console_lines_stay_on_its_own_stderr(
    tmp_path: Path, run_python: RunPython
) -> None:
    child = write_child(tmp_path)
    body = f"""
config.setup_logging(LOG_DIR)
log.critical("parent record")
done = subprocess.run(
    [sys.executable, {str(child)!r}, "0"], capture_output=True, text=True
)
print(repr(done.stderr))
"""
    result = run_python("-c", script(tmp_path, body), timeout=60)

    assert result.returncode == 0, result.stderr[-2000:]
    expected = [f"child record {n}" for n in range(8)] + ["child error text"]
    assert result.stderr.splitlines() == ["parent record"]
    assert eval(result.stdout).splitlines() == expected  # what the caller captured
    found = records(tmp_path)
    assert [r.message for r in found] == ["parent record", *expected]
    assert len({r.run_id for r in found}) == 1
    assert messages(tmp_path, "error") == ["parent record", *expected]


def process_ended(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@posix_only
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("stderr", ["its own", "its parent's"])
@pytest.mark.parametrize(
    ("seconds", "attempt"),
    [
        (0.1, 0),
        (0.1, 1),
        (0.5, 0),
        (0.5, 1),
        pytest.param(2, 0, marks=pytest.mark.slow),
        pytest.param(4, 0, marks=pytest.mark.slow),  # a record every 0.5 s
        pytest.param(10, 0, marks=pytest.mark.slow),
    ],
)
def test_a_child_that_logs_on_after_its_parent_loses_nothing(
    tmp_path: Path, run_python: RunPython, seconds: float, attempt: int, stderr: str
) -> None:
    """A detached child logs 8 records over ``seconds``; the parent's work is
    done at once. The parent's exit waits for it only a bounded time, and the
    child writes what it logs after the parent has gone to the run's files.
    Its console lines go to its standard error: a file of its own, or its
    parent's (through the parent while it lives)."""
    child = write_child(tmp_path)
    own = stderr == "its own"
    body = f"""
if not {own}:  # the parent's standard error, which the child inherits: a file
    os.dup2(os.open("child.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND), 2)
config.setup_logging(LOG_DIR)
log.critical("parent record")
subprocess.Popen(
    [sys.executable, {str(child)!r}, "{seconds / 8}"],
    stdout=subprocess.DEVNULL,
    stderr=open("child.err", "w") if {own} else None,
)
while not os.path.exists("child.pid"):
    time.sleep(0.01)
time.sleep(0.05)  # the child has logged
print(time.time())  # the parent's work is done: exit
"""
    result = run_python("-c", script(tmp_path, body), timeout=60)
    exited = time.time()

    assert result.returncode == 0, result.stderr[-2000:]
    assert exited - float(result.stdout) < relay.PEERS_SECONDS + 1.5
    pid = int((tmp_path / "child.pid").read_text(encoding="utf-8"))
    deadline = time.monotonic() + seconds + 30
    while not process_ended(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_ended(pid)
    expected = [f"child record {n}" for n in range(8)] + ["child error text"]
    found = records(tmp_path)
    assert sorted(r.message for r in found) == sorted(["parent record", *expected])
    assert len({r.run_id for r in found}) == 1
    assert sorted(messages(tmp_path, "error")) == sorted(["parent record", *expected])
    console = (tmp_path / "child.err").read_text(encoding="utf-8").splitlines()
    assert sorted(console) == sorted(expected if own else ["parent record", *expected])


def test_spawned_workers_end_without_a_warning_or_git(
    tmp_path: Path, run_python: RunPython
) -> None:
    """A worker's end gives the handlers back to its root logger: that is no
    other code configuring logging (no warning), and it asks git nothing."""
    body = """
import multiprocessing
from {{ cookiecutter.package_name }}.logging_infra import runs
config.setup_logging(LOG_DIR)
def task(number):
    log.critical("task %d", number)
    runs.git_info = lambda directory: print("git asked", file=sys.stderr)
if __name__ == "__main__":
    hook = config.worker_logging()
    context = multiprocessing.get_context("spawn")
    with context.Pool(2, initializer=hook, maxtasksperchild=1) as pool:
        pool.map(task, range(4), chunksize=1)
        pool.close()
        pool.join()
"""
    path = tmp_path / "pool.py"
    path.write_text(script(tmp_path, body), encoding="utf-8")

    result = run_python(str(path), timeout=120)

    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(result.stderr.splitlines()) == [f"task {n}" for n in range(4)]
    assert sorted(messages(tmp_path)) == [f"task {n}" for n in range(4)]
