{%- set backend = "_MLflow" if cookiecutter.tracker == "mlflow" else "_TensorBoard" -%}
"""Metrics for {{ "MLflow" if cookiecutter.tracker == "mlflow" else "TensorBoard" }}: ``config.log_metrics()`` queues them, a thread writes.

The call only puts the values in a queue. Every SEND_SECONDS a thread appends
what came to the run's ``metrics.jsonl``, then sends it, CHUNK values a call. Only the
process that writes the run record (rank 0) tracks; other processes' metrics
are dropped. A tracker that fails or does not answer costs one warning, never
the run: the metrics stay in ``metrics.jsonl`` and run.json counts the unsent.
At the end the tracker gets the run's status{{ ", its log files and run.json" if cookiecutter.tracker == "mlflow" }}.
It opens at the first metrics: a run that logs none is left alone.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import queue
{%- if cookiecutter.tracker == "mlflow" %}
import re
{%- endif %}
import threading
import time
from pathlib import Path

from . import {{ "configure, " if cookiecutter.tracker == "mlflow" }}runs, writer
from .files import FILE_MODE{{ ", make_private_dirs" if cookiecutter.tracker == "tensorboard" }}
from .redact import redact{{ ", secret_field" if cookiecutter.tracker == "mlflow" }}

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Batch = list[tuple[int, float, dict[str, float]]]

SEND_SECONDS = 2.0  # between batches
END_SECONDS = 30.0  # the most a run's end waits for the tracker (SIGTERM: 2 s)
METRICS_FILE = "metrics.jsonl"
CHUNK = 1000  # values a call to the tracker
MAX_WAITING = 100_000  # values sent late at most: the rest stays in metrics.jsonl
{%- if cookiecutter.tracker == "mlflow" %}
CONNECT_SECONDS = 5.0  # a server that does not answer: MLflow would retry for minutes
# MLflow's limits per call of log_batch(): 1,000 metrics, 100 params.
MAX_METRICS, MAX_PARAMS, MAX_PARAM_LENGTH = 1000, 100, 6000
# run.json's statuses as MLflow's: a run stopped by a signal or Ctrl+C is KILLED.
STATUSES = {"finished": "FINISHED", "interrupted": "KILLED", "terminated": "KILLED"}
_LOG_FILE = re.compile(r"\.log(\.[0-9]+)?$")  # info.log, info.rank1.log, info.log.1
{%- endif %}
logger = logging.getLogger(__name__)
{%- if cookiecutter.tracker == "mlflow" %}


class _MLflow:
    """One MLflow run per run: named after its id, add_run_info() as params."""

    name = "MLflow"

    def __init__(self, uri: str, experiment: str, run_id: str) -> None:
        self.uri, self.experiment, self.our_id = uri, experiment, run_id
        self.run_id = ""
        self.params: set[str] = set()

    def where(self) -> str:
        return redact(self.uri)

    def open(self) -> None:
        if self.uri.startswith(("http://", "https://")):
            _connect(self.uri)
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        if not os.environ.get("MLFLOW_LOGGING_LEVEL"):  # its INFO: database set-up
            logging.getLogger("mlflow").setLevel(logging.WARNING)
        self.metric, self.param = Metric, Param
        self.client = client = MlflowClient(self.uri)
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            experiment = found.experiment_id
        elif self.uri.startswith("sqlite:///"):  # the artifacts beside the store
            store = Path(self.uri.removeprefix("sqlite:///"))
            location = (store.parent / "mlartifacts").absolute().as_uri()
            experiment = client.create_experiment(self.experiment, location)
        else:  # a server keeps them where it is told to
            experiment = client.create_experiment(self.experiment)
        tags = {"run_id": self.our_id}
        run = client.create_run(experiment, run_name=self.our_id, tags=tags)
        self.run_id = run.info.run_id
        self.send_params()

    def send_params(self) -> None:
        """add_run_info()'s fields not sent yet, as params (``args.lr``, ...)."""
        new = {k: v for k, v in _flat(runs.fields()).items() if k not in self.params}
        params = [
            self.param(key, redact(value)[:MAX_PARAM_LENGTH])
            for key, value in new.items()
        ]
        for start in range(0, len(params), MAX_PARAMS):
            chunk = params[start : start + MAX_PARAMS]
            self.client.log_batch(self.run_id, params=chunk)
        self.params.update(new)

    def send(self, batch: Batch) -> None:
        metrics = [
            self.metric(key, value, int(when * 1000), step)
            for step, when, values in batch
            for key, value in values.items()
        ]
        for start in range(0, len(metrics), MAX_METRICS):
            chunk = metrics[start : start + MAX_METRICS]
            self.client.log_batch(self.run_id, metrics=chunk)

    def finish(self, record: dict[str, Any], files: dict[str, Path]) -> None:
        """Attach run.json, metrics.jsonl and the run's lines of the log files,
        then give the MLflow run run.json's status."""
        import shutil
        import tempfile

        self.send_params()
        with tempfile.TemporaryDirectory() as scratch:
            for name, path in files.items():  # as in a run's own directory
                shutil.copyfile(path, Path(scratch, name))
                self.client.log_artifact(self.run_id, str(Path(scratch, name)))
            for path in _this_runs_logs(record, Path(scratch)):
                self.client.log_artifact(self.run_id, str(path), "logs")
        status = STATUSES.get(record["status"], "FAILED")
        self.client.set_terminated(self.run_id, status)

    def fields(self) -> dict[str, Any]:
        return {"mlflow_run_id": self.run_id or None, "tracking_uri": self.where()}
{%- else %}


