"""The generated logging with the libraries ML projects train with.

Lightning's launchers, ``accelerate launch``, Hugging Face libraries that bring
their own handlers, and progress bars on a pseudo-terminal. Each test skips where
its library is not installed (CI installs them: requirements-ml.txt).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import sys
import termios
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import project_env, run

pytestmark = pytest.mark.slow

RECORD = re.compile(r"([A-Z]+) \S+ \S+ run=(\S+) rank=(\d+) \[[^]]+\] (.*)")

# A tiny Lightning fit. ddp re-runs this script for rank 1 (as __main__);
# ddp_spawn starts both ranks with multiprocessing spawn, which imports it again
# (as __mp_main__) without running it; ddp_fork forks them.
FIT = """\
import logging, sys
from my_ml_project.config import setup_logging

import lightning as L
import torch

log = logging.getLogger("fit")


class Model(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, index):
        log.info("rank %d step %d", self.global_rank, index)
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    setup_logging()
    data = torch.utils.data.TensorDataset(torch.randn(64, 4))
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy=sys.argv[1], max_steps=3,
        logger=False, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.fit(Model(), torch.utils.data.DataLoader(data, batch_size=4))
"""

ACCELERATE = """\
import logging
from my_ml_project.config import setup_logging

setup_logging()
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger

