"""Worker processes join the run's writer: every record once, and no hang.

Each scenario runs in a fresh interpreter with a time limit, so that a hang
fails the test instead of stopping the suite.
"""

from __future__ import annotations

import logging
import multiprocessing
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import logfiles
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import sigterm

pytestmark = pytest.mark.slow
RunPython = Callable[..., subprocess.CompletedProcess[str]]
START_METHODS = [
    m
    for m in ("spawn", "fork", "forkserver")
    if m in multiprocessing.get_all_start_methods()
]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

PRELUDE = """
import glob, logging, multiprocessing, os, signal, sys, time, warnings
from {{ cookiecutter.package_name }} import config
config.LOGGING_CONFIG["root"]["level"] = "INFO"
config.LOGGING_CONFIG["handlers"]["info"]["level"] = "INFO"
config.LOGGING_CONFIG["handlers"]["info"]["backupCount"] = 10_000  # keep every record
config.LOGGING_CONFIG["handlers"]["error"]["level"] = "ERROR"
config.LOGGING_CONFIG["handlers"]["console"]["level"] = "CRITICAL"
config.RUN_DIRS_KEPT = None  # the files straight in the log directory

def log_records(worker, count, level=logging.INFO):
    log = logging.getLogger(f"worker.{worker}")
    for number in range(count):
        log.log(level, "worker %d record %06d", worker, number)
    return os.getpid()

def warn(number):
    warnings.warn("deprecated call " + str(number), UserWarning)

def log_at(level, worker):
    logging.getLogger(f"worker.{worker}").log(level, "worker %d joined", worker)

def ended_by_a_library(initializer):
    # A worker whose SIGTERM handler is a library's: clean-up, then os._exit().
    initializer()

    def library_handler(signum, frame):
        time.sleep(3)
        os._exit(143)

    signal.signal(signal.SIGTERM, library_handler)

def log_forever(worker, pid_file=None):
    log = logging.getLogger(f"worker.{worker}")
    if pid_file:  # written whole, for the parent to read
        with open(pid_file + ".new", "w") as file:
            file.write(str(os.getpid()))
        os.replace(pid_file + ".new", pid_file)
    number = 0
    while True:
        log.info("endless %d record %06d", worker, number)
        number += 1
"""