class _TensorBoard:
    """Event files in ``directory``, for ``tensorboard --logdir``."""

    name = "TensorBoard"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def where(self) -> str:
        return str(self.directory)

    def open(self) -> None:
        from tensorboardX import SummaryWriter

        make_private_dirs(self.directory)
        self.writer = SummaryWriter(str(self.directory), flush_secs=30)

    def send(self, batch: Batch) -> None:
        for step, when, values in batch:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step, walltime=when)
        self.writer.flush()

    def finish(self, record: dict[str, Any], files: dict[str, Path]) -> None:
        self.writer.add_text("status", record["status"])
        self.writer.close()

    def fields(self) -> dict[str, Any]:
        """Where the event files are; in a run's directory, their names too, so
        that set-up removes them with the run."""
        events = [path.name for path in self.directory.glob("events.out.tfevents.*")]
        return {"tensorboard_dir": self.where(), "tracker_files": events}
{%- endif %}


class _Tracker:
    """The thread that appends to metrics.jsonl and sends batches."""

    def __init__(self, backend: {{ backend }}, record: Path, metrics: Path) -> None:
        self.backend: {{ backend }} | None = backend  # None once it failed
        self.chosen, self.name = backend, backend.name
        self.record, self.file = record, metrics
        self.queue: queue.SimpleQueue[tuple[int, float, dict[str, float]]]
        self.queue = queue.SimpleQueue()
        self.pid = os.getpid()
        self.logged = self.sent = 0  # values, not calls
        self.called = self.opened = False
        self.waiting: collections.deque[tuple[int, float, dict[str, float]]]
        self.waiting = collections.deque()  # in metrics.jsonl, not yet sent
        self.waiting_values = 0
        self.file_lock = threading.Lock()
        self.wake, self.stopping = threading.Event(), False
        self.opened_or_failed = threading.Event()
        self.thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.wake.wait()  # the first metrics: a run without any is left alone
        self.wake.clear()
        if self.stopping and self.queue.empty():
            self.opened_or_failed.set()
            return
        try:
            self.chosen.open()
            self.opened = True
        except Exception as error:
            self.give_up(error)
        finally:
            self.opened_or_failed.set()
        while not self.stopping:
            self.wake.wait(SEND_SECONDS)
            self.send()
        self.send()  # what came while the last batch went

    def send(self) -> None:
        """Send what waits, CHUNK values a call; between calls, what came since
        goes to metrics.jsonl. Beyond MAX_WAITING values, the oldest go unsent."""
        self.wait_for(self.take())
        while self.waiting and self.backend is not None:
            chunk, size = [], 0
            while self.waiting and size < CHUNK:
                chunk.append(self.waiting.popleft())
                size += len(chunk[-1][2])
            self.waiting_values -= size
            try:
                self.backend.send(chunk)
            except Exception as error:
                self.give_up(error)
                break
            self.sent += size
            self.wait_for(self.take())
        if self.backend is None:
            self.waiting.clear()  # in metrics.jsonl, counted as unsent
            self.waiting_values = 0

    def wait_for(self, batch: Batch) -> None:
        self.waiting.extend(batch)
        self.waiting_values += sum(len(values) for _, _, values in batch)
        if self.waiting_values > MAX_WAITING:
            _warn_once(
                f"{self.name} is slower than log_metrics(): values beyond "
                f"{MAX_WAITING} waiting are only in {self.file}"
            )
        while self.waiting_values > MAX_WAITING:
            self.waiting_values -= len(self.waiting.popleft()[2])

    def take(self) -> Batch:
        """What is queued, numbers only, appended to metrics.jsonl."""
        batch: Batch = []
        while True:
            try:
                step, when, given = self.queue.get_nowait()
            except queue.Empty:
                break
            values = {str(k): float(v) for k, v in given.items() if _finite(v)}
            if len(values) < len(given):
                _warn_once("Metric values that are not finite numbers were left out")
            batch.append((int(step), when, values))
        if batch:
            self.logged += sum(len(values) for _, _, values in batch)
            self.write(batch)
        return batch

    def write(self, batch: Batch) -> None:
        lines = "".join(
            json.dumps({"step": step, "time": round(when, 3), "values": values}) + "\n"
            for step, when, values in batch
        )
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        try:
            with self.file_lock, open(os.open(self.file, flags, FILE_MODE), "a") as out:
                out.write(lines)
        except OSError as error:
            _warn_once(f"Cannot write {self.file}: {error}")

    def give_up(self, error: BaseException) -> None:
        if self.backend is not None:
            logger.warning(
                "%s (%s) failed: %s; metrics stay in %s",
                self.name,
                self.chosen.where(),
                redact(f"{type(error).__name__}: {error}")[:500],
                self.file,
            )
        self.backend = None

    def end(self, record: dict[str, Any], write: Callable[[], None]) -> None:
        """At the run's end: the last batch, the counts in run.json, then the files."""
        self.stopping = True
        self.wake.set()
        if not self.called:
            return  # no metrics: nothing to add to run.json, no tracker run
        wait = 2.0 if record["status"] == "terminated" else END_SECONDS
        self.thread.join(wait)
        late = self.thread.is_alive()
        if late:  # a slow tracker: what is left goes to the file only
            self.take()
        backend, unsent = self.backend, self.logged - self.sent
        fields = self.chosen.fields()
        record.update(
            tracker=self.name,
            metrics_file=str(self.file),
            metrics_logged=self.logged,
            metrics_unsent=unsent,
            **fields,
        )
        # Set-up removes these with the run's directory, as its log files.
        record["tracker_files"] = [self.file.name, *fields.get("tracker_files", [])]
        if late:
            logger.warning(
                "%s (%s) did not answer within %.0fs; %d metric values unsent, in %s",
                *(self.name, self.chosen.where(), wait, unsent, self.file),
            )
        elif unsent:
            logger.warning("%d metric values unsent, kept in %s", unsent, self.file)
        write()
        if backend is None or late or not self.opened:
            return
        writer.flush()  # the log files complete before they are attached
        files = {runs.RECORD: self.record, METRICS_FILE: self.file}
        files = {name: path for name, path in files.items() if path.exists()}
        finish = threading.Thread(
            target=self.finish, args=(backend, record, files), daemon=True
        )
        try:
            finish.start()
        except RuntimeError:  # at exit, Python 3.12+ starts no thread
            self.finish(backend, record, files)
        else:
            finish.join(wait)

    def finish(
        self, backend: {{ backend }}, record: dict[str, Any], files: dict[str, Path]
    ) -> None:
        try:
            backend.finish(record, files)
        except Exception as error:
            self.give_up(error)


