{%- set layout = "per_run" if cookiecutter.log_layout == "per_run" else "shared" -%}
"""log_metrics(){{ {"none": ": metrics as records in the log files", "mlflow": " with MLflow: the embedded store, a real server, one that is down", "tensorboard": " with TensorBoard: event files read back by its own reader"}[cookiecutter.tracker] }}."""

from __future__ import annotations

import json
{%- if cookiecutter.tracker == "none" %}
import logging
{%- endif %}
{%- if cookiecutter.tracker == "mlflow" %}
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
{%- else %}
import subprocess
from collections.abc import Callable
{%- endif %}
from pathlib import Path
{%- if cookiecutter.tracker == "mlflow" %}
from typing import Any
{%- endif %}
{%- if cookiecutter.tracker != "none" %}

import pytest
{%- endif %}

from {{ cookiecutter.package_name }} import config

RunPython = Callable[..., subprocess.CompletedProcess[str]]
PACKAGE = "{{ cookiecutter.package_name }}"
{%- if cookiecutter.tracker == "mlflow" %}
mlflow_client = pytest.importorskip("mlflow.tracking")
# MLflow's own store, at its first use, warns of an SQLAlchemy option it uses.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)
{%- elif cookiecutter.tracker == "tensorboard" %}
pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator"
)
{%- endif %}


def run_dir(logs: Path) -> Path:
    """Where the last run's files are."""
{%- if layout == "per_run" %}
    return (logs / "latest").resolve()
{%- else %}
    return logs
{%- endif %}


def run_record(logs: Path, run_id: str) -> dict[str, object]:
{%- if layout == "per_run" %}
    path = logs / run_id / "run.json"
{%- else %}
    path = logs / "runs" / f"{run_id}.json"
{%- endif %}
    record: dict[str, object] = json.loads(path.read_text("utf-8"))
    return record


def last_run_id(output: str) -> str:
    """The run id from the console's "Run <id> finished in ..." line."""
    ends = [line.split()[1] for line in output.splitlines() if " finished in " in line]
    return ends[-1]


def demo(run_python: RunPython, tmp_path: Path, *args: str, **env: str) -> str:
    """Run the demo with its logs in tmp_path/logs; return its console output."""
    environ = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "INFO"}
    result = run_python("-m", PACKAGE, *args, env={**environ, **env}, timeout=120)
    assert result.returncode == (1 if "--lr" in args else 0), result.stderr
    return result.stderr
{%- if cookiecutter.tracker == "none" %}


def test_metrics_are_one_record_each_in_the_files(
    tmp_path: Path, run_python: RunPython
) -> None:
    console = demo(run_python, tmp_path, "--epochs", "3")

    assert "Metrics at step" not in console  # the console shows the epoch lines
    info = (run_dir(tmp_path / "logs") / "info.log").read_text("utf-8").splitlines()
    metrics = [line for line in info if "Metrics at step " in line]
    file_level = config.LOGGING_CONFIG["handlers"]["info"]["level"]
    if logging.getLevelName(file_level) > logging.INFO:  # the bake keeps INFO out
        assert metrics == []
        return
    assert len(metrics) == 3
{%- if cookiecutter.log_format == "json" %}
    records = [json.loads(line) for line in metrics]
    assert [record["step"] for record in records] == [1, 2, 3]
    assert all(
        set(record["metrics"]) == {"train_loss", "valid_loss"} for record in records
    )
    assert all(record["file"] == "train.py" for record in records)
{%- else %}
    for step, line in enumerate(metrics, start=1):
        assert "[train.py:train:" in line, line
        assert f"Metrics at step {step}: train_loss=" in line, line
        assert " valid_loss=" in line, line
{%- endif %}
    assert not list(run_dir(tmp_path / "logs").glob("*metrics.jsonl"))
{%- elif cookiecutter.tracker == "mlflow" %}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module: MLflow makes its tables once (seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def read_back(uri: str, run_id: str) -> tuple[Any, Any]:
    """The MLflow run named after our run id, and a client of its store."""
    client = mlflow_client.MlflowClient(uri)
    experiment = client.get_experiment_by_name(PACKAGE)
    [run] = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.run_id = '{run_id}'"
    )
    return run, client


