"""Other users get nothing in: the relay, the writer it joins, shared directories.

The attacks run as another user (uid 65534, ``nobody``), which needs root: CI
runs as root. Each scenario runs in fresh interpreters with a time limit.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

import logfiles
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import configure, relay

RunPython = Callable[..., subprocess.CompletedProcess[str]]
SRC_DIR = Path(__file__).resolve().parents[1] / "src"
WRITER_VARIABLE = configure.writer_variable(config.LOG_DIR_ENV)
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def nobody_can_run_python() -> bool:
    """Root with setpriv, and this Python reachable by uid 65534 (a virtual
    environment in a private temporary directory is not)."""
    if sys.platform == "win32" or os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    # Started by path from a process of that uid: setpriv itself gets further.
    starts = "import subprocess, sys; subprocess.run([sys.executable, '-V'], check=1)"
    probe = [*AS_NOBODY, sys.executable, "-I", "-c", starts]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


needs_root = pytest.mark.skipif(
    not nobody_can_run_python(),
    reason="the attacker runs as uid 65534: needs root, setpriv and a Python that "
    "uid can start (CI runs as root, its environment readable by all)",
)
log = logging.getLogger(__name__)
START_METHODS = [
    m for m in ("spawn", "fork") if m in multiprocessing.get_all_start_methods()
]
# Run first, it makes the process take the path of a platform without Unix
# sockets (Windows): loopback TCP.
NO_AF_UNIX = "import socket\nif hasattr(socket, 'AF_UNIX'):\n    del socket.AF_UNIX\n"

# Sets up logging in a directory, logs, waits for a line on stdin, logs again.
# The levels make WARNING records reach info.log and the console whatever the
# bake's choices; the files go straight into the log directory.
OWNER = """
import logging, os, sys
from {{ cookiecutter.package_name }} import config
config.RUN_DIRS_KEPT = None
handlers = config.LOGGING_CONFIG["handlers"]
for entry in (config.LOGGING_CONFIG["root"], handlers["info"], handlers["console"]):
    entry["level"] = "WARNING"
config.setup_logging(sys.argv[1])
log = logging.getLogger("owner")
log.warning("before the attack")
config.flush_logs()
print(os.environ[{variable!r}].split(":")[1], flush=True)
sys.stdin.readline()
log.warning("after the attack")
"""

# Connects to the relay (a loopback port, or @name in the abstract namespace)
# and sends pickles (which would create ``marker``) and a forged batch: with no
# key, then claiming to know one.
ATTACKER = """
import hmac, os, pickle, socket, struct, sys
where, marker, mode, magic = sys.argv[1:]
magic = bytes.fromhex(magic)

def connect():
    if where.startswith("@"):
        connection = socket.socket(socket.AF_UNIX)
        connection.settimeout(5)
        connection.connect("\\0" + where[1:])
        return connection
    return socket.create_connection(("127.0.0.1", int(where)), 5)

class Exploit:
    def __reduce__(self):
        return (open, (marker, "w"))

def frame(body):
    return struct.pack("!I", len(body)) + body

exploit = pickle.dumps(Exploit())
forged = frame(b'[0, [["info", 40, "forger", "FORGED"]]]')
wrong_key = os.urandom(16)
if mode == "wrong key":  # as the relay's first frame was: (key, rank)
    exploit = pickle.dumps((wrong_key.hex(), Exploit()))
try:
    with connect() as connection:
        connection.sendall(frame(exploit) + frame(exploit))
except OSError:  # refused at once
    pass
try:
    with connect() as connection:
        connection.settimeout(3)
        connection.sendall(magic + os.urandom(16))
        reply = connection.recv(48)
        if mode == "wrong key":
            proof = hmac.digest(wrong_key, b"peer" + reply[:16], "sha256")
            connection.sendall(proof)
        connection.sendall(frame(exploit) + forged)
        connection.recv(1)
except OSError:
    pass
"""


def attacker_python() -> list[str]:
    """Python, as uid 65534, isolated from this user's files."""
    return [*AS_NOBODY, sys.executable, "-I", "-c"]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can write in, as a team's scratch directory."""
    path = Path(tempfile.mkdtemp(prefix="shared-"))
    path.chmod(0o777)
    probe = subprocess.run([*AS_NOBODY, "test", "-w", str(path)], check=False)
    if probe.returncode != 0:
        shutil.rmtree(path)
        pytest.skip(f"uid {NOBODY} cannot reach {path}")
    yield path
    shutil.rmtree(path)


