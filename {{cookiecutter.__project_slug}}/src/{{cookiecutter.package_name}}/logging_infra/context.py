"""Who is logging: the run and the process's rank, added to every record."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping

# The first one set gives the rank: torchrun, accelerate and DeepSpeed set RANK;
# Lightning's launchers LOCAL_RANK on each node (with NODE_RANK), SLURM, Open MPI
# and MPICH their own names.
RANK_VARIABLES: tuple[str, ...] = ("RANK", "LOCAL_RANK", "SLURM_PROCID")
RANK_VARIABLES += ("OMPI_COMM_WORLD_RANK", "PMI_RANK")
WORLD_SIZE_VARIABLES: tuple[str, ...] = ("WORLD_SIZE", "SLURM_NTASKS")
WORLD_SIZE_VARIABLES += ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
# Shared by every process of one job, so that all ranks log the same run id.
JOB_ID_VARIABLES = ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID")
# ASCII digits only ("²" is a digit to str.isdigit(), not to int()), and few:
# int() of thousands of digits is slow, or refused.
_RANK = re.compile("[0-9]{1,6}")
# A run id goes into every line: no space, no control character, no line break.
_UNSAFE = re.compile(r"[^\w.:@+-]", re.ASCII)
MAX_RUN_ID = 128


class RunContext:
    """The run this process belongs to, and its place in it."""

    def __init__(self, run_id: str, rank: int, world_size: int, host: str) -> None:
        self.run_id, self.rank, self.world_size, self.host = (
            run_id,
            rank,
            world_size,
            host,
        )


def detect(
    environ: Mapping[str, str], run_id_variable: str, notes: list[str]
) -> RunContext:
    """Read the run id and rank from the environment; problems go to ``notes``."""
    rank = find_rank(environ, notes)
    _set_rank(rank)
    world_size = _whole_number(environ, WORLD_SIZE_VARIABLES, notes) or 0
    return RunContext(
        run_id=_run_id(environ, run_id_variable, notes),
        rank=rank or 0,
        world_size=max(world_size, (rank or 0) + 1),
        host=host_name(),
    )


def find_rank(
    environ: Mapping[str, str], notes: list[str], local: bool = False
) -> int | None:
    """The rank that a launcher gave this process, or None if none did.

    LOCAL_RANK counts only with NODE_RANK (Lightning's subprocess launcher), or
    with ``local``: in a process that the run's owner started.
    """
    names = RANK_VARIABLES
    if not local and "NODE_RANK" not in environ:
        names = tuple(name for name in names if name != "LOCAL_RANK")
    rank = _whole_number(environ, names, notes)
    if rank is None or "RANK" in environ or "LOCAL_RANK" not in environ:
        return rank
    # Lightning's launcher: LOCAL_RANK counts the processes of node NODE_RANK.
    node = _whole_number(environ, ("NODE_RANK",), notes) or 0
    per_node = _whole_number(environ, ("LOCAL_WORLD_SIZE",), notes)
    if node and per_node is None:
        notes.append(
            f"NODE_RANK={node} without RANK or LOCAL_WORLD_SIZE: cannot tell this "
            "process's rank; set RANK, or launch with torchrun or SLURM"
        )
    return node * (per_node or 0) + rank


def _whole_number(
    environ: Mapping[str, str], names: tuple[str, ...], notes: list[str]
) -> int | None:
    """The first of ``names`` that is set, as a number; None if none is set."""
    for name in names:
        value = environ.get(name, "").strip()
        if not value:
            continue
        if _RANK.fullmatch(value):
            return int(value)
        shown = value if len(value) <= 40 else f"{value[:40]}..."
        notes.append(f"{name}={shown!r} is not a whole number below 10**6; using 0")
        return 0
    return None


def _run_id(environ: Mapping[str, str], run_id_variable: str, notes: list[str]) -> str:
    for name in (run_id_variable, *JOB_ID_VARIABLES):
        value = environ.get(name, "").strip()
        if value and value != "none":  # torchrun's placeholder when no id is given
            if name == "SLURM_JOB_ID":
                value += _slurm_step(environ)
            # Made safe the same way on every rank, so the ranks still agree.
            safe = _UNSAFE.sub("_", value)[:MAX_RUN_ID]
            if safe != value:
                notes.append(f"{name}={value[:80]!r} is not a plain word; using {safe}")
            return safe
    nodes = _several_nodes(environ)
    if nodes and environ.get("LOCAL_RANK", "0").strip() in ("", "0"):  # once a node
        notes.append(
            f"This run spans several nodes ({nodes}), but nothing in the environment "
            "gives them one run id: each node names the run its own way, and their "
            "logs and run records land apart. Start torchrun with --rdzv-id=<id> "
            f"(e.g. --rdzv-id=$SLURM_JOB_ID), or export {run_id_variable}=<id> in "
            "the job script"
        )
    return _elastic_launch_id(environ) or new_run_id()


def _slurm_step(environ: Mapping[str, str]) -> str:
    """The job step (srun) and the requeue, if any: the steps of one job, and
    its attempts, are runs of their own."""
    step = environ.get("SLURM_STEP_ID", environ.get("SLURM_STEPID", "")).strip()
    restarts = environ.get("SLURM_RESTART_COUNT", "").strip()
    suffix = f".{step}" if step else ""
    if restarts not in ("", "0"):
        suffix += f".restart{restarts}"
    return suffix


def _several_nodes(environ: Mapping[str, str]) -> str | None:
    """What tells that this process's run spans several nodes, if anything."""

    def number(name: str) -> int:
        return _whole_number(environ, (name,), []) or 0

    for name, least in (("GROUP_WORLD_SIZE", 2), ("NNODES", 2), ("NODE_RANK", 1)):
        if number(name) >= least:
            return f"{name}={number(name)}"
    world, local = number("WORLD_SIZE"), number("LOCAL_WORLD_SIZE")
    if 0 < local < world:
        return f"WORLD_SIZE={world} > LOCAL_WORLD_SIZE={local}"
    return None


def _elastic_launch_id(environ: Mapping[str, str]) -> str | None:
    """A run id for the ranks of one ``accelerate launch`` (or torchrun without
    ``--rdzv-id``), whose TORCHELASTIC_RUN_ID is "none": the directory that the
    launcher made for this launch on this host is the same for all its ranks."""
    error_file = environ.get("TORCHELASTIC_ERROR_FILE", "")
    # <launcher's directory>/<launch>/attempt_N/<rank>/error.json
    parts = error_file.replace("\\", "/").split("/")
    if len(parts) < 5 or not parts[-3].startswith("attempt_"):
        return None
    try:  # changed only when the launch was added to it
        started = os.stat("/".join(parts[:-4]) or "/").st_mtime
    except OSError:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    # <run id>_<random part of mkdtemp>, whose letters include "_"
    launch = _UNSAFE.sub("_", parts[-4].partition("_")[2])[:16].strip("_")
    if not launch:
        import zlib  # a launch directory named otherwise: its path, in short

        launch = f"{zlib.crc32('/'.join(parts[:-3]).encode()):08x}"
    return f"{stamp}-{launch}"


def new_run_id() -> str:
    """An id such as 20261127-130248-713-a1b2c3: sorts by start time, to the
    millisecond; the random part keeps jobs started in the same one apart."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}-{int(now % 1 * 1000):03d}-{os.urandom(3).hex()}"


def host_name() -> str:
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket  # Windows; socket is slow to import, so only there

    return socket.gethostname()


# A process started by the run's owner without a rank (Lightning's ddp_spawn
# and ddp_fork set LOCAL_RANK in it after it has set up logging) looks for its
# rank as it logs, until a launcher variable gives one.
_rank = 0
_rank_pending = False
_rank_unknown = False  # no launcher variable named this process's rank
# How many variables the environment had at the last look: a rank arrives as a
# new one, and reading them for every record was a third of a worker's time.
_variables_seen = -1


def _set_rank(rank: int | None) -> None:
    global _rank, _rank_pending, _rank_unknown
    _rank, _rank_unknown, _rank_pending = rank or 0, rank is None, False


def rank_is_known() -> bool:
    """Did a launcher variable give this process's rank?"""
    return not _rank_unknown


def watch_rank() -> None:
    """In a process that joined a run: if no variable gave its rank, look for
    one as it logs."""
    global _rank_pending, _variables_seen
    _rank_pending, _variables_seen = _rank_unknown, -1


def process_rank() -> int:
    """This process's rank, as far as it is known now."""
    global _rank, _rank_pending, _variables_seen
    if _rank_pending and len(os.environ) != _variables_seen:
        _variables_seen = len(os.environ)
        rank = find_rank(os.environ, [], local=True)
        if rank is not None:
            _rank, _rank_pending = rank, False
    return _rank


def _after_fork_in_child() -> None:
    global _rank_pending, _variables_seen
    # A child of the owner may get a rank later.
    _rank_pending, _variables_seen = _rank_unknown, -1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class ContextFilter(logging.Filter):
    """Sets run_id, rank and host on every record: ``extra`` cannot forge them."""

    def __init__(self, run_id: str, rank: int, host: str) -> None:
        super().__init__()
        self.context = {"run_id": run_id, "rank": rank, "host": host}

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.update(self.context)
        if _rank_pending or self.context["rank"] != _rank:
            record.rank = self.context["rank"] = process_rank()
        return True


class OtherRanksFilter(logging.Filter):
    """The console's threshold for ranks other than 0, in a process whose rank
    is learnt late."""

    def __init__(self, level: str) -> None:
        super().__init__()
        self.levelno = logging.getLevelName(level)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.levelno or process_rank() == 0
