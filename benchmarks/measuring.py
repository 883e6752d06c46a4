"""Running the measurements: one child process per measurement, records counted.

Every measurement runs in a fresh process (child.py) with its own temporary log
directory, its stdin closed and its console output on /dev/null. After a run that
logs records, the log files are searched for each process's records: whatever is
missing was lost.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from configurations import MEASURES, ChildFailed, Config, Settings

CHILD = Path(__file__).resolve().parent / "child.py"
# Processes per configuration and repetition: the short measurements vary most
# from one process to the next (memory layout, other load), so they get more.
# On a shared 2-core machine one records run in 5 also strayed by a third, which
# 5 samples cannot outvote for a 15% target (JSON vs text): 3 per repetition.
PROCESSES = {"startup": 3, "filtered": 2, "records": 3}
RANK_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "SLURM_NTASKS",
)


# Left out of the measured processes' environment, whatever the shell running
# this sets: bytecode is cached, and the standard streams buffered, as Python
# does by default.
DEFAULTS_KEPT = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")


def child_env(config: Config, rank: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in RANK_VARIABLES and k not in DEFAULTS_KEPT
    }
    if config.package:
        prefix = config.package.upper() + "_LOG_"
        env = {k: v for k, v in env.items() if not k.startswith(prefix)}
    if config.src:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(config.src), env.get("PYTHONPATH")])
        )
    if config.ranks > 1:
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(config.ranks),
            LOCAL_WORLD_SIZE=str(config.ranks),
        )
    return env


def count_ids(log_dir: Path, run_ids: list[str]) -> dict[str, set[int]]:
    """Record numbers of each run id found in every file under the log directory."""
    found: dict[str, set[int]] = {run_id: set() for run_id in run_ids}
    patterns = {r: re.compile(rb"%s step (\d+) loss" % r.encode()) for r in run_ids}
    for path in log_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for run_id, pattern in patterns.items():
                found[run_id].update(map(int, pattern.findall(data)))
    return found


def run_child(
    config: Config, measure: str, n: int, tmp: Path, profile: bool = False
) -> list[dict]:
    """Run one measurement (one process per rank); return each process's figures."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"{config.name}-{measure}-", dir=tmp))
    log_dir = run_dir / "logs"
    log_dir.mkdir()
    processes = []
    try:
        for rank in range(config.ranks):
            run_id = secrets.token_hex(6)
            result = run_dir / f"result-{rank}.json"
            command = [sys.executable, str(CHILD), measure, config.kind, str(log_dir)]
            command += [str(result), str(n), run_id]
            command += [config.package] if config.package else []
            command += ["--profile"] if profile else []
            process = subprocess.Popen(  # console sinks go to /dev/null
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=run_dir,
                env=child_env(config, rank),
            )
            processes.append((run_id, result, process))
        results = []
        for run_id, result, process in processes:
            try:
                status = process.wait(timeout=120 + n * 1e-4)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise ChildFailed(f"{measure}: timed out") from None
            if not result.is_file():
                raise ChildFailed(f"{measure}: exited {status} without a result")
            figures = json.loads(result.read_text("utf-8"))
            if "error" in figures:
                last = figures["error"].strip().splitlines()[-1]
                raise ChildFailed(f"{measure}: {last}")
            figures["run_id"] = run_id
            results.append(figures)
        if measure in ("records", "burst"):
            found = count_ids(log_dir, [r["run_id"] for r in results])
            for figures in results:
                ids = found[figures["run_id"]]
                figures["lost"] = n - len(ids)
                figures["rotated_out"] = 0
                if measure == "burst" and ids:
                    # Files past the retention limit are deleted by design: count
                    # only holes and missing tail after the oldest record kept.
                    figures["rotated_out"] = min(ids)
                    figures["lost"] -= min(ids)
        return results
    finally:
        for _, _, process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(run_dir, ignore_errors=True)


def record(config: Config, measure: str, results: list[dict]) -> None:
    """Keep one measurement's figures (the mean over ranks) in the samples."""
    scales = {
        "startup_ns": ("startup_ms", 1e-6),
        "filtered_ns": ("filtered_ns", 1),
        "empty_call_ns": ("empty_call_ns", 1),
        "emitted_ns": ("emitted_us", 1e-3),
        "wall_ns": ("wall_us", 1e-3),
        "shutdown_ms": ("shutdown_ms", 1),
    }
    if measure == "burst":
        for figures in results:
            growth = figures["peak_rss_kib"] - figures["rss_before_kib"]
            config.samples["peak_mib"].append(max(0, growth) / 1024)
            config.samples["burst_wall_us"].append(figures["wall_ns"] / 1e3)
    else:
        for key, (name, scale) in scales.items():
            values = [f[key] for f in results if key in f]
            if values:
                config.samples[name].append(statistics.fmean(values) * scale)
    config.lost += sum(f.get("lost", 0) for f in results)
    config.rotated_out += sum(f.get("rotated_out", 0) for f in results)


def measure_all(
    configs: list[Config], settings: Settings, tmp: Path, progress: bool
) -> None:
    sizes = {
        "startup": 1,
        "filtered": settings.filtered_calls,
        "records": settings.records,
        "burst": settings.burst,
    }

    def attempt(config: Config, measure: str, n: int, keep: bool = True) -> None:
        if not config.ran:
            return
        try:
            results = run_child(config, measure, n, tmp)
        except ChildFailed as error:
            config.failed = str(error)
            return
        if keep:
            record(config, measure, results)
        elif any(f.get("lost") for f in results):
            config.failed = f"warm-up run lost {sum(f['lost'] for f in results)}"

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    if settings.warmup:  # compiles bytecode, fills caches, checks each one works
        say("warm-up ...")
        for config in configs:
            for measure in config.measures:
                attempt(config, measure, min(sizes[measure], 1000), keep=False)
    for rep in range(settings.repeat):
        say(f"repetition {rep + 1}/{settings.repeat} ...")
        order = configs[rep % len(configs) :] + configs[: rep % len(configs)]
        for measure in MEASURES:
            for _ in range(PROCESSES[measure]):
                for config in order:
                    if measure in config.measures:
                        attempt(config, measure, sizes[measure])
    say(f"burst of {settings.burst} records, once per configuration ...")
    for config in configs:
        if "filtered" in config.measures:
            attempt(config, "burst", settings.burst)
