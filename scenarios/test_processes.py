"""Many processes, one set of files: every record exactly once, nothing lost."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import logfiles
import {{ cookiecutter.package_name }}.logging_infra.context as context
import {{ cookiecutter.package_name }}.logging_infra.relay as relay
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import configure, writer

RunPython = Callable[..., subprocess.CompletedProcess[str]]
START_METHODS = [
    m
    for m in ("spawn", "fork", "forkserver")
    if m in multiprocessing.get_all_start_methods()
]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def verbose_small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """INFO and above in info.log whatever the chosen levels; rotate every 64 KiB."""
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "level", "INFO")
    info = config.LOGGING_CONFIG["handlers"]["info"]
    monkeypatch.setitem(info, "level", "INFO")
    monkeypatch.setitem(info, "maxBytes", 64 * 1024)
    monkeypatch.setitem(info, "backupCount", 1000)


def messages(log_dir: Path, name: str = "info") -> list[str]:
    """Messages of every record in a log and its rotated files; fails on torn lines."""
    found = []
    for path in log_dir.glob(f"{name}.log*"):
        lines = path.read_text(encoding="utf-8").splitlines()
        found += [record.message for record in logfiles.parse(lines, path.name)]
    return found


def assert_exactly_once(found: list[str], expected: list[str]) -> None:
    counts = Counter(found)
    lost = [message for message in expected if message not in counts]
    duplicated = [message for message in expected if counts[message] > 1]
    assert (len(lost), len(duplicated)) == (0, 0), (lost[:3], duplicated[:3])


def log_records(worker: int, count: int) -> int:
    log = logging.getLogger(f"worker.{worker}")
    for number in range(count):
        log.info("worker %d record %06d", worker, number)
    return os.getpid()


@pytest.mark.usefixtures("verbose_small_files")
@pytest.mark.parametrize("method", START_METHODS)
def test_pool_workers_records_reach_the_files_exactly_once(
    tmp_path: Path, method: str
) -> None:
    config.setup_logging(tmp_path)
    workers, count = 4, 10_000 if method == "spawn" else 2_000
    context = multiprocessing.get_context(method)

    with context.Pool(workers, initializer=config.worker_logging()) as pool:
        pids = pool.starmap(log_records, [(w, count) for w in range(workers)])
    writer.stop()

    # Workers of the pool, however the tasks fell: under load one worker may
    # take them all while the others start (seen with forkserver in CI).
    assert os.getpid() not in pids
    expected = [
        f"worker {w} record {n:06d}" for w in range(workers) for n in range(count)
    ]
    assert_exactly_once(messages(tmp_path), expected)
    assert len(list(tmp_path.glob("info.log.*"))) > 2, "the files should have rotated"


@pytest.mark.usefixtures("verbose_small_files")
def test_process_pool_executor_workers_log_through_the_parent(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    context = multiprocessing.get_context("spawn")

    with ProcessPoolExecutor(2, context, initializer=config.worker_logging()) as pool:
        list(pool.map(log_records, [0, 1], [500, 500]))
    writer.stop()

    expected = [f"worker {w} record {n:06d}" for w in (0, 1) for n in range(500)]
    assert_exactly_once(messages(tmp_path), expected)


@posix_only
def test_forked_child_logs_through_the_parent_without_an_initializer(
    tmp_path: Path,
) -> None:
    config.setup_logging(tmp_path)
    logging.getLogger("parent").critical("before fork")

    child = multiprocessing.get_context("fork").Process(target=log_records, args=(7, 1))
    child.start()
    child.join()
    logging.getLogger("parent").critical("after fork")
    writer.stop()

    found = messages(tmp_path, "error")
    assert sorted(found) == ["after fork", "before fork"]
    info = messages(tmp_path)
    assert Counter(info)["before fork"] == 1
    file_level = config.LOGGING_CONFIG["handlers"]["info"]["level"]
    if logging.getLevelName(file_level) <= logging.INFO:
        assert "worker 7 record 000000" in info


SCRIPT = """
import logging, os, sys
from {{ cookiecutter.package_name }} import config
config.LOGGING_CONFIG["handlers"]["info"]["backupCount"] = 1000  # keep every record
config.RUN_DIRS_KEPT = None  # the files straight in the log directory
config.setup_logging({log_dir!r})
log = logging.getLogger("job")
{body}
"""
# CRITICAL records reach every sink whatever thresholds the project was made with.
LOG_20000 = "for n in range(20000):\n    log.critical('record %05d', n)\n"
EXPECTED_20000 = [f"record {n:05d}" for n in range(20000)]


def script(log_dir: Path, body: str) -> str:
    return SCRIPT.format(log_dir=str(log_dir), body=body)


@posix_only
def test_error_is_on_disk_before_the_call_returns(
    tmp_path: Path, run_python: RunPython
) -> None:
    body = "log.error('last words')\nos.kill(os.getpid(), 9)"
    result = run_python(
        "-c", script(tmp_path, body), env={config.LOG_LEVEL_ENV: "DEBUG"}
    )

    assert result.returncode == -signal.SIGKILL
    if "ERROR" in levels_reaching("error"):
        assert messages(tmp_path, "error") == ["last words"]


def levels_reaching(handler: str) -> list[str]:
    levels = list(configure.LEVELS)
    own = config.LOGGING_CONFIG["handlers"][handler]["level"]
    return levels[levels.index(own) :]


def test_queued_records_are_written_at_exit(
    tmp_path: Path, run_python: RunPython
) -> None:
    result = run_python("-c", script(tmp_path, LOG_20000))

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == EXPECTED_20000
    assert_exactly_once(messages(tmp_path), EXPECTED_20000)


def test_records_logged_after_the_writer_stopped_are_still_written(
    tmp_path: Path, run_python: RunPython
) -> None:
    # Exit handlers run last-registered first: this one runs after the writer's.
    late = "import atexit, logging\natexit.register(logging.critical, 'at exit')\n"
    result = run_python("-c", late + script(tmp_path, "log.critical('before exit')"))

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["before exit", "at exit"]
    assert messages(tmp_path) == ["before exit", "at exit"]


def test_the_writer_gives_way_only_while_records_keep_coming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread gives up the GIL every YIELD_EVERY records while the
    program logs meanwhile, so that a burst of calls does not wait for it; it
    writes a backlog that nobody adds to without a pause."""
    pauses: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if threading.current_thread().name == "log-writer":
            pauses.append(seconds)
        real_sleep(seconds)

    written: queue.SimpleQueue[str] = queue.SimpleQueue()
    hold = threading.Event()

    class Pacer(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            hold.wait(timeout=30)
            written.put(record.getMessage())

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"], "pacer", {"()": Pacer})
    handlers = [*config.LOGGING_CONFIG["root"]["handlers"], "pacer"]
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "handlers", handlers)
    config.setup_logging(tmp_path)
    log = logging.getLogger("burst")
    records = 10 * writer.YIELD_EVERY

    for number in range(records):  # queued while the pacer holds the writer
        log.critical("queued %d", number)
    pauses.clear()
    hold.set()
    config.flush_logs()
    # The first look cannot tell; the flush request arrives meanwhile.
    assert len(pauses) <= 2, pauses
    queued = [written.get(timeout=1) for _ in range(records)]
    assert queued == [f"queued {number}" for number in range(records)]

    pauses.clear()
    for number in range(records):  # the next record as soon as one is written
        log.critical("paced %d", number)
        assert written.get(timeout=30) == f"paced {number}"
    assert len(pauses) >= records // writer.YIELD_EVERY - 1
    assert set(pauses) == {writer.YIELD_SECONDS}