accelerator = Accelerator(cpu=True)
rank = accelerator.process_index
get_logger("train").info("rank %d: accelerate", rank, main_process_only=False)
logging.getLogger("train").info("rank %d: plain", rank)
accelerator.wait_for_everyone()
"""


def records(path: Path) -> list[re.Match[str]]:
    lines = path.read_text("utf-8").splitlines()
    found = [RECORD.fullmatch(line) for line in lines]
    assert all(found), f"{path.name}: a line is not a record"
    return [match for match in found if match]


def check_ranks(logs: Path, expected: dict[int, list[str]]) -> set[str]:
    """Each rank's messages once, in its own files; returns the run ids."""
    run_ids = set()
    names = {path.name for path in logs.iterdir()} - {"runs"}  # run records
    # error.rank1.log is made when rank 1 has an error, if it joined rank 0.
    assert names - {"error.rank1.log"} == {"info.log", "error.log", "info.rank1.log"}
    for rank, messages in expected.items():
        suffix = "" if rank == 0 else f".rank{rank}"
        found = records(logs / f"info{suffix}.log")
        assert {int(r[3]) for r in found} == {rank}, f"rank {rank}: other ranks' lines"
        counts = Counter(r[4] for r in found)
        assert {m: counts[m] for m in messages} == dict.fromkeys(messages, 1)
        run_ids |= {r[2] for r in found}
    return run_ids


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn", "ddp_fork"])
def test_lightning_ranks_log_once_in_their_own_files(
    cookies_session, tmp_path: Path, strategy: str
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("lightning")
    project = Path(cookies_session.bake().project_path)
    (tmp_path / "fit.py").write_text(FIT)
    logs = tmp_path / "logs"
    env = {**project_env(project), "MY_ML_PROJECT_LOG_DIR": str(logs)}
    env["OMP_NUM_THREADS"] = "1"

    ran = run(sys.executable, "fit.py", strategy, cwd=tmp_path, env=env, timeout=300)

    steps = {rank: [f"rank {rank} step {i}" for i in range(3)] for rank in (0, 1)}
    stopped = "`Trainer.fit` stopped: `max_steps=3` reached."
    run_ids = check_ranks(logs, {0: [*steps[0], stopped], 1: steps[1]})
    assert len(run_ids) == 1, f"one job, one run id: {run_ids}"
    console = ran.stderr.splitlines()
    assert Counter(console)[stopped] == 1  # Lightning's own line, once
    assert "rank 0 step 0" in console
    assert "rank 1 step 0" not in console  # INFO of other ranks: files only


def test_accelerate_launch_ranks_share_a_run_id(
    cookies_session, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("accelerate")
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert launcher, "accelerate is installed but its launcher is not"
    project = Path(cookies_session.bake().project_path)
    (tmp_path / "train.py").write_text(ACCELERATE)
    logs = tmp_path / "logs"
    env = {**project_env(project), "MY_ML_PROJECT_LOG_DIR": str(logs)}
    env["OMP_NUM_THREADS"] = "1"

    run(
        launcher, "launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "train.py", cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip

    expected = {
        rank: [f"[RANK {rank}] rank {rank}: accelerate", f"rank {rank}: plain"]
        for rank in (0, 1)
    }
    run_ids = check_ranks(logs, expected)
    assert len(run_ids) == 1, f"one launch, one run id: {run_ids}"


# Each library logs through its own logger: once on the console, once in the file.
HUGGING_FACE = """\
import importlib, sys
from my_ml_project.config import setup_logging

order, names = sys.argv[1], sys.argv[2:]
if order == "imported first":
    for name in names:
        importlib.import_module(name)
setup_logging()
for name in names:
    library = importlib.import_module(name)
    library.utils.logging.get_logger(f"{name}.x").warning("from %s", name)
"""


@pytest.mark.parametrize(
    "libraries", [("transformers", "datasets", "huggingface_hub"), ("diffusers",)]
)
@pytest.mark.parametrize("order", ["imported first", "imported after setup"])
def test_hugging_face_records_once(
    cookies_session, tmp_path: Path, order: str, libraries: tuple[str, ...]
) -> None:  # type: ignore[no-untyped-def]
    for name in libraries:
        pytest.importorskip(name)
    project = Path(cookies_session.bake().project_path)
    (tmp_path / "hf.py").write_text(HUGGING_FACE)
    logs = tmp_path / "logs"
    env = {**project_env(project), "MY_ML_PROJECT_LOG_DIR": str(logs), "CI": "1"}

    ran = run(sys.executable, "hf.py", order, *libraries, cwd=tmp_path, env=env)

    expected = [f"from {name}" for name in libraries]
    console = Counter(ran.stderr.splitlines())
    assert {m: console[m] for m in expected} == dict.fromkeys(expected, 1)
    in_file = Counter(r[4] for r in records(logs / "info.log"))
    assert {m: in_file[m] for m in expected} == dict.fromkeys(expected, 1)


# Progress bars that log as they go: each log line must end up whole, on a
# row of its own, once; the bar drawn again below.
BARS = {
    "tqdm": """\
from tqdm import tqdm
for step in tqdm(range(20), desc="Epoch 0"):
    time.sleep(0.02)
    if step in (5, 15):
        log.warning("LOGLINE step=%d", step)
""",
    "rich.progress": """\
from rich.progress import track
for step in track(range(20), description="Epoch 0"):
    time.sleep(0.02)
    if step in (5, 15):
        log.warning("LOGLINE step=%d", step)
""",
}
LIGHTNING_BAR = """\
import lightning as L, torch
from lightning.pytorch.callbacks import {bar}

class Model(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
    def training_step(self, batch, index):
        time.sleep(0.02)
        if index in (5, 15):
            log.warning("LOGLINE step=%d", index)
        return self.layer(batch[0]).pow(2).mean()
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

data = torch.utils.data.TensorDataset(torch.randn(80, 4))
L.Trainer(
    accelerator="cpu", devices=1, max_epochs=1, callbacks=[{bar}(refresh_rate=1)],
    logger=False, enable_checkpointing=False, enable_model_summary=False,
).fit(Model(), torch.utils.data.DataLoader(data, batch_size=4))
"""
BARS["lightning-tqdm"] = LIGHTNING_BAR.format(bar="TQDMProgressBar")
BARS["lightning-rich"] = LIGHTNING_BAR.format(bar="RichProgressBar")
NEEDS = {
    "tqdm": ["tqdm"],
    "rich.progress": ["rich"],
    "lightning-tqdm": ["lightning", "tqdm"],
    "lightning-rich": ["lightning", "rich"],
}
ROWS, COLUMNS = 30, 100


def on_terminal(argv: list[str], cwd: Path, env: dict[str, str]) -> bytes:
    """Run ``argv`` on a pseudo-terminal of ROWS x COLUMNS; its output."""
    pid, fd = pty.fork()
    if pid == 0:  # a new pty's window is 0x0, and tqdm then draws nothing
        try:
            winsize = struct.pack("HHHH", ROWS, COLUMNS, 0, 0)
            fcntl.ioctl(0, termios.TIOCSWINSZ, winsize)
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    chunks, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    output = b"".join(chunks)
    assert os.waitstatus_to_exitcode(status) == 0, output.decode(errors="replace")
    return output


def screen(output: bytes) -> list[str]:
    """The rows a terminal shows, scrolled-off ones included."""
    pyte = pytest.importorskip("pyte")
    terminal = pyte.HistoryScreen(COLUMNS, ROWS, history=5000, ratio=0.5)
    terminal.set_mode(pyte.modes.LNM)  # "\n" as the terminal driver sends it
    pyte.ByteStream(terminal).feed(output)
    history = [
        "".join(row[x].data for x in range(COLUMNS)) for row in terminal.history.top
    ]
    return [row.rstrip() for row in history + terminal.display]


@pytest.mark.parametrize("style", ["plain", "rich"])
@pytest.mark.parametrize("bar", sorted(BARS))
def test_log_lines_never_break_a_progress_bar(
    cookies, tmp_path: Path, bar: str, style: str
) -> None:  # type: ignore[no-untyped-def]
    for name in NEEDS[bar]:
        pytest.importorskip(name)
    pytest.importorskip("pyte")
    if style == "rich" and bar == "lightning-tqdm":
        pytest.skip("tqdm's bars: covered by plain tqdm in this style")
    result = cookies.bake(extra_context={"console_style": style})
    project = Path(result.project_path)
    script = "import logging, time\nfrom my_ml_project.config import setup_logging\n"
    script += "setup_logging()\nlog = logging.getLogger('bars')\n" + BARS[bar]
    (tmp_path / "bars.py").write_text(script)
    env = {**os.environ, **project_env(project), "TERM": "xterm-256color"}
    env |= {"MY_ML_PROJECT_LOG_DIR": str(tmp_path / "logs"), "OMP_NUM_THREADS": "1"}
    env |= {"COLUMNS": str(COLUMNS), "LINES": str(ROWS)}

    rows = screen(on_terminal([sys.executable, "bars.py"], tmp_path, env))

    logged = [row for row in rows if "LOGLINE" in row]
    expected = ["LOGLINE step=5", "LOGLINE step=15"]
    # Rich's console shows a time and the level before the message.
    whole = [re.sub(r"^.*?(LOGLINE step=\d+).*$", r"\1", row) for row in logged]
    assert whole == expected, "\n".join(rows)
    for row in logged:
        assert "Epoch" not in row and "%" not in row, f"a bar in a log row: {row!r}"
    if style == "plain":
        assert logged == expected, "\n".join(rows)
    assert any("Epoch" in row for row in rows[rows.index(logged[-1]) :])
