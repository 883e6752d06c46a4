"""torchrun with 4 CPU ranks (gloo): each rank's records, once, in its own files."""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import project_env, run

RECORD = re.compile(r"([A-Z]+) \S+ \S+ run=(\S+) rank=(\d+) \[[^]]+\] (.*)")


@pytest.mark.slow
def test_torchrun_example_logs_every_rank_once(cookies_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torch is installed but torchrun is not"
    result = cookies_session.bake()
    project = Path(result.project_path)
    logs = tmp_path / "logs"

    ran = run(
        torchrun,
        "--standalone",
        "--nproc_per_node=4",
        "examples/ddp.py",
        "--epochs",
        "2",
        cwd=project,
        env={**project_env(project), "MY_ML_PROJECT_LOG_DIR": str(logs)},
        timeout=600,
    )

    run_ids = set()
    for rank in range(4):
        suffix = "" if rank == 0 else f".rank{rank}"
        records = [
            RECORD.fullmatch(line)
            for line in (logs / f"info{suffix}.log").read_text().splitlines()
        ]
        assert all(records), f"rank {rank}: a line is not a record"
        assert {int(r[3]) for r in records if r} == {rank}
        run_ids |= {r[2] for r in records if r}
        messages = Counter(r[4] for r in records if r)
        assert messages[f"rank {rank} of 4 joined the process group"] == 1
        assert messages[f"rank {rank} trains on CPU: no GPU found"] == 1
        epochs = sorted(
            m.split(" loss=")[0] for m in messages if m.startswith("epoch ")
        )
        assert epochs == ["epoch 1/2", "epoch 2/2"]
        assert all(messages[m] == 1 for m in messages if m.startswith("epoch "))
        workers = {m: n for m, n in messages.items() if m.startswith("data worker")}
        assert workers == {"data worker 0 started": 2, "data worker 1 started": 2}
        assert (logs / f"error{suffix}.log").read_text() == ""
    assert len(run_ids) == 1, "all ranks share the run id torchrun gives them"

    console = ran.stdout.splitlines() + ran.stderr.splitlines()
    for rank in (1, 2, 3):
        assert f"rank {rank} trains on CPU: no GPU found" in console  # warnings: shown
        assert f"rank {rank} of 4 joined the process group" not in console  # info: not
    assert "rank 0 of 4 joined the process group" in console