@posix_only
def test_queued_records_are_written_on_sigterm(
    tmp_path: Path, run_python: RunPython
) -> None:
    body = LOG_20000 + "os.kill(os.getpid(), 15)\nlog.critical('not reached')"
    result = run_python(
        "-c", script(tmp_path, body), env={config.LOG_LEVEL_ENV: "INFO"}
    )

    assert result.returncode == -signal.SIGTERM
    assert result.stderr.splitlines() == [*EXPECTED_20000, "Terminated by SIGTERM"]
    assert_exactly_once(messages(tmp_path), EXPECTED_20000)


def test_each_rank_writes_its_own_files(tmp_path: Path) -> None:
    body = (
        "rank = os.environ['RANK']\n"
        "for n in range(2000):\n    log.critical('rank %s record %04d', rank, n)\n"
        "log.info('progress of rank %s', rank)\n"
    )
    env = {**os.environ, config.LOG_LEVEL_ENV: "INFO", "WORLD_SIZE": "4"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", script(tmp_path, body)],
            env={**env, "RANK": str(rank)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(4)  # all at once, against the same directory
    ]
    consoles = [process.communicate(timeout=120)[1] for process in ranks]

    assert [process.returncode for process in ranks] == [0, 0, 0, 0]
    for rank, console in enumerate(consoles):
        expected = [f"rank {rank} record {n:04d}" for n in range(2000)]
        name = "info" if rank == 0 else f"info.rank{rank}"
        found = [m for m in messages(tmp_path, name) if not m.startswith("progress")]
        assert found == expected
        progress = [f"progress of rank {rank}"] if rank == 0 else []
        assert console.splitlines() == expected + progress


def learn_rank_late(rank: str) -> None:
    log = logging.getLogger("late")
    log.critical("before the launcher set a rank")
    os.environ["LOCAL_RANK"] = rank  # as Lightning's ddp_spawn and ddp_fork do
    log.critical("after it set rank %s", rank)


@pytest.mark.parametrize("method", START_METHODS)
def test_a_worker_that_learns_its_rank_late_writes_that_rank_s_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    for name in context.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config.setup_logging(tmp_path)

    with multiprocessing.get_context(method).Pool(
        1, initializer=config.worker_logging()
    ) as pool:
        pool.apply(learn_rank_late, ("1",))
    writer.stop()

    assert messages(tmp_path, "error") == ["before the launcher set a rank"]
    assert messages(tmp_path, "error.rank1") == ["after it set rank 1"]


def learn_rank_late_then_log(rank: str, count: int) -> None:
    learn_rank_late(rank)
    log = logging.getLogger("late")
    for number in range(count):
        log.info("rank %s record %06d", rank, number)


@posix_only
@pytest.mark.usefixtures("verbose_small_files")
@pytest.mark.parametrize("method", START_METHODS)
def test_a_terminated_worker_writes_its_last_records_to_its_rank_s_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """On SIGTERM a worker writes what it has not sent itself (its owner, held
    here, reads none of it): to the files of the rank it learned late."""
    for name in context.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(writer, "QUEUE_SIZE", 4096)  # the owner holds 8 batches
    config.setup_logging(tmp_path)
    writer.QUEUE_SIZE = 50_000  # a forked worker's own
    held, write = threading.Event(), relay.Batch.write
    monkeypatch.setattr(relay.Batch, "write", lambda b: held.wait(60) and write(b))
    try:
        pool = multiprocessing.get_context(method).Pool(
            1, initializer=config.worker_logging()
        )
        pool.apply(learn_rank_late_then_log, ("1", 20_000))
        pool.terminate()
        pool.join()
    finally:
        held.set()
    writer.stop()

    expected = [f"rank 1 record {n:06d}" for n in range(20_000)]
    assert_exactly_once(messages(tmp_path, "info.rank1"), expected)
    assert not [m for m in messages(tmp_path) if m.startswith("rank 1 record")]


def test_a_process_waiting_for_its_rank_reads_the_environment_only_as_it_grows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reading it for every record was a third of a pool worker's logging time.
    for name in context.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(context, "_rank", 0)
    monkeypatch.setattr(context, "_rank_unknown", True)
    monkeypatch.setattr(context, "_rank_pending", False)
    looks: list[int] = []
    find_rank = context.find_rank

    def counted(*args: Any, **kwargs: Any) -> int | None:
        looks.append(1)
        return find_rank(*args, **kwargs)

    monkeypatch.setattr(context, "find_rank", counted)
    context.watch_rank()

    assert {context.process_rank() for _ in range(1000)} == {0}
    monkeypatch.setenv("UNRELATED", "1")
    assert context.process_rank() == 0
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert [context.process_rank() for _ in range(1000)] == [3] * 1000
    assert len(looks) == 3


# "²" is a digit to str.isdigit(), not to int(); int() refuses 5,000 digits.
@pytest.mark.parametrize("rank", ["abc", "-1", "1.5", "\u00b2", "1234567", "9" * 5000])
def test_malformed_rank_warns_once_and_acts_as_rank_0(
    tmp_path: Path, run_python: RunPython, rank: str
) -> None:
    body = "log.critical('still running')"
    result = run_python(
        "-c", script(tmp_path, body), env={"RANK": rank, config.LOG_LEVEL_ENV: "INFO"}
    )

    assert result.returncode == 0, result.stderr
    shown = rank if len(rank) <= 40 else f"{rank[:40]}..."
    assert result.stderr.splitlines() == [
        f"RANK={shown!r} is not a whole number below 10**6; using 0",
        "still running",
    ]
    assert "still running" in messages(tmp_path, "error")
    assert not list(tmp_path.glob("*.rank*"))


class LoggingDataset:
    """A map-style data set whose items are logged by the worker that loads them."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        logging.getLogger("data").critical("item %06d", index)
        return index


@pytest.mark.parametrize("method", START_METHODS)
def test_dataloader_workers_log_through_the_parent(tmp_path: Path, method: str) -> None:
    torch = pytest.importorskip("torch")
    config.setup_logging(tmp_path)

    loader = torch.utils.data.DataLoader(
        LoggingDataset(40),
        batch_size=4,
        num_workers=2,
        multiprocessing_context=method,
        worker_init_fn=config.worker_logging(),
    )
    assert sum(len(batch) for batch in loader) == 40
    writer.stop()

    assert_exactly_once(messages(tmp_path), [f"item {i:06d}" for i in range(40)])
