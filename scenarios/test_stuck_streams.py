"""Streams that stop taking text: a console nobody reads never stalls the log
files or the program, and a disk that fills keeps every whole line that fit.

Each scenario runs in a fresh interpreter with a time limit; those decided by
timing run more than once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import logfiles
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import console

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")
SRC_DIR = Path(config.__file__).resolve().parents[1]

PRELUDE = """
import logging, os, sys, time
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import files
config.RUN_DIRS_KEPT = None  # the files straight in the log directory
config.LOGGING_CONFIG["root"]["level"] = "INFO"
config.LOGGING_CONFIG["handlers"]["console"]["level"] = "INFO"
config.LOGGING_CONFIG["handlers"]["info"]["level"] = "INFO"
config.LOGGING_CONFIG["handlers"]["info"]["maxBytes"] = 0  # one file: no rollover
log_dir = sys.argv[1]
log = logging.getLogger("job")
"""

# Enough lines to fill a pipe (64 KiB) and the console's backlog many times over,
# and, before, the writer's queue: every call then waited 10 s for room.
BURST = 60_000

# Until the whole burst is in the files, so that what is timed after it is the
# console's part only: writing 60,000 queued records took up to 4.7 s under CI's load.
WAIT_FOR_FILES = """\
deadline, in_file = time.monotonic() + 60, 0
while in_file < {burst} and time.monotonic() < deadline:
    time.sleep(0.1)
    with open(os.path.join(log_dir, "info.log"), "rb") as info:
        in_file = info.read().count(b"{word} ")"""


def start(tmp_path: Path, body: str) -> subprocess.Popen[bytes]:
    """Start a scenario whose standard error is a pipe that the test reads only
    when it says so."""
    path = tmp_path / "scenario.py"
    path.write_text(PRELUDE + body, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(SRC_DIR)}
    return subprocess.Popen(
        [sys.executable, str(path), str(tmp_path / "logs")],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The scenario's next line on standard output; fails if none comes in time."""
    stdout = process.stdout
    assert stdout is not None
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(stdout.readline()))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    if not line:
        process.kill()
        process.communicate()
        pytest.fail(f"nothing on standard output for {timeout} s: stuck")
    if not line[0]:  # it ended
        _, stderr = process.communicate()
        pytest.fail(f"ended with {process.returncode}: {stderr.decode()[-2000:]}")
    return line[0].decode()


def ended(process: subprocess.Popen[bytes], timeout: float) -> float:
    """Seconds until the process ended; fails if it did not within ``timeout``."""
    start = time.monotonic()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"still running {timeout} s after its last line")
    return time.monotonic() - start


def pipe_size(descriptor: int) -> int:
    """How many bytes the pipe holds before a write blocks (Linux tells)."""
    import fcntl

    if hasattr(fcntl, "F_GETPIPE_SZ"):
        return fcntl.fcntl(descriptor, fcntl.F_GETPIPE_SZ)
    return 65536


def info_lines(tmp_path: Path) -> list[str]:
    return (tmp_path / "logs" / "info.log").read_text("utf-8").splitlines()


def messages(lines: list[str]) -> list[str]:
    """The messages of the records; fails on a line that is not a whole record."""
    return [record.message for record in logfiles.parse(lines, "info.log")]


def dropped_notes(lines: list[str]) -> list[int]:
    """The counts of the lines that say how many console lines were dropped."""
    found = (re.search(r"(\d+) console lines were dropped", line) for line in lines)
    return [int(match[1]) for match in found if match]


