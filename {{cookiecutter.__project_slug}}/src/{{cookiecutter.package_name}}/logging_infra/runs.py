"""Run directories and the run record: find any run again.

With run directories (``config.RUN_DIRS_KEPT`` set), each run writes into
``<log dir>/<run id>/``, which a marker file names as this project's; at set-up
rank 0 removes the oldest marked directories beyond the number kept and points
``<log dir>/latest`` at the new one. Rank 0 writes the run record, ``run.json``
(in the run directory, else ``<log dir>/runs/<run id>.json``): what ran, on which
commit and machine, with which arguments; the end of the run completes it.

Its ``status``, with ``exit_code`` as a shell would report it:

- ``running``: set up, not ended (or ended in a way no one has noticed yet);
- ``finished`` (0): ran to its end, or ``sys.exit(0)``;
- ``failed``: an uncaught exception (1, with ``error``), or ``sys.exit(n)`` (n;
  ``sys.exit("message")``: 1, with the message as ``error``). To learn the code
  of ``sys.exit()``, which the interpreter tells no exit hook, the run's first
  process wraps ``sys.exit``; one caught, or called in a thread, does not count;
- ``interrupted`` (130): Ctrl+C, an uncaught KeyboardInterrupt;
- ``terminated`` (143, with ``signal``): SIGTERM, as a scheduler ends a job at its
  time limit or on preemption; written before the process dies;
- ``exited`` (null): a ``raise SystemExit(n)`` outside the entry point, whose
  code the interpreter keeps to itself;
- ``vanished`` (null, with ``noticed`` and ``noticed_by``): the process died
  without a word (SIGKILL, ``os._exit()``, the out-of-memory killer, a power
  cut), as the next run to set up noticed.

A run is alive while one of its processes holds a lock on its marker (shared
layout: on ``runs/.<run id>.running``); where locks do not work, while its
process id and start time still match. Set-up never removes a live run, nor a
file that logging did not write: a run directory with files of yours (a
checkpoint) stays, without its marker, and a warning says what was kept.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

from . import sigterm
from .context import RunContext, host_name
from .files import FILE_MODE, make_private_dirs
from .redact import redact

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType
    from typing import Any, NoReturn

try:
    from fcntl import LOCK_EX, LOCK_NB, LOCK_SH, flock
except ImportError:  # Windows: liveness by process id only
    flock = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)
PACKAGE = __name__.split(".")[0]
# Only directories holding this file are ever removed by set-up.
MARKER = f".{PACKAGE}-run"
LATEST = "latest"
GIT_TIMEOUT = 0.1  # seconds: a slow or absent git never holds up the start
# Keys of the record that add_info() may not replace.
RESERVED = frozenset(
    ("run_id", "status", "start", "end", "duration_s", "exit_code", "error")
) | {"signal", "pid", "process_start", "noticed", "noticed_by"}
RECORD = "run.json"
# A file in a run directory is the run's own if it is the marker, the record,
# a temporary file of the record, or a log file as the handlers name them
# (info.log, info.rank1.log, info.log.3, info.uid1000.log).
_TEMPORARY = re.compile(rf"\.{re.escape(RECORD)}\.[0-9a-f.]+")
_VARIANTS = r"(?:\.rank[0-9]+)?(?:\.uid[0-9]+)?"


class _Run:
    """The record of the run this process started (rank 0 only)."""

    def __init__(self, path: Path | None, record: dict[str, Any]) -> None:
        self.path, self.record = path, record
        self.started = time.monotonic()
        self.detailed = False
        self.pid = os.getpid()  # a forked child has this object, not the run
        self.top = _outermost_frame()  # how it ended tells how the script did
        self.lock: Path | None = None  # the shared layout's lock file
        self.lock_fd: int | None = None

    def complete(self) -> None:
        """Add what is slow to learn (git, the installed version): when the run's
        summary is asked for or the run ends, not while logging is set up."""
        if not self.detailed:
            self.detailed = True
            _add_details(self)


_fields: dict[str, Any] = {}  # from add_info(), kept for a record made later
# Told when the run ends, after the record is written: (record, write it again)
_endings: list[Callable[[dict[str, Any], Callable[[], None]], None]] = []
_run: _Run | None = None
_marker_fd: int | None = None  # this process's hold on its run directory
_exit_request: SystemExit | None = None  # the last sys.exit() of the main thread
_sys_exit: Callable[[str | int | None], NoReturn] | None = None  # before the wrap
_exiting = False  # the interpreter is on its way out


def run_directory(base: Path, run: RunContext, keep: int, notes: list[str]) -> Path:
    """Make this run's directory under ``base``; raise OSError if it cannot be."""
    global _marker_fd
    directory = base / _safe_name(run.run_id)
    make_private_dirs(directory)
    fd: int | None
    try:  # the first rank to get here marks it; O_EXCL keeps its time the start
        fd = os.open(
            directory / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE
        )
    except FileExistsError:
        fd = _open_marker(directory / MARKER)
    else:
        text = f"Run directory of {PACKAGE}: set-up may remove it.\n{_identity()}"
        os.write(fd, text.encode())
    if fd is not None:  # held while this process lives: set-up leaves the run be
        _hold(fd)
    previous, _marker_fd = _marker_fd, fd
    if run.rank == 0:
        _remove_old_runs(base, keep, directory, notes)
        _point_latest(base, directory.name, notes)
    if previous is not None:  # this process ran another run before
        os.close(previous)
    return directory