def check_run(uri: str, logs: Path, run_id: str, status: str) -> None:
    """The MLflow run holds what run.json, metrics.jsonl and the logs hold."""
    record = run_record(logs, run_id)
    run, client = read_back(uri, run_id)
    assert run.info.run_name == run_id
    assert run.info.run_id == record["mlflow_run_id"]
    assert run.info.status == status
    assert record["metrics_unsent"] == 0 and record["tracker"] == "MLflow"
    args = record["args"]
    assert isinstance(args, dict)
    assert run.data.params == {f"args.{k}": json.dumps(v) for k, v in args.items()}
    jsonl = Path(str(record["metrics_file"])).read_text("utf-8").splitlines()
    expected = [json.loads(line) for line in jsonl]
    history = client.get_metric_history(run.info.run_id, "valid_loss")
    assert [(m.step, m.value) for m in history] == [
        (line["step"], line["values"]["valid_loss"]) for line in expected
    ]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"run.json", "metrics.jsonl", "logs"} <= artifacts
    folder = Path(client.download_artifacts(run.info.run_id, "logs", str(logs.parent)))
    attached = (folder / "info.log").read_text("utf-8").splitlines()
{%- if layout == "per_run" %}
    source = logs / run_id / "info.log"  # the run's own directory: all of it
{%- else %}
    source = logs / "info.log"  # shared with the other runs: only this one's lines
{%- endif %}
    lines = source.read_text("utf-8").splitlines()
{%- if cookiecutter.log_format == "json" %}
    assert attached == [line for line in lines if json.loads(line)["run_id"] == run_id]
{%- else %}
    assert attached == [line for line in lines if f" run={run_id} " in line]
{%- endif %}
    assert f"Run {run_id} " in attached[-1]  # up to the run's end


def test_a_run_in_the_local_store_holds_params_metrics_logs_and_status(
    tmp_path: Path, run_python: RunPython, store: str
) -> None:
    """config.MLFLOW_URI: MLflow's own SQLite store, no server. Two runs: the
    second one's attached logs hold only its own lines (shared layout)."""
    script = tmp_path / "run.py"
    script.write_text(
        f"import sys\nfrom {PACKAGE} import config, main\n"
        f"config.MLFLOW_URI = {store!r}\n"
        "if sys.argv[1] == 'fail':\n"
        "    config.setup_logging()\n"
        "    try:\n"
        "        config.log_metrics(1, loss=2.5)\n"
        "        raise RuntimeError('out of memory')\n"
        "    finally:\n"
        "        config.log_run_end(1)\n"
        "raise SystemExit(main.main(['--epochs', '3']))\n"
    )
    environ = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "INFO"}
    env = {**environ, "MLFLOW_TRACKING_URI": ""}
    ids = []
    for how in ("fail", "train"):  # a failed run, then one that finishes
        result = run_python(str(script), how, env=env, timeout=120)
        assert result.returncode == (1 if how == "fail" else 0), result.stderr
        assert "MLflow" not in result.stderr, result.stderr
        ids.append(result.stderr.split()[1])
    check_run(store, tmp_path / "logs", ids[1], "FINISHED")
    failed, _ = read_back(store, ids[0])
    assert failed.info.status == "FAILED"
    assert run_record(tmp_path / "logs", ids[0])["status"] == "failed"