def numbers(text: str, word: str) -> list[int]:
    return [int(n) for n in re.findall(rf"^{word} (\d+)$", text, re.MULTILINE)]


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize("repetition", range(3))
def test_a_console_nobody_reads_never_stalls_the_files_or_the_program(
    tmp_path: Path, repetition: int
) -> None:
    process = start(
        tmp_path,
        f"""
config.setup_logging(log_dir)
slowest, slow = 0.0, 0
for number in range({BURST}):
    start = time.monotonic()
    log.info("record %05d", number)
    took = time.monotonic() - start
    slowest, slow = max(slowest, took), slow + (took > 0.5)
# The writer writes the file meanwhile: the whole burst reaches it.
{WAIT_FOR_FILES.format(burst=BURST, word="record")}
start = time.monotonic()
config.flush_logs()  # the files are written: only the console may hold it up
flushed = time.monotonic() - start
start = time.monotonic()
for number in range(3):
    files.warn("a warning for a console nobody reads")
warned = time.monotonic() - start
print(slowest, slow, flushed, in_file, warned, flush=True)
""",
    )
    slowest, slow, flushed, in_file, warned = read_line(process, timeout=60).split()
    exit_seconds = ended(process, timeout=console.GRACE_SECONDS + 5)
    assert process.stderr is not None
    shown = process.stderr.read().decode()

    assert process.returncode == 0, shown[-2000:]
    # A call waits (for room in the writer's queue) only while the writer finds
    # the console stuck, once: about the grace.
    assert float(slowest) < console.GRACE_SECONDS + 1.5
    assert int(slow) <= 1
    assert int(in_file) == BURST  # the file was written meanwhile, all of it
    assert float(flushed) < console.GRACE_SECONDS + 1  # no progress: gives up
    assert float(warned) < 0.5  # given up on: no wait until the console moves
    assert exit_seconds < 1.5  # the end waits no more either
    lines = info_lines(tmp_path)
    assert sum(m.startswith("record ") for m in messages(lines)) == BURST
    on_console = numbers(shown, "record")
    assert on_console == sorted(set(on_console))  # in order, none twice
    warnings = shown.count("logging: a warning for a console nobody reads\n")
    # Exactly the lines not shown: records and warnings.
    assert dropped_notes(lines) == [BURST + 3 - len(on_console) - warnings]


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize("repetition", range(3))
def test_a_console_read_again_shows_new_lines_and_the_files_count_the_dropped(
    tmp_path: Path, repetition: int
) -> None:
    process = start(
        tmp_path,
        f"""
config.setup_logging(log_dir)
for number in range({BURST}):
    log.info("record %05d", number)
config.flush_logs()
print("burst written", flush=True)
sys.stdin.readline()  # the test reads standard error from now on
for number in range(100):
    log.info("after %03d", number)
config.flush_logs()
print("done", flush=True)
""",
    )
    assert read_line(process, timeout=60) == "burst written\n"
    assert process.stderr is not None and process.stdin is not None
    descriptor = process.stderr.fileno()
    shown: list[bytes] = []
    # More than the pipe held and the write it blocked: the console thread has
    # written since, so the console is moving again when the program logs on.
    moving, past = threading.Event(), pipe_size(descriptor) + 2 * console.PIPE_BUF

    def read() -> None:
        received = 0
        while chunk := os.read(descriptor, 65536):
            shown.append(chunk)
            received += len(chunk)
            if received > past:
                moving.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert moving.wait(30), "the console wrote nothing more once read"
    process.stdin.write(b"go\n")
    process.stdin.close()
    assert read_line(process, timeout=30) == "done\n"
    ended(process, timeout=console.GRACE_SECONDS + 5)
    reader.join(30)
    text = b"".join(shown).decode()

    assert process.returncode == 0, text[-2000:]
    assert numbers(text, "after") == list(range(100))  # the console works again
    on_console = numbers(text, "record")
    assert on_console == sorted(set(on_console))
    assert dropped_notes(info_lines(tmp_path)) == [BURST - len(on_console)]


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize("repetition", range(2))
@pytest.mark.parametrize("at_exit", ["queued", "written"])
def test_a_program_whose_console_is_not_read_ends_within_the_grace(
    tmp_path: Path, at_exit: str, repetition: int
) -> None:
    wait = {"queued": "", "written": WAIT_FOR_FILES.format(burst=BURST, word="record")}
    process = start(
        tmp_path,
        f"""
config.setup_logging(log_dir)
for number in range({BURST}):
    log.info("record %05d", number)
{wait[at_exit]}
print("done", flush=True)
""",
    )
    assert read_line(process, timeout=90) == "done\n"
    exit_seconds = ended(process, timeout=60)
    assert process.stderr is not None
    shown = process.stderr.read().decode()

    assert process.returncode == 0, shown[-2000:]
    # The end waits for the stuck console no longer than its grace; what it also
    # writes when records are still queued takes what the machine's load says.
    if at_exit == "written":
        assert exit_seconds < console.GRACE_SECONDS + 3
    lines = info_lines(tmp_path)
    # What was queued at the end is written (the files) whatever the console.
    assert sum(m.startswith("record ") for m in messages(lines)) == BURST
    on_console = numbers(shown, "record")
    assert dropped_notes(lines) == [BURST - len(on_console)]


