"""What ``log_metrics()`` costs at the call site, next to a logging call.

    python benchmarks/metrics.py            # about a minute on two cores
    python benchmarks/metrics.py --smoke    # a few seconds: does it all work?

Bakes the template once per tracker (none, mlflow, tensorboard) and, in each
project, runs a toy training loop that logs every step: ``logger.info("step %d
loss %.4f", ...)`` in one pass, ``log_metrics(step, loss=..., lr=...)`` in
the other, with the project's default set-up (MLflow's store in a scratch
directory). Each figure is the fastest of ``--repeat`` passes of ``--calls``
steps, per step, the bare loop subtracted. Then ``log_run_end()``: how long the
end waits for the tracker, and how many values it had sent (run.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
TRACKERS = ("none", "mlflow", "tensorboard")

CHILD = r"""
import json, logging, sys, time
from pathlib import Path

from {package} import config

repeat, calls, scratch = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
if hasattr(config, "MLFLOW_URI"):
    config.MLFLOW_URI = f"sqlite:///{{scratch / 'mlflow.db'}}"
log_dir = config.setup_logging(scratch / "logs")
config.log_run_start()
time.sleep({settle})  # the tracker is ready: MLflow imported, its tables made
logger = logging.getLogger("train")
step = 0


def per_step(call):
    global step
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            step += 1
            call(step, 1.0 / step)
        best = min(best, (time.perf_counter() - started) / calls)
        config.flush_logs()
    return best


loop = per_step(lambda step, loss: None)
info = per_step(lambda step, loss: logger.info("step %d loss %.4f", step, loss))
metrics = per_step(lambda step, loss: config.log_metrics(step, loss=loss, lr=1e-3))
started = time.perf_counter()
config.log_run_end(0)
end = time.perf_counter() - started
records = [json.loads(p.read_text()) for p in (scratch / "logs").rglob("*.json")]
record = next((r for r in records if "status" in r), {{}})
print(json.dumps({{
    "info_us": (info - loop) * 1e6,
    "log_metrics_us": (metrics - loop) * 1e6,
    "end_s": end,
    "logged": record.get("metrics_logged"),
    "unsent": record.get("metrics_unsent"),
}}))
"""


def bake(tracker: str, out: Path) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(out / tracker),
            extra_context={"tracker": tracker},
        )
    )


def measure(tracker: str, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    project = bake(tracker, tmp)
    package = next(project.glob("src/*/config.py")).parent.name
    scratch = tmp / f"{tracker}-run"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    env.pop("MLFLOW_TRACKING_URI", None)
    code = CHILD.format(package=package, settle=1 if args.smoke else 6)
    done = subprocess.run(
        [sys.executable, "-c", code, str(args.repeat), str(args.calls), str(scratch)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        return {"tracker": tracker, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return {"tracker": tracker, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="steps a pass")
    parser.add_argument("--repeat", type=int, default=11, help="passes; the fastest")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.repeat = 200, 2
    print(
        f"{'tracker':<12} {'logger.info':>12} {'log_metrics':>12} {'ratio':>6} "
        f"{'end':>7} {'sent':>14}"
    )
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        for tracker in TRACKERS:
            row = measure(tracker, args, Path(scratch))
            if "error" in row:
                failed = True
                print(f"{tracker:<12} failed: {row['error']}")
                continue
            info, metrics = float(row["info_us"]), float(row["log_metrics_us"])  # type: ignore[arg-type]
            logged, unsent = row["logged"], row["unsent"]
            sent = "-" if logged is None else f"{logged - unsent}/{logged}"  # type: ignore[operator]
            print(
                f"{tracker:<12} {info:>9.2f} us {metrics:>9.2f} us "
                f"{metrics / info:>6.2f} {row['end_s']:>6.2f}s {sent:>14}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