def record_path(log_dir: Path, run: RunContext, per_run: bool) -> Path:
    if per_run:
        return log_dir / RECORD
    return log_dir / "runs" / f"{_safe_name(run.run_id)}.json"


def _safe_name(run_id: str) -> str:
    """The run id as one directory name: no separators, no leading dot."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    name = name.lstrip(".") or "run"
    return f"{name}_" if name == LATEST else name


def _open_marker(path: Path, flags: int = os.O_RDONLY) -> int | None:
    """Open a marker or lock file to lock it; never a link or a pipe."""
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        return os.open(path, flags, FILE_MODE)
    except OSError:
        return None


def _hold(fd: int) -> None:
    """Lock, shared: every process of the run holds it while it lives; set-up
    takes it (exclusive) only from a run that is over."""
    if flock is not None:
        with contextlib.suppress(OSError):  # a file system without locks
            flock(fd, LOCK_SH)


def _remove_old_runs(base: Path, keep: int, current: Path, notes: list[str]) -> None:
    """Remove the oldest run directories beyond ``keep``, but none that is alive
    and no file that logging did not write; mark runs that vanished."""
    runs = []
    with os.scandir(base) as entries:
        for entry in entries:
            if entry.name == current.name or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                marker = os.lstat(Path(entry.path, MARKER))
            except OSError:
                continue  # not made by this project
            if marker.st_mode & 0o170000 == 0o100000:  # a regular file: stat.S_ISREG
                runs.append((marker.st_mtime_ns, entry.name))
    runs.sort()
    excess = max(len(runs) - (keep - 1), 0)
    kept: list[str] = []
    for index, (_, name) in enumerate(runs):
        directory = base / name
        with _unless_alive(directory / MARKER, directory / RECORD) as dead:
            if not dead:
                continue
            if index >= excess:
                _notice_vanished(directory / RECORD, current.name)
                continue
            try:
                kept += _remove_run(directory)
            except OSError as error:
                notes.append(f"Cannot remove the old run directory {name}: {error}")
    if kept:
        notes.append(
            f"Kept files that logging did not write in old run directories: "
            f"{', '.join(kept[:5])}{' and more' if len(kept) > 5 else ''}. Set-up "
            f"removes only log files from {base}: keep checkpoints elsewhere"
        )


@contextlib.contextmanager
def _unless_alive(lock: Path, record: Path) -> Iterator[bool]:
    """True (with the run's lock taken, where locks work) if the run is over:
    no process holds its lock, and its record says it ended or its process on
    this host is gone. Another host's run counts as alive until it ends: some
    cluster file systems keep a lock to the node that took it."""
    fd = _open_marker(lock)
    if fd is None:
        yield False  # gone meanwhile, or not ours to judge
        return
    try:
        taken = _try_lock(fd)
        yield taken is not False and not _alive(_read(record), fd, taken)
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool | None:
    """Take the lock: False if a process holds it, None if locks do not work."""
    if flock is None:
        return None
    try:
        flock(fd, LOCK_EX | LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks
        return None
    return True


def _alive(record: dict[str, Any] | None, lock_fd: int, taken: bool | None) -> bool:
    """Is a run whose lock no process holds (or who knows) alive all the same?"""
    if record is not None and record.get("status", "running") != "running":
        return False  # it ended
    owner = record if record and record.get("pid") else _owner(lock_fd)
    if owner is None:  # neither record nor owner: a lock taken decides
        return not taken
    if owner.get("host") != host_name():
        return True
    try:
        pid = int(owner["pid"])
    except (TypeError, ValueError):
        return True
    return _process_alive(pid, owner.get("process_start"))


def _identity() -> str:
    """Who holds a marker or lock file, for where locks do not work."""
    pid = os.getpid()
    return f"host {host_name()}\npid {pid}\nprocess_start {_process_start(pid)}\n"


def _owner(fd: int) -> dict[str, str] | None:
    """The identity written in a marker or lock file, if any."""
    try:
        text = os.pread(fd, 4096, 0) if hasattr(os, "pread") else os.read(fd, 4096)
    except OSError:
        return None
    lines = text.decode("utf-8", "replace").splitlines()
    owner = dict(line.partition(" ")[::2] for line in lines if " " in line)
    return owner if "pid" in owner and "host" in owner else None


def _remove_run(directory: Path) -> list[str]:
    """Remove the run's own files, and the directory if nothing else is in it.
    Return what was kept, as paths."""
    record = _read(directory / RECORD)
    logs = record.get("log_files") if record else None
    names = ["*.log"]  # no record: any log file, as the handlers name them
    if isinstance(logs, dict):
        names = [os.path.basename(str(name)) for name in logs.values()]
    pattern = "|".join(
        re.escape(root).replace(r"\*", "[^/]+") + _VARIANTS + re.escape(extension)
        for root, extension in map(os.path.splitext, names)
    )
    own = re.compile(rf"(?:{pattern})(?:\.[0-9]+)?")
    tracker_files = (record or {}).get("tracker_files") or []  # metrics.jsonl, ...
    kept = []
    with os.scandir(directory) as entries:
        for entry in list(entries):
            name = entry.name
            if name == MARKER:
                continue
            ours = name in (RECORD, *tracker_files) or _TEMPORARY.fullmatch(name)
            ours = ours or own.fullmatch(name)
            if ours and not entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
            else:
                kept.append(str(directory / name))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / MARKER)  # what is left is yours, not a run
    if not kept:
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(directory)
    return kept


def _notice_vanished(path: Path, noticed_by: str) -> None:
    """Mark the record of a run whose processes are gone, if it says running."""
    record = _read(path)
    if record is None or record.get("status") != "running":
        return
    record.update(
        status="vanished", exit_code=None, noticed=_now(), noticed_by=noticed_by
    )
    _write(_Run(path, record))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _process_alive(pid: int, started: object) -> bool:
    """Is the process of this host that wrote ``started`` alive? Unknown (Windows)
    counts as alive."""
    if sys.platform == "win32":
        return True  # no safe way to ask without more code than it is worth
    now = _process_start(pid)
    if now is not None or started not in (None, "None"):
        return now is not None and now == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _process_start(pid: int) -> str | None:
    """When the process started, as Linux counts it (since boot, in ticks),
    with the boot's id: a process id reused later gets another one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read().rpartition(b")")[2].split()
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            boot = file.read().strip()
    except OSError:
        return None
    if len(stat) <= 19 or stat[0] in (b"Z", b"X"):  # dead, not yet reaped
        return None
    return f"{boot}/{int(stat[19])}"


def _point_latest(base: Path, name: str, notes: list[str]) -> None:
    """Make ``latest`` name the run: a symbolic link, else a text file."""
    latest, temporary = base / LATEST, base / f".{LATEST}.{os.getpid()}"
    try:
        temporary.unlink(missing_ok=True)
        try:
            os.symlink(name, temporary, target_is_directory=True)
        except (OSError, NotImplementedError):  # e.g. Windows without the right
            temporary.write_text(name + "\n", encoding="utf-8")
        os.replace(temporary, latest)  # atomic: readers see the old or the new
    except OSError as error:
        notes.append(f"Cannot point {latest} at {name}: {error}")


def start(
    path: Path | None, run: RunContext, config: dict[str, Any], log_dir: Path | None
) -> None:
    """Start the run record; write it at ``path`` unless that is None."""
    global _run
    handlers = config["handlers"]
    record: dict[str, Any] = {
        "run_id": run.run_id,
        "status": "running",
        "start": _now(),
        "command": None,  # these four come from _add_details()
        "cwd": os.getcwd(),
        "git": None,
        "version": None,
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "os": None,
        "host": run.host,
        "pid": os.getpid(),
        "process_start": _process_start(os.getpid()),
        "world_size": run.world_size,
        "log_levels": {"root": config["root"]["level"]}
        | {name: handler.get("level", "NOTSET") for name, handler in handlers.items()},
        "log_dir": str(log_dir) if log_dir else None,
        "log_files": {
            name: handler["filename"]
            for name, handler in handlers.items()
            if "filename" in handler
        },
        **_torch_info(),
        **_fields,
    }
    previous = _run
    _run = _Run(path, record)
    if previous is not None and previous.pid == _run.pid:
        if previous.path == path and "end" not in previous.record:
            record["start"] = previous.record["start"]  # set up again: the same run
            _run.started, _run.lock = previous.started, previous.lock
            _run.lock_fd, previous.lock_fd = previous.lock_fd, None
        else:  # this process goes on as another run
            _finish(previous, "finished", None)
    if path is not None:
        try:
            make_private_dirs(path.parent)
        except OSError as error:
            logger.warning("Cannot write the run record %s: %s", path, error)
            _run.path = path = None
    per_run = path is not None and (path.parent / MARKER).exists()
    if path is not None and not per_run and _run.lock_fd is None:
        _hold_shared_layout_lock(_run, path)
    _write(_run)
    if path is not None:
        _watch_sys_exit()


def _hold_shared_layout_lock(run: _Run, path: Path) -> None:
    """Lock ``runs/.<run id>.running`` while the run lives; mark the runs whose
    lock no process holds any more as vanished."""
    with os.scandir(path.parent) as entries:
        stale = [
            Path(entry.path)
            for entry in entries
            if entry.name.startswith(".") and entry.name.endswith(".running")
        ]
    for lock in stale:
        record = lock.with_name(lock.name[1 : -len(".running")] + ".json")
        with _unless_alive(lock, record) as dead:
            if dead:
                _notice_vanished(record, run.record["run_id"])
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
    run.lock = path.with_name(f".{path.stem}.running")
    run.lock_fd = _open_marker(run.lock, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    if run.lock_fd is None:
        run.lock = None
    else:
        _hold(run.lock_fd)
        with contextlib.suppress(OSError):
            os.write(run.lock_fd, _identity().encode())


def _add_details(run: _Run) -> None:
    import platform
    import shlex

    run.record.update(
        command=shlex.join(sys.orig_argv),
        git=git_info(Path(__file__).parent),
        version=_version(),
        os=" ".join((platform.system(), platform.release(), platform.machine())),
    )
    _write(run)


def summary() -> str:
    """The run record in one line, for the log."""
    if _run is None:
        raise RuntimeError("setup_logging() has not been called")
    _run.complete()
    record = _run.record
    git = record["git"] or {}
    commit = (git.get("commit") or "")[:12]  # unknown (no git, no commit): left out
    if commit and git.get("branch"):
        commit += f" on {git['branch']}"
    if commit and git.get("dirty"):
        commit += " with uncommitted changes"
    fields = {key: record[key] for key in _fields if key in record}
    return "; ".join(
        [
            f"Run {record['run_id']} started: {record['command']}",
            *(f"{key}={_compact(value)}" for key, value in fields.items()),
            *([f"git {commit}"] if commit else []),
            f"Python {record['python']} on {record['os']}, host {record['host']}",
            f"{record['world_size']} process(es)",
            *([f"record in {_run.path}"] if _run.path else []),
        ]
    )


def add_info(fields: dict[str, Any]) -> None:
    """Add fields to the run record; see ``config.add_run_info()``."""
    taken = RESERVED.intersection(fields)
    if taken:
        raise ValueError(f"{', '.join(sorted(taken))}: set by the run record itself")
    _fields.update(fields)
    if _run is not None and "end" not in _run.record:
        _run.complete()
        _run.record.update(fields)
        _write(_run)


def fields() -> dict[str, Any]:
    """The fields that add_info() added."""
    return dict(_fields)


def record_file() -> Path | None:
    """Where this process writes the run record; None if it does not."""
    return _run.path if _run is not None and _run.pid == os.getpid() else None


def when_ending(callback: Callable[[dict[str, Any], Callable[[], None]], None]) -> None:
    """Call ``callback(record, write)`` once the run has ended (a tracker's)."""
    if callback not in _endings:
        _endings.append(callback)


def end(exit_code: int | None = None) -> None:
    """Complete the run record: end time, duration, status and exit code.

    The first call counts. An exception on its way out (when called from a
    ``finally`` block) decides the status and exit code; else ``exit_code``
    does, or, when called at exit, how the interpreter exits.
    """
    if _run is None or "end" in _run.record or _run.pid != os.getpid():
        return
    error = sys.exc_info()[1]
    if error is None and exit_code is None:  # at exit: only the interpreter knows
        error = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if error is None and exit_code is None and _exiting:
        returned = _returned(_run.top)
        if returned is False and _exit_request is None:  # raise SystemExit(n)
            _finish(_run, "exited", None)  # its code is the interpreter's secret
            return
        error = None if returned else _exit_request  # a sys.exit() caught is none
        if error is None:
            exit_code = 0  # the script ran to its end
    status = "failed"
    if isinstance(error, SystemExit):
        code = error.code
        exit_code = int(code) if isinstance(code, int) else 0 if code is None else 1
        if code is None or isinstance(code, int):
            error = None  # sys.exit("message") keeps its message as the error
    elif isinstance(error, KeyboardInterrupt):
        exit_code, status = 130, "interrupted"  # as a shell reports SIGINT
    elif error is not None:
        exit_code = 1
    if exit_code == 0 or (exit_code is None and error is None):
        status = "finished"
    _finish(_run, status, exit_code, error)


def _finish(
    run: _Run,
    status: str,
    exit_code: int | None,
    error: BaseException | None = None,
    details: bool = True,
    **fields: Any,
) -> None:
    if details and run.path is not None:
        run.complete()
    run.record.update(
        end=_now(),
        duration_s=round(time.monotonic() - run.started, 3),
        status=status,
        exit_code=exit_code,
        **fields,
        **_torch_info(),  # GPU names are known once CUDA is in use
    )
    if isinstance(error, SystemExit):  # sys.exit("message")
        run.record["error"] = str(error)
    elif error is not None:
        run.record["error"] = f"{type(error).__name__}: {error}"
    _write(run)
    for ending in _endings:
        ending(run.record, lambda: _write(run))
    _release(run)


def _release(run: _Run) -> None:
    """The run is over: its lock no longer keeps it alive."""
    if run.lock_fd is not None:
        if run.lock is not None:
            with contextlib.suppress(OSError):
                os.unlink(run.lock)
        os.close(run.lock_fd)
        run.lock_fd = None


def _terminated(signum: int) -> None:
    """SIGTERM (a time limit, preemption): recorded before the process dies, with
    the exit status a shell reports (128 + the signal number)."""
    if _run is None or "end" in _run.record or _run.pid != os.getpid():
        return
    name = signal.Signals(signum).name
    # No git or package metadata now: the process has seconds to live.
    _finish(_run, "terminated", 128 + signum, details=False, signal=name)


sigterm.before_death(_terminated)


def _watch_sys_exit() -> None:
    """Wrap ``sys.exit`` to learn its code: the interpreter tells no exit hook."""
    global _sys_exit
    if _sys_exit is None:
        _sys_exit, sys.exit = sys.exit, _exit


def _exit(status: str | int | None = None, /) -> NoReturn:
    """``sys.exit()``, remembered for the run record."""
    global _exit_request
    try:
        if _sys_exit is not None:
            _sys_exit(status)
        raise SystemExit(status)
    except SystemExit as request:
        if threading.current_thread() is threading.main_thread():
            _exit_request = request  # a thread's sys.exit() ends the thread only
        raise


def _outermost_frame() -> FrameType | None:
    """The main thread's outermost frame (the script's), seen from within it."""
    if threading.current_thread() is not threading.main_thread():
        return None
    frame = sys._getframe()
    while frame.f_back is not None:
        frame = frame.f_back
    return frame


def _returned(frame: FrameType | None) -> bool | None:
    """Did the script return (True), or did an exception end it (False)? None
    if unknown. How a finished frame ended is its last instruction."""
    if frame is None or frame.f_lasti < 0:
        return None
    import dis  # slow to import: at exit only

    # RETURN_VALUE, RETURN_CONST (3.12), or either instrumented by a monitor
    return "RETURN" in dis.opname[frame.f_code.co_code[frame.f_lasti]]


def forget() -> None:
    """Drop the run record and added fields: the next set-up starts afresh."""
    global _run, _exit_request
    if _run is not None and _run.pid == os.getpid():
        _release(_run)
    _run = _exit_request = None
    _fields.clear()


def _at_exit() -> None:
    """For entry points that do not call end() themselves."""
    global _exiting
    _exiting = True
    end()
    if _run is not None:  # the script's frame held its globals: let them go now,
        _run.top = None  # so that their destructors run (and may still log)


atexit.register(_at_exit)


def git_info(directory: Path) -> dict[str, Any] | None:
    """Commit, branch and whether tracked files changed; None outside a repository,
    without git, or if git takes longer than GIT_TIMEOUT."""
    import subprocess  # slow to import: not at set-up

    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=directory,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # never block a commit
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=GIT_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    info: dict[str, Any] = {"commit": None, "branch": None, "dirty": False}
    for line in done.stdout.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.removeprefix("# branch.oid ")
            info["commit"] = None if commit == "(initial)" else commit
        elif line.startswith("# branch.head "):
            branch = line.removeprefix("# branch.head ")
            info["branch"] = None if branch == "(detached)" else branch
        elif not line.startswith("#"):
            info["dirty"] = True
    return info


def _torch_info() -> dict[str, Any]:
    """Versions and GPUs, only if torch is imported already: importing it is slow."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    try:
        cuda = torch.cuda
        # Asking for names would initialize CUDA, which forked workers cannot use.
        names = cuda.is_initialized() and [
            cuda.get_device_name(i) for i in range(cuda.device_count())
        ]
        return {
            "torch": str(torch.__version__),
            "cuda": torch.version.cuda,
            "gpus": names or None,
        }
    except Exception:  # a half-imported or unusual build: leave it out
        return {}


def _version() -> str | None:
    from importlib import metadata  # slow to import: not at set-up

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # run from a checkout, not installed
        return None


def _now() -> str:
    """Local time with milliseconds and offset: 2026-11-27T13:02:48.713+01:00."""
    now = time.time()
    local = time.localtime(now)
    offset = time.strftime("%z", local)
    milliseconds = int(now % 1 * 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    return f"{stamp}.{milliseconds:03d}{offset[:3]}:{offset[3:]}"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _write(run: _Run) -> None:
    """Replace the record in one step, with secrets masked as in the logs."""
    if run.path is None or run.pid != os.getpid():  # a forked child: not its run
        return
    text = json.dumps(run.record, indent=2, ensure_ascii=False, default=str)
    text = redact(text)
    try:
        json.loads(text)
    except ValueError:  # a mask cut through an escape: mask value by value instead
        text = json.dumps(_masked(run.record), indent=2, ensure_ascii=False)
    # A new file of a name no one can guess, never through a link: the log
    # directory may be one that other users can write in.
    unique = f"{os.getpid()}.{os.urandom(4).hex()}"
    temporary = run.path.with_name(f".{run.path.name}.{unique}")
    created = False
    try:
        make_private_dirs(run.path.parent)  # deleted while the run went on?
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(temporary, flags, FILE_MODE)
        created = True
        with open(fd, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        os.replace(temporary, run.path)
    except OSError as error:
        logger.warning("Cannot write the run record %s: %s", run.path, error)
        if created:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return redact(str(value))