CHILD_WAIT = textwrap.indent(WAIT_FOR_FILES.format(burst=BURST, word="child"), "    ")
CHILD = f"""
import logging, os, sys, time
from {{ cookiecutter.package_name }} import config
config.RUN_DIRS_KEPT = None
for name in ("console", "info"):
    config.LOGGING_CONFIG["handlers"][name]["level"] = "INFO"
config.LOGGING_CONFIG["root"]["level"] = "INFO"
config.setup_logging()  # joins the run of the process that started it
for number in range({BURST}):
    logging.getLogger("child").info("child %05d", number)
log_dir, at_exit = sys.argv[1:]
if at_exit == "written":
{CHILD_WAIT}
print("done", flush=True)
"""


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize("repetition", range(2))
@pytest.mark.parametrize("at_exit", ["queued", "written"])
def test_a_joined_process_whose_console_is_not_read_sends_its_count(
    tmp_path: Path, at_exit: str, repetition: int
) -> None:
    # A child whose standard error is a pipe nobody reads (not the owner's) writes
    # its own console; the owner's files get its records and its count.
    process = start(
        tmp_path,
        f"""
import subprocess
config.setup_logging(log_dir)
child = subprocess.Popen(
    [sys.executable, "-c", {CHILD!r}, log_dir, {at_exit!r}],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
)
assert child.stdout.readline() == b"done\\n"
start = time.monotonic()
child.wait(60)
took = time.monotonic() - start
shown = child.stderr.read().decode().count("child ")
print(child.returncode, took, shown, flush=True)
""",
    )
    returncode, took, shown = read_line(process, timeout=150).split()
    ended(process, timeout=30)

    assert returncode == "0"
    if at_exit == "written":  # as above: the console's grace, then the count sent
        assert float(took) < console.GRACE_SECONDS + 3
    found = messages(info_lines(tmp_path))
    assert sum(m.startswith("child ") for m in found) == BURST
    assert dropped_notes(found) == [BURST - int(shown)]


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize("repetition", range(3))
def test_a_console_that_is_a_file_gets_every_line_of_a_burst(
    tmp_path: Path, repetition: int
) -> None:
    # A console slower than the program (redirected to a file, as cluster jobs
    # are, on busy cores) is waited for: only a stuck one loses lines.
    path = tmp_path / "scenario.py"
    path.write_text(
        PRELUDE
        + f"""
config.setup_logging(log_dir)
for number in range({BURST}):
    log.info("record %05d", number)
""",
        encoding="utf-8",
    )
    console_file = tmp_path / "console.txt"
    with console_file.open("wb") as stderr:
        subprocess.run(
            [sys.executable, str(path), str(tmp_path / "logs")],
            env={**os.environ, "PYTHONPATH": str(SRC_DIR)},
            stderr=stderr,
            timeout=120,
            check=True,
        )

    shown = console_file.read_text("utf-8")
    assert numbers(shown, "record") == list(range(BURST))
    assert dropped_notes(info_lines(tmp_path)) == []


FULL_DISK = """
import signal, threading
release = threading.Event()


class Gate(logging.Handler):
    \"\"\"Holds the writer thread until the records are queued: one batch.\"\"\"

    def emit(self, record):
        if record.getMessage() == "hold":
            release.wait(30)


config.LOGGING_CONFIG["handlers"]["console"]["level"] = "CRITICAL"
config.LOGGING_CONFIG["handlers"]["gate"] = dict.fromkeys(["()"], Gate)
config.LOGGING_CONFIG["root"]["handlers"].append("gate")
config.setup_logging(log_dir)
log.info("before")
config.flush_logs()
info = os.path.join(log_dir, "info.log")
before = os.path.getsize(info)
fill(before)
log.info("hold")
for number in range(3000):
    log.info("pre-full %04d %s", number, "x" * 60)
release.set()
config.flush_logs()
print(os.path.getsize(info) - before, flush=True)
unfill()
time.sleep(files.RETRY_SECONDS + 0.2)
log.info("after")
config.flush_logs()
"""

FREE = 56 * 1024  # bytes that still fit when the batch of 3,000 comes


def check_full_disk(tmp_path: Path, process: subprocess.Popen[bytes]) -> None:
    written_when_full = int(read_line(process, timeout=60))
    ended(process, timeout=30)
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr

    lines = info_lines(tmp_path)
    found = messages(lines)  # whole records only: each line parses
    kept = [m for m in found if m.startswith("pre-full")]
    assert kept, "none of the batch was kept"
    assert [int(m.split()[1]) for m in kept] == list(range(len(kept)))
    line_bytes = max(len(ln.encode()) + 1 for ln in lines if "pre-full" in ln)
    assert written_when_full >= FREE - line_bytes  # every whole line that fit
    in_batch = {"hold", *kept}
    batch = [ln for ln, m in zip(lines, found, strict=True) if m in in_batch]
    assert written_when_full == sum(len(ln.encode()) + 1 for ln in batch)
    notes = [m for m in found if "records were dropped" in m]
    assert len(notes) == 1
    assert int(notes[0].split()[0]) == 3000 - len(kept)  # exactly the others
    assert found[0] == "before" and found[-1] == "after"


@posix_only
def test_a_file_size_limit_mid_batch_keeps_every_whole_line_that_fit(
    tmp_path: Path,
) -> None:
    # RLIMIT_FSIZE fails a write past the limit as a full disk does (EFBIG,
    # not ENOSPC), on any file system and without privileges.
    process = start(
        tmp_path,
        f"""
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)


def fill(size):
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + {FREE}, hard))


def unfill():
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
"""
        + FULL_DISK,
    )
    check_full_disk(tmp_path, process)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs at tmp_path/logs: a disk that really fills (root only)."""
    mount = shutil.which("mount")
    if sys.platform != "linux" or os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a tmpfs needs root on Linux")
    directory = tmp_path / "logs"
    directory.mkdir()
    made = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    yield directory
    subprocess.run(["umount", str(directory)], check=False)


@posix_only
def test_a_disk_that_fills_mid_batch_keeps_every_whole_line_that_fit(
    tmp_path: Path, small_disk: Path
) -> None:
    process = start(
        tmp_path,
        f"""
def fill(size):
    free = os.statvfs(log_dir).f_bavail * os.statvfs(log_dir).f_frsize
    with open(os.path.join(log_dir, "filler"), "wb") as filler:
        filler.write(bytes(free - {FREE}))


def unfill():
    os.remove(os.path.join(log_dir, "filler"))
"""
        + FULL_DISK,
    )
    check_full_disk(tmp_path, process)
