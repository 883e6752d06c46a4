"""A bad day: signals, crashes, full disks and racing set-ups never hang the
program, never tear a line, and cost one warning, not a traceback per record.

Each scenario runs in a fresh interpreter with a time limit, repeated where
a race decides the outcome.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import logfiles
from {{ cookiecutter.package_name }} import config

pytestmark = pytest.mark.slow
RunPython = Callable[..., subprocess.CompletedProcess[str]]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")

PRELUDE = """
import logging, os, signal, sys, threading, time
from {{ cookiecutter.package_name }} import config
config.LOGGING_CONFIG["root"]["level"] = "INFO"
config.LOGGING_CONFIG["handlers"]["info"]["level"] = "INFO"
config.LOGGING_CONFIG["handlers"]["info"]["backupCount"] = 10_000  # keep every record
config.LOGGING_CONFIG["handlers"]["error"]["level"] = "ERROR"
config.LOGGING_CONFIG["handlers"]["console"]["level"] = "CRITICAL"
config.RUN_DIRS_KEPT = None  # the files straight in the log directory
log = logging.getLogger("job")
"""


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "scenario.py"
    path.write_text(f"{PRELUDE}\n{body}\n", encoding="utf-8")
    return str(path)


def run_scenario(
    run_python: RunPython, tmp_path: Path, body: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    try:
        return run_python(script(tmp_path, body), timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s")


def records(log_dir: Path, name: str = "info") -> list[logfiles.Record]:
    """Every record of a log and its rotated files; fails on a torn line."""
    found = []
    for path in sorted(log_dir.glob(f"{name}.log*")):
        found += logfiles.parse(path.read_text("utf-8").splitlines(), path.name)
    return found


def start_until_ready(path: str) -> subprocess.Popen[str]:
    """Start a scenario that prints "ready" when it wants its signal."""
    env = {**os.environ, "PYTHONPATH": str(Path(config.__file__).parents[1])}
    process = subprocess.Popen(
        [sys.executable, path],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


def terminate(process: subprocess.Popen[str], timeout: float, what: str) -> str:
    """SIGTERM, and the process's stderr once it has ended; fails on a hang."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{what}: SIGTERM did not end the process")


def test_code_on_the_writer_thread_that_logs_never_waits_for_itself(
    tmp_path: Path, run_python: RunPython
) -> None:
    # A filter runs on the writer thread; it logs while the queue is full.
    result = run_scenario(
        run_python,
        tmp_path,
        f"""
class Chatty(logging.Filter):
    def filter(self, record):
        if record.getMessage().startswith("burst"):
            logging.getLogger("filter").info("seen %s", record.getMessage())
        return True

config.LOGGING_CONFIG["filters"]["chatty"] = dict.fromkeys(["()"], Chatty)
config.LOGGING_CONFIG["handlers"]["info"]["filters"].append("chatty")
config.setup_logging({str(tmp_path)!r})
for number in range(100_000):
    log.info("burst %06d", number)
""",
        timeout=180,
    )

    assert result.returncode == 0, result.stderr
    messages = [r.message for r in records(tmp_path)]
    assert sum(m.startswith("burst") for m in messages) == 100_000
    assert sum(m.startswith("seen burst") for m in messages) == 100_000


@posix_only
def test_sigterm_always_ends_the_process_with_its_status(
    tmp_path: Path, run_python: RunPython
) -> None:
    body = f"""
config.setup_logging({str(tmp_path)!r})
print("ready", flush=True)
number = 0
while True:
    log.info("record %07d", number)
    if number % 7 == 0:
        log.error("error %07d", number)  # written on this thread
    number += 1
"""
    path = script(tmp_path, body)
    for repetition in range(20):
        process = start_until_ready(path)
        time.sleep(0.05 + repetition * 0.01)
        stderr = terminate(process, 30, f"run {repetition}")
        assert process.returncode == -signal.SIGTERM, (repetition, stderr)
        assert "Traceback" not in stderr, (repetition, stderr)
        records(tmp_path)  # every line whole
        records(tmp_path, "error")


@posix_only
def test_sigterm_ends_a_process_whose_main_thread_is_stuck_in_c_code(
    tmp_path: Path,
) -> None:
    # Python's handler waits for the main thread to run Python code again. A C
    # call that resumes its wait after a signal (here glibc's sigwait, as a
    # stuck collective would) postpones it for good: the watcher writes and kills.
    body = f"""
config.setup_logging({str(tmp_path)!r})
for number in range(1000):
    log.info("record %04d", number)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
print("ready", flush=True)
signal.sigwait([signal.SIGUSR2])
"""
    process = start_until_ready(script(tmp_path, body))
    time.sleep(1)  # into sigwait
    stderr = terminate(process, 60, "stuck main thread")

    assert process.returncode == -signal.SIGKILL, stderr
    messages = [r.message for r in records(tmp_path)]
    assert messages[:1000] == [f"record {n:04d}" for n in range(1000)]
    assert messages[1000:] == ["Terminated by SIGTERM"]


