"""Run directories and the run record: find any run again.

With run directories (``config.RUN_DIRS_KEPT`` set), each run writes into
``<log dir>/<run id>/``, which a marker file names as this project's; at set-up
rank 0 removes the oldest marked directories beyond the number kept and points
``<log dir>/latest`` at the new one. Rank 0 writes the run record, ``run.json``
(in the run directory, else ``<log dir>/runs/<run id>.json``): what ran, on which
commit and machine, with which arguments; the end of the run completes it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import time
from pathlib import Path

from .context import RunContext
from .files import FILE_MODE, make_private_dirs
from .redact import redact

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from typing import Any

logger = logging.getLogger(__name__)
PACKAGE = __name__.split(".")[0]
# Only directories holding this file are ever removed by set-up.
MARKER = f".{PACKAGE}-run"
LATEST = "latest"
GIT_TIMEOUT = 0.1  # seconds: a slow or absent git never holds up the start
# Keys of the record that add_info() may not replace.
RESERVED = frozenset(
    ("run_id", "status", "start", "end", "duration_s", "exit_code", "error")
)


class _Run:
    """The record of the run this process started (rank 0 only)."""

    def __init__(self, path: Path | None, record: dict[str, Any]) -> None:
        self.path, self.record = path, record
        self.started = time.monotonic()
        self.detailed = False

    def complete(self) -> None:
        """Add what is slow to learn (git, the installed version): when the run's
        summary is asked for or the run ends, not while logging is set up."""
        if not self.detailed:
            self.detailed = True
            _add_details(self)


_fields: dict[str, Any] = {}  # from add_info(), kept for a record made later
_run: _Run | None = None


def run_directory(base: Path, run: RunContext, keep: int, notes: list[str]) -> Path:
    """Make this run's directory under ``base``; raise OSError if it cannot be."""
    directory = base / _safe_name(run.run_id)
    make_private_dirs(directory)
    try:  # the first rank to get here marks it; O_EXCL keeps its time the start
        fd = os.open(
            directory / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE
        )
    except FileExistsError:
        pass
    else:
        with open(fd, "w", encoding="utf-8") as marker:
            marker.write(f"Run directory of {PACKAGE}: set-up may remove it.\n")
    if run.rank == 0:
        _remove_old_runs(base, keep, directory, notes)
        _point_latest(base, directory.name, notes)
    return directory


def record_path(log_dir: Path, run: RunContext, per_run: bool) -> Path:
    if per_run:
        return log_dir / "run.json"
    return log_dir / "runs" / f"{_safe_name(run.run_id)}.json"


def _safe_name(run_id: str) -> str:
    """The run id as one directory name: no separators, no leading dot."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    name = name.lstrip(".") or "run"
    return f"{name}_" if name == LATEST else name


def _remove_old_runs(base: Path, keep: int, current: Path, notes: list[str]) -> None:
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
    for _, name in runs[: max(len(runs) - (keep - 1), 0)]:
        try:
            import shutil  # only when there is something to remove

            shutil.rmtree(base / name)
        except FileNotFoundError:
            pass  # another run's set-up removed it first
        except OSError as error:
            notes.append(f"Cannot remove the old run directory {base / name}: {error}")


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
    if _run is not None and _run.path == path and "end" not in _run.record:
        record["start"] = _run.record["start"]  # set up again: the same run
    _run = _Run(path, record)
    if path is not None:
        try:
            make_private_dirs(path.parent)
        except OSError as error:
            logger.warning("Cannot write the run record %s: %s", path, error)
            _run.path = path = None
    _write(_run)


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


def end(exit_code: int | None = None) -> None:
    """Complete the run record: end time, duration, status and exit code.

    The first call counts. An exception on its way out (when called from a
    ``finally`` block) decides the status and exit code; else ``exit_code``
    does, or the last uncaught exception when called at exit.
    """
    if _run is None or "end" in _run.record:
        return
    _run.complete()
    error = sys.exc_info()[1]
    if error is None and exit_code is None:  # at exit: only the interpreter knows
        error = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    status = "failed"
    if isinstance(error, SystemExit):
        code = error.code
        exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        error = None
    elif isinstance(error, KeyboardInterrupt):
        exit_code, status = 130, "interrupted"  # as a shell reports SIGINT
    elif error is not None:
        exit_code = 1
    if exit_code == 0 or (exit_code is None and error is None):
        status = "finished"
    _run.record.update(
        end=_now(),
        duration_s=round(time.monotonic() - _run.started, 3),
        status=status,
        exit_code=exit_code,
        **_torch_info(),  # GPU names are known once CUDA is in use
    )
    if error is not None:
        _run.record["error"] = f"{type(error).__name__}: {error}"
    _write(_run)


def forget() -> None:
    """Drop the run record and added fields: the next set-up starts afresh."""
    global _run
    _run = None
    _fields.clear()


atexit.register(end)  # for entry points that do not call end() themselves


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
    if run.path is None:
        return
    text = json.dumps(run.record, indent=2, ensure_ascii=False, default=str)
    text = redact(text, spare_compiling=True)
    try:
        json.loads(text)
    except ValueError:  # a mask cut through an escape: mask value by value instead
        text = json.dumps(_masked(run.record), indent=2, ensure_ascii=False)
    temporary = run.path.with_name(f".{run.path.name}.{os.getpid()}")
    try:
        make_private_dirs(run.path.parent)  # deleted while the run went on?
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with open(fd, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        os.replace(temporary, run.path)
    except OSError as error:
        logger.warning("Cannot write the run record %s: %s", run.path, error)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return redact(str(value))