def python_env(**variables: str) -> dict[str, str]:
    environ = {**os.environ, **variables}
    environ.pop(WRITER_VARIABLE, None)
    environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(SRC_DIR), os.environ.get("PYTHONPATH")])
    )
    return environ


def messages(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [record.message for record in logfiles.parse(lines, path.name)]


def attack(tmp_path: Path, prefix: list[str], code: str, mode: str) -> str:
    """Run OWNER after ``code`` (behind ``prefix``), attack its relay as uid
    65534 in ``mode``; its standard error, once it ended well and unharmed."""
    marker = tmp_path / "executed"
    tmp_path.chmod(0o755)  # the marker is not the attacker's to create
    script = code + OWNER.format(variable=WRITER_VARIABLE)
    owner = subprocess.Popen(
        [*prefix, sys.executable, "-c", script, str(tmp_path / "logs")],
        cwd=tmp_path,
        env=python_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        where = owner.stdout.readline().strip()
        assert where, owner.communicate(timeout=30)
        arguments = [where, str(marker), mode, relay._MAGIC.hex()]
        subprocess.run(
            [*attacker_python(), ATTACKER, *arguments], timeout=30, check=True, cwd="/"
        )
        _, stderr = owner.communicate("\n", timeout=30)
    finally:
        owner.kill()
        owner.wait()

    assert not marker.exists(), "the owner ran code that a peer sent"
    assert owner.returncode == 0, stderr
    assert messages(tmp_path / "logs" / "info.log") == [
        "before the attack",
        "after the attack",
    ]
    return stderr


def refusals(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Refused a connection" in line]


@needs_root
@pytest.mark.parametrize("mode", ["no key", "wrong key"])
def test_a_peer_without_the_key_gets_nothing_run_on_the_tcp_relay(
    tmp_path: Path, mode: str
) -> None:
    # The relay where there is no AF_UNIX (Windows), forced here; uid 65534
    # reaches the loopback port as any local user could.
    stderr = attack(tmp_path, [], NO_AF_UNIX, mode)

    assert refusals(stderr) == [
        "logging: Refused a connection to the log relay: the process does not "
        "know this run's key"
    ]


@needs_root
def test_a_peer_of_another_user_is_refused_on_the_abstract_socket(
    tmp_path: Path, read_only_tmp: list[str]
) -> None:
    # Any user may connect to a name in the abstract namespace: the owner
    # reads nothing from one that runs as another user.
    stderr = attack(tmp_path, read_only_tmp, "", "no key")

    assert refusals(stderr) == [
        "logging: Refused a connection to the log relay: the process runs as "
        "another user"
    ]


def test_a_joined_peer_s_bad_frames_close_only_its_own_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A peer that knows the key (this process, here) but sends what is not a
    # batch: too long, not JSON, a pickle, nested too deep, fields of the wrong
    # types. The owner reads none of it and goes on.
    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"]["info"], "level", "WARNING")
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "level", "WARNING")
    config.setup_logging(tmp_path)
    address = os.environ[WRITER_VARIABLE]

    def frame(body: bytes) -> bytes:
        return struct.pack("!I", len(body)) + body

    bad = [
        struct.pack("!I", relay.MAX_FRAME + 1),
        frame(b"not json"),
        frame(pickle.dumps((0, [("info", 30, "peer", "pickled")]))),
        frame(b"[" * 100_000 + b"]" * 100_000),
        frame(b'[0, [["info", "30", "peer", "level as text"]]]'),
        frame(b'{"0": [["info", 30, "peer", "an object"]]}'),
    ]
    for data in bad:
        with relay.connect(address) as connection:
            connection.sendall(data)
            with contextlib.suppress(ConnectionResetError):  # or reset
                assert connection.recv(1) == b""  # closed by the owner
    with relay.connect(address) as connection:
        connection.sendall(frame(b'[0, [["info", 30, "peer", "a plain batch"]]]'))
    log.warning("the owner goes on")
    deadline = time.monotonic() + 10
    while "a plain batch" not in (text := (tmp_path / "info.log").read_text()):
        assert time.monotonic() < deadline, text
        time.sleep(0.01)
    config.flush_logs()

    lines = (tmp_path / "info.log").read_text().splitlines()
    assert len(lines) == 2 and "a plain batch" in lines, lines
    assert any("the owner goes on" in line for line in lines), lines


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="a Unix socket")
def test_a_worker_killed_as_it_joins_is_no_stranger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A pool's worker killed mid-handshake closes its end having said nothing,
    # or half its hello: nothing to warn of (a wrong hello is, above).
    config.setup_logging(tmp_path)
    where = os.environ[WRITER_VARIABLE].split(":")[1]
    for attempt in range(20):
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(f"\0{where[1:]}" if where.startswith("@") else where)
            connection.sendall(relay._MAGIC[: attempt % 3 * 4])
    with relay.connect(os.environ[WRITER_VARIABLE]):  # served after those
        pass
    time.sleep(0.5)  # the readers of the closed ones have ended
    config.flush_logs()

    assert refusals(capsys.readouterr().err) == []


def test_a_python_without_the_private_modules_proves_the_key_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Where _blake2 or _operator is missing (a Python other than CPython), the
    # proof comes from hashlib and the comparison from hmac: the same bytes.
    import hashlib  # noqa: F401  (loaded first: it imports _blake2 itself)
    import hmac  # noqa: F401

    key, nonce = os.urandom(32), os.urandom(16)
    proof = relay._mac(key, b"peer", nonce)
    monkeypatch.setitem(sys.modules, "_blake2", None)
    monkeypatch.setitem(sys.modules, "_operator", None)

    assert relay._mac(key, b"peer", nonce) == proof
    assert relay._mac(key, b"owner", nonce) != proof
    assert relay._equal(proof, proof)
    assert not relay._equal(proof, bytes(len(proof)))


class TellingSocket:
    """A Unix socket whose platform tells its peer's user as ``answer``."""

    family = getattr(socket, "AF_UNIX", -1)

    def __init__(self, answer: bytes | OSError) -> None:
        self.answer = answer
        self.asked: list[tuple[int, int, int]] = []

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        self.asked.append((level, option, size))
        if isinstance(self.answer, OSError):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("platform", ["linux", "darwin", "freebsd14", "openbsd7"])
def test_the_peer_s_user_is_read_as_each_platform_tells_it(
    monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    # Simulated: this machine's kernel answers only as Linux does.
    monkeypatch.setattr(sys, "platform", platform)
    if platform in ("darwin", "freebsd14"):  # LOCAL_PEERCRED, struct xucred
        monkeypatch.delattr(socket, "SO_PEERCRED", raising=False)
        asked = (0, getattr(socket, "LOCAL_PEERCRED", 1), 76)

        def told(uid: int) -> bytes:
            return struct.pack("2Ih16I", 0, uid, 1, uid, *[0] * 15)

    else:  # SO_PEERCRED: pid, uid, gid; on OpenBSD uid, gid, pid
        monkeypatch.setattr(socket, "SO_PEERCRED", 17, raising=False)
        asked = (socket.SOL_SOCKET, 17, 12)

        def told(uid: int) -> bytes:
            if platform.startswith("openbsd"):
                return struct.pack("3i", uid, 4242, 4243)
            return struct.pack("3i", 4243, uid, 4242)

    ours, theirs = TellingSocket(told(os.getuid())), TellingSocket(told(NOBODY))

    assert relay._same_user(cast(socket.socket, ours))
    assert not relay._same_user(cast(socket.socket, theirs))
    assert ours.asked == [asked]
    failing = TellingSocket(OSError(95, "Operation not supported"))
    assert not relay._same_user(cast(socket.socket, failing))  # no answer, no entry


def test_a_platform_that_does_not_tell_the_peer_s_user_leaves_it_to_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "sunos5")
    monkeypatch.delattr(socket, "SO_PEERCRED", raising=False)
    silent = TellingSocket(OSError(92, "Protocol not available"))

    assert relay._same_user(cast(socket.socket, silent))
    assert silent.asked == []


def test_a_batch_longer_than_a_frame_is_sent_in_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(relay, "MAX_FRAME", 4096)  # read by both ends
    config.setup_logging(tmp_path)
    lines = [f"line {number:03d} " + "x" * 100 for number in range(100)]
    too_long = ("info", 30, "x" * 5000, "a record with a logger name too long")

    with relay.connect(os.environ[WRITER_VARIABLE]) as connection:
        relay._send(connection, 0, [("info", 30, "peer", line) for line in lines])
        relay._send(connection, 0, [too_long])
        relay._send(connection, 0, [("info", 30, "peer", "still connected")])
    deadline = time.monotonic() + 10
    while "still connected" not in (text := (tmp_path / "info.log").read_text()):
        assert time.monotonic() < deadline, text
        time.sleep(0.01)

    assert text.splitlines() == [*lines, "still connected"]
    assert capsys.readouterr().err.splitlines() == [
        "logging: A record of 5059 bytes is too long to send; it is dropped"
    ]


def test_silent_strangers_hold_a_bounded_number_of_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On loopback TCP any local user may connect and say nothing.
    monkeypatch.delattr(socket, "AF_UNIX", raising=False)
    config.setup_logging(tmp_path)
    address = os.environ[WRITER_VARIABLE]
    port = int(address.split(":")[1])

    strangers = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    time.sleep(0.5)
    readers = [t for t in threading.enumerate() if t.name == "log-relay-reader"]
    for stranger in strangers:
        stranger.close()

    assert len(readers) <= relay.HANDSHAKES
    deadline = time.monotonic() + 10
    while True:  # the strangers' places free up as their connections end
        try:
            relay.connect(address).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "no room again for a peer"
            time.sleep(0.05)


# A listener of another user's, where a stale or hostile address points: it
# prints "ready", then how many bytes it received in all.
LISTENER = """
import os, signal, socket, sys
where = sys.argv[1]
listener = socket.socket(socket.AF_UNIX)
listener.bind(where.replace("@", "\\0", 1) if where.startswith("@") else where)
listener.listen(8)
received = 0

def report(*_):
    print(received, flush=True)
    os._exit(0)

signal.signal(signal.SIGTERM, report)
print("ready", flush=True)
while True:
    connection, _ = listener.accept()
    connection.settimeout(0.5)
    try:
        while data := connection.recv(65536):
            received += len(data)
    except OSError:
        pass
    connection.close()
print(received, flush=True)
"""


@needs_root
@pytest.mark.parametrize("where", ["path", "abstract"])
def test_a_writer_socket_of_another_user_is_never_joined(
    tmp_path: Path, run_python: RunPython, shared_dir: Path, where: str
) -> None:
    if where == "abstract":
        if sys.platform != "linux":
            pytest.skip("Linux's abstract socket namespace")
        address = f"@log-{os.urandom(8).hex()}"
    else:  # a stale name made again by uid 65534, with the modes the owner used
        directory = shared_dir / "log-stale"
        subprocess.run([*AS_NOBODY, "mkdir", "-m", "700", str(directory)], check=True)
        address = str(directory / "writer.sock")
    listener = subprocess.Popen(
        [*attacker_python(), LISTENER, address],
        cwd="/",
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline() == "ready\n"
        result = run_python(
            "-c",
            "import logging\n"
            "from {{ cookiecutter.package_name }} import config\n"
            "config.RUN_DIRS_KEPT = None\n"
            'handlers = config.LOGGING_CONFIG["handlers"]\n'
            'for entry in (config.LOGGING_CONFIG["root"], handlers["info"]):\n'
            '    entry["level"] = "WARNING"\n'
            'handlers["console"]["level"] = "WARNING"\n'
            f"config.setup_logging({str(tmp_path / 'logs')!r})\n"
            "for number in range(3):\n"
            "    logging.getLogger('job').warning('record %d', number)\n",
            env={WRITER_VARIABLE: f"unix:{address}:{os.urandom(16).hex()}"},
            timeout=30,
        )
        listener.terminate()  # it reports what it received
        received, _ = listener.communicate(timeout=30)
    finally:
        listener.kill()
        listener.wait()

    assert result.returncode == 0, result.stderr
    assert received.strip() == "0", "the job sent its records to another user"
    found = messages(tmp_path / "logs" / "info.log")
    assert found[-3:] == ["record 0", "record 1", "record 2"]
    warnings = [m for m in found if WRITER_VARIABLE in m]
    assert len(warnings) == 1, found
    assert "writes its own log files" in warnings[0]
    assert result.stderr.count(WRITER_VARIABLE) == 1, result.stderr


# A run whose two workers (of a start method, or programs that set up logging
# themselves) log through the relay.
WORKERS_RUN = """
import logging, multiprocessing, subprocess, sys
from {{ cookiecutter.package_name }} import config

def work(count):
    for number in range(count):
        logging.getLogger("worker").warning("worker record %d", number)

def setup(log_dir):
    config.RUN_DIRS_KEPT = None
    handlers = config.LOGGING_CONFIG["handlers"]
    for entry in (config.LOGGING_CONFIG["root"], handlers["info"], handlers["console"]):
        entry["level"] = "WARNING"
    config.setup_logging(log_dir)

if __name__ == "__main__" and sys.argv[2] == "program":
    setup(sys.argv[1] + "-not-used")
    work(50)
elif __name__ == "__main__":
    setup(sys.argv[1])
    logging.getLogger("owner").warning("owner record")
    if sys.argv[2] == "programs":
        program = [sys.executable, __file__, sys.argv[1], "program"]
        for _ in range(2):
            subprocess.run(program, check=True)
    else:
        context = multiprocessing.get_context(sys.argv[2])
        with context.Pool(2, initializer=config.worker_logging()) as pool:
            pool.map(work, [50, 50])
"""


def assert_one_run_of_every_record(log_dir: Path, stderr: str) -> None:
    found = messages(log_dir / "info.log")
    expected = ["owner record"] + [f"worker record {n}" for n in range(50)] * 2
    assert sorted(found) == sorted(expected), stderr
    files = sorted(path.name for path in log_dir.glob("*.log*"))
    assert files == ["error.log", "info.log"]  # none of a worker's own
    assert not log_dir.with_name(log_dir.name + "-not-used").exists()
    assert "Traceback" not in stderr, stderr


@needs_root
def test_an_unwritable_tmpdir_moves_the_relay_and_breaks_nothing(
    shared_dir: Path,
) -> None:
    # As uid 65534, with TMPDIR a directory it cannot write in.
    tmpdir = shared_dir / "tmp"
    tmpdir.mkdir(mode=0o755)
    source = shared_dir / "src"
    shutil.copytree(SRC_DIR, source)
    script = shared_dir / "run.py"
    script.write_text(WORKERS_RUN, "utf-8")
    log_dir = shared_dir / "logs"
    result = subprocess.run(
        [*AS_NOBODY, sys.executable, str(script), str(log_dir), "programs"],
        cwd=shared_dir,
        env={**python_env(TMPDIR=str(tmpdir)), "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert_one_run_of_every_record(log_dir, result.stderr)
    assert "logging:" not in result.stderr  # the relay lived elsewhere, silently
    assert list(tmpdir.iterdir()) == []


@pytest.fixture
def read_only_tmp(tmp_path: Path) -> list[str]:
    """A command prefix: as in a container with a read-only root, /tmp (and
    /var/tmp) cannot be written; tmp_path/logs can. Needs Linux, root and a
    mount namespace of our own."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("Linux's mount namespaces and abstract socket namespace")
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    mounts = " && ".join(
        [
            "mount --bind /tmp /tmp",
            f"mount --bind {log_dir} {log_dir}",  # stays writable
            "mount -o remount,bind,ro /tmp",
            "(! test -d /var/tmp || (mount --bind /var/tmp /var/tmp"
            " && mount -o remount,bind,ro /var/tmp))",
            "! test -w /tmp",
            'exec "$@"',
        ]
    )
    command = ["unshare", "-m", "sh", "-c", mounts, "sh"]
    probe = subprocess.run([*command, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot make /tmp read-only here: needs root and mount namespaces")
    return command


def test_a_read_only_tmp_puts_the_relay_in_the_abstract_namespace(
    tmp_path: Path, read_only_tmp: list[str]
) -> None:
    log_dir = tmp_path / "logs"
    script = tmp_path / "run.py"
    script.write_text(WORKERS_RUN, "utf-8")
    result = subprocess.run(
        [*read_only_tmp, sys.executable, str(script), str(log_dir), "spawn"],
        cwd=tmp_path,
        env=python_env(TMPDIR="/tmp"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert_one_run_of_every_record(log_dir, result.stderr)
    assert "logging:" not in result.stderr


def test_no_socket_at_all_warns_once_and_the_process_writes_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No Unix socket, and loopback refused.
    def fails(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.delattr(socket, "AF_UNIX", raising=False)  # Windows, no loopback
    monkeypatch.setattr(socket, "create_server", fails)
    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"]["info"], "level", "WARNING")
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "level", "WARNING")
    (tmp_path / "logs").mkdir()

    config.setup_logging(tmp_path / "logs")
    log.warning("still written")
    config.flush_logs()

    assert messages(tmp_path / "logs" / "info.log") == ["still written"]
    console = capsys.readouterr().err.splitlines()
    warnings = [line for line in console if "listen" in line]
    assert warnings == [
        "logging: Cannot listen for the processes this one starts ([Errno 13] "
        "Permission denied); they write log files of their own"
    ]
    assert WRITER_VARIABLE not in os.environ


@pytest.mark.parametrize("method", START_METHODS)
def test_a_run_through_the_tcp_relay_keeps_every_record(
    tmp_path: Path, run_python: RunPython, method: str
) -> None:
    # Where there is no AF_UNIX (Windows): removed before the package is
    # imported. Spawned workers have it, and still join over TCP.
    script = tmp_path / "run.py"
    script.write_text(f"{NO_AF_UNIX}\n{WORKERS_RUN}", "utf-8")
    result = run_python(str(script), str(tmp_path / "logs"), method, timeout=120)

    assert result.returncode == 0, result.stderr
    assert_one_run_of_every_record(tmp_path / "logs", result.stderr)


@needs_root
def test_a_planted_link_at_the_run_record_s_temporary_name_is_never_followed(
    shared_dir: Path,
) -> None:
    # uid 65534 made the runs directory of a shared log directory, and plants
    # a link where the record's temporary file would be.
    victim = shared_dir / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    log_dir = shared_dir / "logs"
    runs = log_dir / "runs"
    subprocess.run([*AS_NOBODY, "mkdir", "-m", "777", "-p", str(runs)], check=True)
    script = (
        "import os, sys\n"
        "print(os.getpid(), flush=True)\n"
        "sys.stdin.readline()\n" + OWNER.format(variable=WRITER_VARIABLE)
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(log_dir)],
        cwd=shared_dir,
        env=python_env(**{config.RUN_ID_ENV: "shared-run"}),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        pid = owner.stdout.readline().strip()
        planted = log_dir / "runs" / f".shared-run.json.{pid}"
        subprocess.run([*AS_NOBODY, "ln", "-s", str(victim), str(planted)], check=True)
        _, stderr = owner.communicate("\n\n", timeout=30)
    finally:
        owner.kill()
        owner.wait()

    assert owner.returncode == 0, stderr
    assert victim.read_text() == "precious\n"
    assert planted.is_symlink()
    record = (log_dir / "runs" / "shared-run.json").read_text("utf-8")
    assert '"run_id": "shared-run"' in record
    assert [p.name for p in (log_dir / "runs").iterdir() if p != planted] == [
        "shared-run.json"
    ]


@needs_root
@pytest.mark.parametrize("name", ["info", "error"])
def test_a_log_file_of_another_user_is_never_appended_to(
    shared_dir: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # uid 65534 made the file first, readable and writable by all.
    planted = shared_dir / f"{name}.log"
    subprocess.run(
        [*AS_NOBODY, "sh", "-c", f"echo planted > {planted} && chmod 666 {planted}"],
        check=True,
    )

    config.setup_logging(shared_dir)
    log.critical("a secret of root's")  # in info.log whatever the bake's levels
    config.flush_logs()

    assert planted.read_text() == "planted\n"
    ours = shared_dir / f"{name}.uid0.log"
    assert messages(ours)[-1] == "a secret of root's"
    assert ours.stat().st_uid == os.getuid()
    assert ours.stat().st_mode & 0o777 == 0o600
    warnings = [
        line for line in capsys.readouterr().err.splitlines() if "another user" in line
    ]
    assert warnings == [
        f"logging: {planted} belongs to another user (uid {NOBODY}) or is a link "
        f"to another file: writing {ours} instead"
    ]