def test_a_run_opened_for_lightning_is_tracked_even_if_it_fails_at_once(
    tmp_path: Path, run_python: RunPython, store: str
) -> None:
    """mlflow_run_id() opens the MLflow run before any metric: a run that fails
    before its first one still has its MLflow run, FAILED, with its logs."""
    script = tmp_path / "run.py"
    script.write_text(
        f"from {PACKAGE} import config\n"
        f"from {PACKAGE}.logging_infra import tracking\n"
        f"config.MLFLOW_URI = {store!r}\n"
        "config.setup_logging()\n"
        "print(tracking.mlflow_run_id())\n"
        "print(tracking.mlflow_run_id())  # the same run, asked again\n"
        "config.log_run_end(1)\n"
    )
    environ = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "INFO"}
    env = {**environ, "MLFLOW_TRACKING_URI": ""}
    result = run_python(str(script), env=env, timeout=120)

    assert result.returncode == 0, result.stderr
    first, again = result.stdout.split()
    assert first == again
    run_id = result.stderr.split()[1]
    run, client = read_back(store, run_id)
    assert run.info.run_id == first
    assert run_record(tmp_path / "logs", run_id)["mlflow_run_id"] == first
    assert run.info.status == "FAILED"
    assert "run.json" in {a.path for a in client.list_artifacts(first)}


def test_a_tracker_that_is_down_costs_one_warning_and_no_metric(
    tmp_path: Path, run_python: RunPython
) -> None:
    """A closed port, with a password in the URI: the run goes on, metrics.jsonl
    has every value, run.json counts them unsent, the password shows nowhere."""
    uri = f"http://alice:pa55-w0rd-x@127.0.0.1:{free_port()}"
    console = demo(run_python, tmp_path, "--epochs", "3", MLFLOW_TRACKING_URI=uri)

    warnings = [line for line in console.splitlines() if "MLflow" in line]
    assert len(warnings) == 1, console
    assert "ConnectionRefusedError" in warnings[0]
    assert "http://alice:***@127.0.0.1:" in warnings[0]
    run_id = last_run_id(console)
    record = run_record(tmp_path / "logs", run_id)
    assert record["status"] == "finished"
    assert (record["metrics_logged"], record["metrics_unsent"]) == (6, 6)
    assert record["mlflow_run_id"] is None
    jsonl = Path(str(record["metrics_file"])).read_text("utf-8").splitlines()
    assert [json.loads(line)["step"] for line in jsonl] == [1, 2, 3]
    info = (run_dir(tmp_path / "logs") / "info.log").read_text("utf-8")
    assert info.count("MLflow (http://alice:***@127.0.0.1:") == 1
    everything = [console, info, json.dumps(record)]
    assert not any("pa55-w0rd-x" in text for text in everything)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that takes connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for sock in [*held, server]:
        sock.close()