_tracker: _Tracker | None = None
_warned: set[str] = set()


def start(per_run: bool, uri: str = "") -> None:
    """Track the run's metrics, if this process writes its record (rank 0)."""
    global _tracker
    record = runs.record_file()
    tracker = _tracker
    if tracker and tracker.record == record and tracker.pid == os.getpid():
        return  # set up again: the same run goes on
    _tracker = None
    if record is None:
        return
    if per_run:
        metrics = record.with_name(METRICS_FILE)
    else:
        metrics = record.with_suffix(f".{METRICS_FILE}")
{%- if cookiecutter.tracker == "mlflow" %}
    backend = _MLflow(
        os.environ.get("MLFLOW_TRACKING_URI") or uri,
        os.environ.get("MLFLOW_EXPERIMENT_NAME") or runs.PACKAGE,
        configure.run_context().run_id,
    )
{%- else %}
    # In the run's directory, or <log dir>/tensorboard/<run id>/
    tensorboard = record.parent.parent / "tensorboard" / record.stem
    backend = _TensorBoard(record.parent if per_run else tensorboard)
{%- endif %}
    _tracker = _Tracker(backend, record, metrics)
    runs.when_ending(_end)


def log(step: int, values: dict[str, float]) -> None:
    """Queue the values; see ``config.log_metrics()``."""
    tracker = _tracker
    if tracker is not None and tracker.pid == os.getpid() and not tracker.stopping:
        tracker.queue.put((step, time.time(), values))
        _open(tracker)


