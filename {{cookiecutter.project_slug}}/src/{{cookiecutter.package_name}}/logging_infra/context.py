"""Who is logging: the run and the process's rank, added to every record."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping

# torchrun, accelerate and DeepSpeed set RANK and WORLD_SIZE; SLURM its own names.
RANK_VARIABLES = ("RANK", "SLURM_PROCID")
WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "SLURM_NTASKS")
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
    rank = _whole_number(environ, RANK_VARIABLES, notes)
    world_size = max(_whole_number(environ, WORLD_SIZE_VARIABLES, notes), rank + 1)
    return RunContext(
        run_id=_run_id(environ, run_id_variable, notes),
        rank=rank,
        world_size=world_size,
        host=_host_name(),
    )


def _whole_number(
    environ: Mapping[str, str], names: tuple[str, ...], notes: list[str]
) -> int:
    for name in names:
        value = environ.get(name, "").strip()
        if not value:
            continue
        if _RANK.fullmatch(value):
            return int(value)
        shown = value if len(value) <= 40 else f"{value[:40]}..."
        notes.append(f"{name}={shown!r} is not a whole number below 10**6; using 0")
        return 0
    return 0


def _run_id(environ: Mapping[str, str], run_id_variable: str, notes: list[str]) -> str:
    for name in (run_id_variable, *JOB_ID_VARIABLES):
        value = environ.get(name, "").strip()
        if value and value != "none":  # torchrun's placeholder when no id is given
            # Made safe the same way on every rank, so the ranks still agree.
            safe = _UNSAFE.sub("_", value)[:MAX_RUN_ID]
            if safe != value:
                notes.append(f"{name}={value[:80]!r} is not a plain word; using {safe}")
            return safe
    return new_run_id()


def new_run_id() -> str:
    """An id such as 20261127-130248-713-a1b2c3: sorts by start time, to the
    millisecond; the random part keeps jobs started in the same one apart."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}-{int(now % 1 * 1000):03d}-{os.urandom(3).hex()}"


def _host_name() -> str:
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket  # Windows; socket is slow to import, so only there

    return socket.gethostname()


class ContextFilter(logging.Filter):
    """Sets run_id, rank and host on every record: ``extra`` cannot forge them."""

    def __init__(self, run_id: str, rank: int, host: str) -> None:
        super().__init__()
        self.context = {"run_id": run_id, "rank": rank, "host": host}

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.update(self.context)
        return True