def run_script(
    run_python: RunPython, tmp_path: Path, body: str, timeout: float = 300
) -> str:
    """Run PRELUDE + body under ``if __name__ == "__main__"``; fail on a hang.

    A file, not ``-c``: spawned workers import the functions from it.
    """
    main = "\n".join(f"    {line}" for line in body.strip().splitlines())
    script = tmp_path / "scenario.py"
    script.write_text(f"{PRELUDE}\nif __name__ == '__main__':\n{main}\n", "utf-8")
    try:
        result = run_python(str(script), timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s")
    assert result.returncode == 0, result.stderr
    return result.stdout


def terminated_pools(
    tmp_path: Path, method: str, workers: int, repetitions: int, work: str
) -> str:
    """A scenario body: a pool is started, given ``work``, terminated, again.
    It prints how long the longest termination took, as ``slowest()`` reads it."""
    work = "\n".join(f"    {line}" for line in work.strip().splitlines())
    return f"""
config.setup_logging({str(tmp_path)!r})
context = multiprocessing.get_context({method!r})
slowest = 0.0
for repetition in range({repetitions}):
    pool = context.Pool({workers}, initializer=config.worker_logging())
{work}
    start = time.monotonic()
    pool.terminate()
    pool.join()
    slowest = max(slowest, time.monotonic() - start)
print("slowest termination:", slowest)
"""


def slowest(output: str) -> float:
    line = next(line for line in output.splitlines() if line.startswith("slowest"))
    return float(line.split()[-1])


def records(log_dir: Path, name: str = "info") -> list[logfiles.Record]:
    """Every record of a log and its rotated files; fails on a torn line."""
    found = []
    for path in sorted(log_dir.glob(f"{name}.log*")):
        found += logfiles.parse(path.read_text("utf-8").splitlines(), path.name)
    return found


def level_in_info_log() -> int:
    """A level that reaches info.log with LOGGING_CONFIG as config.py has it, as
    a worker that joins by importing config has it (PRELUDE's changes come after
    the import)."""
    levels = (config.LOGGING_CONFIG["root"], config.LOGGING_CONFIG["handlers"]["info"])
    return max(int(getattr(logging, where["level"])) for where in levels)


def assert_exactly_once(found: list[str], expected: list[str]) -> None:
    seen: dict[str, int] = {}
    for message in found:
        seen[message] = seen.get(message, 0) + 1
    lost = [message for message in expected if message not in seen]
    duplicated = [message for message in expected if seen.get(message, 0) > 1]
    assert (len(lost), len(duplicated)) == (0, 0), (lost[:3], duplicated[:3])


@pytest.mark.parametrize("method", START_METHODS)
def test_fifteen_workers_every_record_once_nothing_torn(
    tmp_path: Path, run_python: RunPython, method: str
) -> None:
    # 20,000 records each where starting workers is slow to pay off; fork is
    # also the start method whose at-fork hand-over is most delicate.
    workers, count = 15, (20_000 if method == "spawn" else 5_000)
    run_script(
        run_python,
        tmp_path,
        f"""
config.LOGGING_CONFIG["handlers"]["info"]["maxBytes"] = 1024 * 1024
config.setup_logging({str(tmp_path)!r})
context = multiprocessing.get_context({method!r})
with context.Pool({workers}, initializer=config.worker_logging()) as pool:
    pool.starmap(log_records, [(w, {count}) for w in range({workers})])
""",
    )

    found = records(tmp_path)
    expected = [
        f"worker {w} record {n:06d}" for w in range(workers) for n in range(count)
    ]
    assert_exactly_once([r.message for r in found], expected)
    assert len({r.run_id for r in found}) == 1
    assert len(list(tmp_path.glob("info.log.*"))) > 2, "the files should have rotated"


@posix_only
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_terminate_while_workers_log_never_hangs(
    tmp_path: Path, run_python: RunPython, method: str
) -> None:
    # Worker 0 finishes its records; the others log until the pool is terminated.
    repetitions = 100 if method == "fork" else 5
    work = """
pool.apply_async(log_forever, (1,))
pool.apply_async(log_forever, (2,))
pool.apply(log_records, (repetition, 200))
"""
    pools = terminated_pools(tmp_path, method, 3, repetitions, work)
    after = 'logging.getLogger("parent").info("parent still logs")\nprint("done")'
    output = run_script(run_python, tmp_path, pools + after, timeout=600)

    assert output.splitlines()[-1] == "done"
    assert slowest(output) < sigterm.GRACE_SECONDS  # see the test below
    found = [r.message for r in records(tmp_path)]
    expected = [
        f"worker {r} record {n:06d}" for r in range(repetitions) for n in range(200)
    ]
    assert_exactly_once(found, [*expected, "parent still logs"])


@posix_only
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_terminating_idle_workers_never_hangs(
    tmp_path: Path, run_python: RunPython, method: str
) -> None:
    # Idle workers wait for the pool's queue lock, where a SIGTERM can go
    # unnoticed by Python's handler (a hang once in a few hundred times).
    repetitions = 300 if method == "fork" else 20
    work = "pool.apply(log_records, (repetition, 1))"
    pools = terminated_pools(tmp_path, method, 2, repetitions, work)
    output = run_script(run_python, tmp_path, pools + 'print("done")', timeout=600)

    assert output.splitlines()[-1] == "done"
    # A worker ends on SIGTERM at once, even one that was ending anyway: its
    # handler once waited out the grace for a writer thread that had ended (a
    # 5 s termination in 2 of 5 with fork).
    assert slowest(output) < sigterm.GRACE_SECONDS
    found = [r.message for r in records(tmp_path)]
    expected = [f"worker {r} record 000000" for r in range(repetitions)]
    assert_exactly_once(found, expected)
    assert len(found) == repetitions, found[:5]  # and no worker's own farewell


# How a terminated worker joined (its pool's initializer), and whose SIGTERM
# handler it has.
TERMINATED = {
    "by the hook": "config.worker_logging()",
    "by the hook, a library's handler": (
        "ended_by_a_library, initargs=(config.worker_logging(),)"
    ),
    "by importing config": "None",  # with config.py's levels
}


def terminated_cases() -> list[tuple[str, str]]:
    """Each start method with each way to join, but by importing config only
    where it is one: not with fork (a forked worker joins as it starts), and not
    where info.log takes errors only (each is sent before its logging call
    returns: none is left unsent)."""
    by_import = level_in_info_log() < logging.ERROR
    return [
        (method, joined)
        for method in START_METHODS
        for joined in TERMINATED
        if joined != "by importing config" or (method != "fork" and by_import)
    ]


@posix_only
@pytest.mark.parametrize(("method", "joined"), terminated_cases())
def test_a_terminated_worker_its_owner_does_not_read_writes_its_records_itself(
    tmp_path: Path, run_python: RunPython, method: str, joined: str
) -> None:
    """SIGTERM finds a worker's records queued, and the run's owner reading none
    of them (busy with other workers' records: here it is held). The worker
    writes what it has not sent itself, to the run's files, and the owner what
    reached its socket: every record once, and no wait for the owner."""
    level = logging.INFO if joined != "by importing config" else level_in_info_log()
    output = run_script(
        run_python,
        tmp_path,
        f"""
import threading
from {{ cookiecutter.package_name }}.logging_infra import relay, writer
writer.QUEUE_SIZE = 4096  # the owner holds 8 batches; the rest stay in the socket
config.setup_logging({str(tmp_path)!r})
writer.QUEUE_SIZE = 50_000  # a forked worker's own
held, write = threading.Event(), relay.Batch.write
relay.Batch.write = lambda batch: held.wait(60) and write(batch)
context = multiprocessing.get_context({method!r})
pool = context.Pool(1, initializer={TERMINATED[joined]})
pool.apply(log_records, (0, 20_000, {level}))
start = time.monotonic()
pool.terminate()
pool.join()
print("termination:", time.monotonic() - start)
held.set()
""",
    )

    assert float(output.split()[-1]) < sigterm.GRACE_SECONDS
    expected = [f"worker 0 record {n:06d}" for n in range(20_000)]
    assert_exactly_once([r.message for r in records(tmp_path)], expected)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_killed_worker_loses_only_its_own_records(
    tmp_path: Path, run_python: RunPython, method: str
) -> None:
    # Only the worker that logs is killed: the idle one waits for tasks holding
    # the pool's queue lock, and a worker killed there hangs any Pool for good.
    repetitions = 100 if method == "fork" else 5
    output = run_script(
        run_python,
        tmp_path,
        f"""
config.setup_logging({str(tmp_path)!r})
context = multiprocessing.get_context({method!r})
for repetition in range({repetitions}):
    with context.Pool(2, initializer=config.worker_logging()) as pool:
        pid_file = os.path.join({str(tmp_path)!r}, "victim.pid")
        pool.apply_async(log_forever, (99, pid_file))
        while not os.path.exists(pid_file):
            time.sleep(0.01)
        time.sleep(0.05)  # well into its records
        os.kill(int(open(pid_file).read()), signal.SIGKILL)
        os.remove(pid_file)
        pool.apply(log_records, (repetition, 300))  # the other worker, or a new one
print("done")
""",
        timeout=600,
    )

    assert output.strip() == "done"
    found = records(tmp_path)  # fails on a torn line
    messages = [r.message for r in found]
    expected = [
        f"worker {r} record {n:06d}" for r in range(repetitions) for n in range(300)
    ]
    assert_exactly_once(messages, expected)


@posix_only
def test_a_worker_that_exits_mid_record_breaks_nothing(
    tmp_path: Path, run_python: RunPython
) -> None:
    output = run_script(
        run_python,
        tmp_path,
        f"""
import threading
config.setup_logging({str(tmp_path)!r})

def exit_while_logging(worker):
    thread = threading.Thread(target=log_forever, args=(worker,), daemon=True)
    thread.start()
    time.sleep(0.05)
    os._exit(3)  # no flush, maybe halfway through sending a batch

context = multiprocessing.get_context("fork")
for worker in range(20):
    process = context.Process(target=exit_while_logging, args=(worker,))
    process.start()
    process.join(30)
    assert process.exitcode == 3, process.exitcode
with context.Pool(2) as pool:
    pool.apply(log_records, (0, 1000))
print("done")
""",
    )

    assert output.strip() == "done"
    messages = [r.message for r in records(tmp_path)]  # fails on a torn line
    assert_exactly_once(messages, [f"worker 0 record {n:06d}" for n in range(1000)])


def test_a_spawned_program_that_sets_up_logging_joins_the_run(
    tmp_path: Path, run_python: RunPython
) -> None:
    elsewhere = tmp_path / "not-used"
    child = (
        "import logging\n"
        "from {{ cookiecutter.package_name }}.config import setup_logging\n"
        f"setup_logging({str(elsewhere)!r})\n"
        "logging.getLogger('child').critical('from the child')\n"
    )
    run_script(
        run_python,
        tmp_path,
        f"""
import subprocess
config.setup_logging({str(tmp_path / "logs")!r})
logging.getLogger("parent").critical("from the parent")
for rank in ("0", "1"):
    env = dict(os.environ, RANK=rank, WORLD_SIZE="2")
    subprocess.run([sys.executable, "-c", {child!r}], env=env, check=True)
""",
    )

    assert not elsewhere.exists(), "the child must not open log files of its own"
    rank0 = records(tmp_path / "logs")
    rank1 = records(tmp_path / "logs", "info.rank1")
    assert [r.message for r in rank0] == ["from the parent", "from the child"]
    assert [(r.message, r.rank) for r in rank1] == [("from the child", 1)]
    assert len({r.run_id for r in rank0 + rank1}) == 1


def test_logging_shutdown_returns_after_every_record_is_written(
    tmp_path: Path, run_python: RunPython
) -> None:
    output = run_script(
        run_python,
        tmp_path,
        f"""
config.setup_logging({str(tmp_path)!r})
log = logging.getLogger("burst")
for number in range(60_000):
    log.info("record %05d", number)
logging.shutdown()
lines = 0
for path in glob.glob({str(tmp_path / "info.log")!r} + "*"):  # rotated ones too
    with open(path, encoding="utf-8") as written:
        lines += sum(1 for _ in written)
print(lines)
""",
    )

    assert int(output) == 60_000


def test_a_spawned_workers_warnings_reach_the_files(
    tmp_path: Path, run_python: RunPython
) -> None:
    run_script(
        run_python,
        tmp_path,
        f"""
from concurrent.futures import ProcessPoolExecutor
config.setup_logging({str(tmp_path)!r})
context = multiprocessing.get_context("spawn")
with ProcessPoolExecutor(2, context, initializer=config.worker_logging()) as pool:
    list(pool.map(warn, range(4)))
""",
    )

    found = [r for r in records(tmp_path) if "deprecated call" in r.message]
    assert sorted(r.message.split(": ")[-1] for r in found) == [
        f"deprecated call {number}" for number in range(4)
    ]
    assert {(r.file, r.function) for r in found} == {("scenario.py", "warn")}


@pytest.mark.parametrize(
    "method", [m for m in START_METHODS if m in ("spawn", "forkserver")]
)
def test_spawned_workers_join_the_run_without_the_hook(
    tmp_path: Path, run_python: RunPython, method: str
) -> None:
    level = level_in_info_log()
    run_script(
        run_python,
        tmp_path,
        f"""
from concurrent.futures import ProcessPoolExecutor
config.setup_logging({str(tmp_path)!r})
context = multiprocessing.get_context({method!r})
with context.Pool(2) as pool:
    pool.starmap(log_at, [({level}, worker) for worker in range(4)])
with ProcessPoolExecutor(2, context) as executor:
    list(executor.map(log_at, [{level}] * 4, range(4, 8)))
process = context.Process(target=log_at, args=({level}, 8))
process.start()
process.join()
""",
    )

    found = records(tmp_path)
    expected = [f"worker {worker} joined" for worker in range(9)]
    assert_exactly_once([r.message for r in found], expected)
    assert len({r.run_id for r in found}) == 1
    logs = sorted(path.name for path in tmp_path.glob("*.log*"))
    assert logs == ["error.log", "info.log"], "no other writer, no other rank"