def _open(tracker: _Tracker) -> None:
    if not tracker.called:  # the tracker opens now, while the run goes on
        tracker.called = True
        tracker.wake.set()
{%- if cookiecutter.tracker == "mlflow" %}


def mlflow_run_id() -> str | None:
    """This run's MLflow run, opened now if no metrics opened it yet: its id, or
    None in a process that does not track (rank > 0) or if MLflow failed."""
    tracker = _tracker
    if tracker is None or tracker.pid != os.getpid() or tracker.stopping:
        return None
    _open(tracker)
    tracker.opened_or_failed.wait(CONNECT_SECONDS + END_SECONDS)
    return tracker.chosen.run_id if tracker.backend is not None else None
{%- endif %}


def _end(record: dict[str, Any], write: Callable[[], None]) -> None:
    tracker = _tracker
    if tracker is not None and tracker.pid == os.getpid() and not tracker.stopping:
        tracker.end(record, write)


def _finite(value: object) -> bool:
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except TypeError:
        return False


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)
{%- if cookiecutter.tracker == "mlflow" %}


def _connect(uri: str) -> None:
    """Raise OSError unless the server at ``uri`` takes a connection."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    socket.create_connection((parts.hostname, port), CONNECT_SECONDS).close()


def _flat(fields: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested fields as MLflow params: {"args": {"lr": 0.1}} gives args.lr=0.1."""
    flat = {}
    for key, value in fields.items():
        name = re.sub(r"[^\w\-. /]", "_", f"{prefix}{key}")[:250]
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{name}."))
        else:
            value = secret_field(str(key), value)
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat


def _this_runs_logs(record: dict[str, Any], scratch: Path) -> list[Path]:
    """The run's log files; in a shared directory, copies with its lines only."""
    if not record.get("log_dir"):
        return []
    directory = Path(record["log_dir"])
    logs = sorted(p for p in directory.iterdir() if _LOG_FILE.search(p.name))
    if directory.joinpath(runs.RECORD).exists():  # the run's own directory
        return logs
    copies = []
    for path in logs:
        lines = _lines_of(path, record["run_id"])
        if lines:
            copies.append(scratch / path.name)
            copies[-1].write_text("".join(lines), "utf-8")
    return copies


def _lines_of(path: Path, run_id: str) -> list[str]:
    """The lines of a run in a shared log file: its records and what follows them
    (a traceback's lines, indented), text or JSON."""
    kept, keep = [], False
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            if line.startswith("{"):
                try:
                    keep = json.loads(line).get("run_id") == run_id
                except ValueError:
                    keep = False
            elif not line.startswith(" "):  # "LEVEL time run=ID rank=N [..."
                keep = line.partition(" rank=")[0].endswith(f" run={run_id}")
            if keep:
                kept.append(line)
    return kept
{%- endif %}