def test_a_tracker_that_does_not_answer_delays_the_end_only_so_long(
    tmp_path: Path, run_python: RunPython, silent_server: str
) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        f"from {PACKAGE} import config, main\n"
        f"from {PACKAGE}.logging_infra import tracking\n"
        "tracking.END_SECONDS = 3.0\n"
        "raise SystemExit(main.main(['--epochs', '3']))\n"
    )
    environ = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "INFO"}
    started = time.monotonic()
    result = run_python(
        str(script), env={**environ, "MLFLOW_TRACKING_URI": silent_server}
    )
    took = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert took < 30, took  # its client alone would wait 120 s per try
    warnings = [line for line in result.stderr.splitlines() if "MLflow" in line]
    assert len(warnings) == 1 and "did not answer within 3s" in warnings[0], warnings
    record = run_record(tmp_path / "logs", last_run_id(result.stderr))
    assert (record["metrics_logged"], record["metrics_unsent"]) == (6, 6)
    jsonl = Path(str(record["metrics_file"])).read_text("utf-8").splitlines()
    assert [json.loads(line)["step"] for line in jsonl] == [1, 2, 3]


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """``mlflow server`` on a free port of 127.0.0.1, stopped after the test."""
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", "1"),
            *("--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"),
            *("--artifacts-destination", str(tmp_path / "server-artifacts")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "mlflow server ended"
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "mlflow server did not answer"
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


@pytest.mark.slow
def test_a_run_on_a_real_mlflow_server(
    tmp_path: Path, run_python: RunPython, mlflow_server: str
) -> None:
    demo(run_python, tmp_path, "--epochs", "2", MLFLOW_TRACKING_URI=mlflow_server)
    console = demo(
        run_python, tmp_path, "--epochs", "3", MLFLOW_TRACKING_URI=mlflow_server
    )

    assert "MLflow" not in console, console
    check_run(mlflow_server, tmp_path / "logs", last_run_id(console), "FINISHED")
{%- else %}


def scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """What ``tensorboard --logdir`` reads in ``directory``, with its own reader."""
    events = event_accumulator.EventAccumulator(str(directory))
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def test_event_files_hold_the_metrics_of_the_run(
    tmp_path: Path, run_python: RunPython
) -> None:
    console = demo(run_python, tmp_path, "--epochs", "3")

    run_id = last_run_id(console)
    record = run_record(tmp_path / "logs", run_id)
{%- if layout == "per_run" %}
    expected = tmp_path / "logs" / run_id  # beside its log files
{%- else %}
    expected = tmp_path / "logs" / "tensorboard" / run_id
{%- endif %}
    assert Path(str(record["tensorboard_dir"])) == expected
    assert (record["metrics_logged"], record["metrics_unsent"]) == (6, 0)
    jsonl = Path(str(record["metrics_file"])).read_text("utf-8").splitlines()
    lines = [json.loads(line) for line in jsonl]
    read = scalars(expected)
    assert sorted(read) == ["train_loss", "valid_loss"]
    for name, points in read.items():
        wanted = [(line["step"], line["values"][name]) for line in lines]
        assert [step for step, _ in points] == [step for step, _ in wanted] == [1, 2, 3]
        assert [value for _, value in points] == pytest.approx(
            [value for _, value in wanted], rel=1e-6
        )  # float32 in event files


def test_tensorboard_missing_costs_one_warning_and_no_metric(
    tmp_path: Path, run_python: RunPython
) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "sys.modules['tensorboardX'] = None  # as if not installed\n"
        f"from {PACKAGE} import main\n"
        "raise SystemExit(main.main(['--epochs', '3']))\n"
    )
    environ = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "INFO"}
    result = run_python(str(script), env=environ)
    assert result.returncode == 0, result.stderr
    console = result.stderr

    warnings = [line for line in console.splitlines() if "TensorBoard" in line]
    assert len(warnings) == 1 and "ModuleNotFoundError" in warnings[0], console
    record = run_record(tmp_path / "logs", last_run_id(console))
    assert record["status"] == "finished"
    assert (record["metrics_logged"], record["metrics_unsent"]) == (6, 6)
    jsonl = Path(str(record["metrics_file"])).read_text("utf-8").splitlines()
    assert [json.loads(line)["step"] for line in jsonl] == [1, 2, 3]
{%- if layout == "per_run" %}


def test_old_run_directories_go_with_their_metrics_and_event_files(
    tmp_path: Path, run_python: RunPython
) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        f"from {PACKAGE} import config, main\n"
        "config.RUN_DIRS_KEPT = 1\n"
        "raise SystemExit(main.main(['--epochs', '2']))\n"
    )
    environ = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "INFO"}
    first = run_python(str(script), env=environ)
    second = run_python(str(script), env=environ)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "kept" not in second.stderr, second.stderr
    runs = sorted(path.name for path in (tmp_path / "logs").iterdir())
    assert runs == sorted([last_run_id(second.stderr), "latest"])
{%- endif %}
{%- endif %}
{%- if cookiecutter.tracker != "none" %}


def test_a_run_without_metrics_is_left_alone(
    tmp_path: Path, run_python: RunPython
) -> None:
    """No tracker run, no wait at the end, run.json as without a tracker."""
    lines = [
        f"from {PACKAGE} import config",
{%- if cookiecutter.tracker == "mlflow" %}
        f"config.MLFLOW_URI = 'sqlite:///{tmp_path / 'untouched.db'}'",
{%- endif %}
        "config.setup_logging()",
        "config.log_run_end(0)",
    ]
    script = tmp_path / "run.py"
    script.write_text("\n".join(lines) + "\n")
    environ = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "INFO"}
    result = run_python(str(script), env={**environ, "MLFLOW_TRACKING_URI": ""})

    assert result.returncode == 0, result.stderr
    assert "{{ "MLflow" if cookiecutter.tracker == "mlflow" else "TensorBoard" }}" not in result.stderr, result.stderr
    record = run_record(tmp_path / "logs", last_run_id(result.stderr))
    assert "tracker" not in record and "metrics_logged" not in record
{%- if cookiecutter.tracker == "mlflow" %}
    assert not (tmp_path / "untouched.db").exists()
{%- else %}
    assert not list((tmp_path / "logs").rglob("events.out.tfevents.*"))
{%- endif %}