def test_setup_from_two_threads_at_once(tmp_path: Path) -> None:
    failures: list[BaseException] = []

    def setup() -> None:
        try:
            config.setup_logging(tmp_path)
            logging.getLogger("race").critical("logged")
        except BaseException as error:  # any of them fails the test
            failures.append(error)

    for _ in range(200):
        threads = [threading.Thread(target=setup) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    config.flush_logs()

    assert failures == []
    writers = [t for t in threading.enumerate() if t.name == "log-writer"]
    assert len(writers) == 1
    assert len(records(tmp_path, "error")) == 400


@posix_only
def test_a_full_disk_gives_one_warning_and_logging_resumes(
    tmp_path: Path, run_python: RunPython
) -> None:
    # A file size limit fails writes as a full disk does (EFBIG, not ENOSPC).
    result = run_scenario(
        run_python,
        tmp_path,
        f"""
import resource
from {{ cookiecutter.package_name }}.logging_infra import files
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
config.setup_logging({str(tmp_path)!r})
log.error("before")
config.flush_logs()
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
for number in range(2000):
    log.error("while full %04d", number)
config.flush_logs()
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
time.sleep(files.RETRY_SECONDS + 0.1)
log.error("after")
config.flush_logs()
""",
    )

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = re.findall(r"Cannot write (\S+) \(", result.stderr)
    assert sorted(Path(w).name for w in warnings) == ["error.log", "info.log"]
    for name in ("info", "error"):
        messages = [r.message for r in records(tmp_path, name)]
        assert messages[0] == "before" and messages[-1] == "after", name
        dropped = [m for m in messages if "records were dropped" in m]
        assert len(dropped) == 1, name
        written = sum(m.startswith("while full") for m in messages)
        assert int(dropped[0].split()[0]) + written == 2000, name


@posix_only
def test_a_deleted_log_directory_is_made_again(
    tmp_path: Path, run_python: RunPython
) -> None:
    log_dir = tmp_path / "logs" / "nested"
    result = run_scenario(
        run_python,
        tmp_path,
        f"""
import shutil
from {{ cookiecutter.package_name }}.logging_infra import files
config.setup_logging({str(log_dir)!r})
log.error("before")
config.flush_logs()
shutil.rmtree({str(tmp_path / "logs")!r})
for number in range(100):
    log.error("after deletion %03d", number)
    time.sleep(files.CHECK_SECONDS / 50)
config.flush_logs()
""",
    )

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name in ("info", "error"):
        messages = [r.message for r in records(log_dir, name)]
        assert messages[-1] == "after deletion 099", name
        # Those written to the deleted file before it was missed are reported.
        dropped = [m for m in messages if "records were dropped" in m]
        assert len(dropped) == 1, name
        written = sum(m.startswith("after deletion") for m in messages)
        assert written + int(dropped[0].split()[0]) >= 100, name


@posix_only
def test_sigkill_in_a_burst_never_tears_a_line(
    tmp_path: Path, run_python: RunPython
) -> None:
    body = f"""
for handler in ("info", "error"):  # one file each, whatever size the project set
    config.LOGGING_CONFIG["handlers"][handler]["maxBytes"] = 0
config.setup_logging({str(tmp_path)!r})
print("ready", flush=True)
number = 0
while True:
    log.critical("record %07d %s", number, "x" * (number % 300))
    number += 1
"""
    path = script(tmp_path, body)
    env = {**os.environ, "PYTHONPATH": str(Path(config.__file__).parents[1])}
    found = {"info": 0, "error": 0}  # whole records after the last kill
    for repetition in range(10):
        process = subprocess.Popen(
            [sys.executable, path], env=env, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        time.sleep(0.05 + repetition * 0.02)
        process.kill()
        process.wait(30)
        # Only the last line may be cut short (the kernel stops a write between
        # pages); the next run removes it: parse() fails on any other.
        for name in ("info", "error"):
            log_file = tmp_path / f"{name}.log"
            *whole, last = log_file.read_text("utf-8").split("\n")
            start = logfiles.CRITICAL_LINE_START
            assert last == "" or start.startswith(last[: len(start)]), last
            found[name] = len(logfiles.parse(whole, log_file.name))
    assert found["info"] and found["error"], found


def test_a_record_logged_by_a_destructor_at_exit_is_written(
    tmp_path: Path, run_python: RunPython
) -> None:
    result = run_scenario(
        run_python,
        tmp_path,
        f"""
class Resource:
    def __del__(self):
        logging.getLogger("resource").critical("released at exit")

config.setup_logging({str(tmp_path)!r})
keep = Resource()  # destroyed while the interpreter shuts down
""",
    )

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name in ("info", "error"):
        assert [r.message for r in records(tmp_path, name)] == ["released at exit"]


@posix_only
def test_logging_from_a_signal_handler_loses_nothing(
    tmp_path: Path, run_python: RunPython
) -> None:
    result = run_scenario(
        run_python,
        tmp_path,
        f"""
calls = 0

def on_alarm(signum, frame):
    global calls
    calls += 1
    log.error("from the handler %05d", calls)

# error.log is written on this thread: small files, so that handlers often
# interrupt a rollover.
config.LOGGING_CONFIG["handlers"]["error"]["maxBytes"] = 16 * 1024
config.LOGGING_CONFIG["handlers"]["error"]["backupCount"] = 1000
config.setup_logging({str(tmp_path)!r})
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
for number in range(30_000):
    log.info("main %05d", number)
    if number % 10 == 0:
        log.error("main error %05d", number)
signal.setitimer(signal.ITIMER_REAL, 0)
print(calls)
""",
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "reentrant" not in result.stderr and "Traceback" not in result.stderr
    calls = int(result.stdout)
    assert calls > 0
    info = [r.message for r in records(tmp_path)]
    errors = [r.message for r in records(tmp_path, "error")]
    assert sum(m.startswith("main ") for m in info) == 33_000
    assert sum(m.startswith("from the handler") for m in info) == calls
    assert sum(m.startswith("from the handler") for m in errors) == calls