LIGHTNING_SCRIPT = """\
{% if cookiecutter.tracker == "mlflow" -%}
import os
import sys

{% endif -%}
import torch
from lightning.pytorch import LightningModule, Trainer
{%- if cookiecutter.tracker == "mlflow" %}
from lightning.pytorch.loggers import MLFlowLogger
{%- else %}
from lightning.pytorch.loggers import TensorBoardLogger
{%- endif %}

from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.config import log_metrics, run_context, setup_logging
{%- if cookiecutter.tracker == "mlflow" %}
from {{ cookiecutter.package_name }}.logging_infra import tracking

config.MLFLOW_URI = sys.argv[1]
{%- endif %}


class Line(LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, index):
        loss = self.layer(batch).pow(2).mean()
        self.log("lightning_loss", loss)
        return loss

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.randn(8, 1), batch_size=2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


log_dir = setup_logging()
run_id = run_context().run_id
{%- if cookiecutter.tracker == "mlflow" %}
lightning_logger = MLFlowLogger(
    run_id=tracking.mlflow_run_id(),
    tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or config.MLFLOW_URI,
)
{%- elif cookiecutter.log_layout == "per_run" %}
lightning_logger = TensorBoardLogger(log_dir.parent, name="", version=log_dir.name)
{%- else %}
lightning_logger = TensorBoardLogger(log_dir / "tensorboard", name="", version=run_id)
{%- endif %}
trainer = Trainer(
    logger=lightning_logger,
    max_epochs=1,
    log_every_n_steps=1,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
trainer.fit(Line())
log_metrics(1, valid_loss=0.5)
config.log_run_end(0)
print(run_id)
"""


@pytest.mark.slow  # importing Lightning and torch: 10 s and more
def test_lightning_s_logger_meets_the_run_as_the_docs_show(
    tmp_path: Path, run_python: RunPython{{ ", store: str" if cookiecutter.tracker == "mlflow" }}
) -> None:
    pytest.importorskip("lightning")
    script = tmp_path / "lightning_run.py"
    script.write_text(LIGHTNING_SCRIPT)
    environ = {config.LOG_DIR_ENV: str(tmp_path / "logs"), config.LOG_LEVEL_ENV: "INFO"}
{%- if cookiecutter.tracker == "mlflow" %}
    env = {**environ, "MLFLOW_TRACKING_URI": ""}
    result = run_python(str(script), store, env=env, timeout=180)
{%- else %}
    result = run_python(str(script), env=environ, timeout=180)
{%- endif %}

    assert result.returncode == 0, result.stderr
    run_id = result.stdout.split()[-1]
{%- if cookiecutter.tracker == "mlflow" %}
    client = mlflow_client.MlflowClient(store)
    experiment = client.get_experiment_by_name(PACKAGE)
    [run] = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.run_id = '{run_id}'"
    )  # one MLflow run: Lightning's metrics beside ours
    assert run.info.run_name == run_id
    assert {"lightning_loss", "valid_loss"} <= set(run.data.metrics)
    history = client.get_metric_history(run.info.run_id, "lightning_loss")
    assert len(history) == 4  # 8 samples, batches of 2
    assert run.info.status == "FINISHED"
    assert run.info.run_id == run_record(tmp_path / "logs", run_id)["mlflow_run_id"]
{%- else %}
    record = run_record(tmp_path / "logs", run_id)
    read = scalars(Path(str(record["tensorboard_dir"])))  # one run: both sides
    assert {"lightning_loss", "valid_loss"} <= set(read)
    assert len(read["lightning_loss"]) == 4  # 8 samples, batches of 2
{%- endif %}
{%- endif %}
