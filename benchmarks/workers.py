"""Worker processes logging at once through the generated project's run writer.

    python benchmarks/workers.py                          # bakes the template
    python benchmarks/workers.py --project PATH           # an already baked project
    python benchmarks/workers.py --workers 1,4 --records 5000 --json figures.json

N worker processes of a ``ProcessPoolExecutor`` (spawn by default), started with
``initializer=worker_logging()``, each log R records at INFO through the project's
sinks (console on /dev/null, info.log, error.log); the process that started them
owns the files. The clock starts when every worker is ready and stops when
``logging.shutdown()`` returns in that process, after the pool has shut down: the
drained rate. One process logging R records alone to the same sinks, timed the
same way, is the reference. Then every record is looked for in the files: each
must be there once, on a whole line of its own.

Needs only Python 3.10+ and a baked project (``--project``); without one, the
template next to this script is baked with cookiecutter.
"""

from __future__ import annotations

import os
import sys
import time

now = time.perf_counter_ns
HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "..")
COUNTS = (1, 4, 8, 15)
RECORDS = 20_000
REPEAT = 3
BARRIER_SECONDS = 60  # for every worker to start: one that cannot ends the run
MESSAGE = "%s step %d loss %.4f"  # tag, record number, 0.5
# Targets of issue 11 for the generated project (the first on 2 cores, the
# others on 16): (name, figure, limit, is the limit a minimum).
RATIO_WORKERS = 4
RATE_WORKERS = 15
RATE_LIMIT = 110_000
CALL_LIMIT = 3.0
RANK_VARIABLES = (
    *("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"),
    *("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS"),
)

# Worker start: a Pool(maxtasksperchild=1) of POOL_PROCESSES starts a process per
# task, each logging POOL_RECORDS records; timed with and without logging set up.
POOL_PROCESSES = 2
POOL_RECORDS = 3
POOL_TASKS = 200
START_LIMIT = 1.5  # a spawned worker's start with logging vs without, at most

_barrier = None  # in a worker: every worker and the parent meet here first


# --- the measured processes -------------------------------------------------------


def proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS counter (VmHWM) from the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        pass


def log_records(tag: str, records: int) -> float:
    """Log ``records`` records at INFO; return the mean call in ns."""
    import logging

    log = logging.getLogger("bench.worker")
    start = now()
    for i in range(records):
        log.info(MESSAGE, tag, i, 0.5)
    return (now() - start) / records


def _init_worker(hook: object, barrier: object) -> None:
    global _barrier
    if hook is not None:
        hook()  # type: ignore[operator]  # the project's worker_logging()
    _barrier = barrier


def _work(tag: str, records: int) -> dict:
    """One worker's task: wait for the others, then log as fast as it can."""
    reset_peak_rss()
    _barrier.wait(timeout=BARRIER_SECONDS)  # type: ignore[union-attr]
    call_ns = log_records(tag, records)
    return {"tag": tag, "call_ns": call_ns, "peak_rss_kib": proc_status_kib("VmHWM")}


def role_single(package: str, log_dir: str, records: int, tag: str) -> dict:
    """One process alone: the reference."""
    import importlib
    import logging

    importlib.import_module(f"{package}.config").setup_logging(log_dir)
    start = now()
    call_ns = log_records(tag, records)
    logging.shutdown()
    seconds = (now() - start) / 1e9
    return {"seconds": seconds, "calls_ns": [call_ns], "tags": [tag]}


def role_parent(
    package: str, log_dir: str, records: int, tag: str, workers: int, method: str
) -> dict:
    """Start the workers, time them from the start signal to a drained shutdown."""
    import importlib
    import logging
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    config = importlib.import_module(f"{package}.config")
    config.setup_logging(log_dir)
    context = multiprocessing.get_context(method)
    barrier = context.Barrier(workers + 1)
    # Forked workers join the run by themselves; the others need the hook.
    hook = None if method == "fork" else config.worker_logging()
    tags = [f"{tag}w{n}" for n in range(workers)]
    started = now()
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(hook, barrier)
    )
    futures = [pool.submit(_work, t, records) for t in tags]
    reset_peak_rss()
    rss_before = proc_status_kib("VmRSS")
    barrier.wait(timeout=BARRIER_SECONDS)  # every worker is up, its logging set up
    start = now()
    results = [future.result(timeout=600) for future in futures]
    pool.shutdown(wait=True)
    logging.shutdown()
    end = now()
    return {
        "seconds": (end - start) / 1e9,
        "startup_seconds": (start - started) / 1e9,
        "calls_ns": [r["call_ns"] for r in results],
        "tags": tags,
        "parent_rss_before_kib": rss_before,
        "parent_peak_rss_kib": proc_status_kib("VmHWM"),
        "workers_peak_rss_kib": [r["peak_rss_kib"] for r in results],
    }


def _pool_task(tag: str, number: int) -> int:
    """One task of the worker-start measurement, in a process of its own."""
    import logging

    log = logging.getLogger("bench.task")
    for i in range(POOL_RECORDS):
        log.info(MESSAGE, f"{tag}t{number}", i, 0.5)
    return number


def role_pool(
    package: str, log_dir: str, tasks: int, tag: str, method: str, logging_on: bool
) -> dict:
    """``tasks`` tasks through ``Pool(maxtasksperchild=1)``: a process each,
    timed from the pool's start until every worker has exited and, with
    logging, ``logging.shutdown()`` has returned."""
    import functools
    import importlib
    import logging
    import multiprocessing
    import resource

    hook = None
    if logging_on:
        config = importlib.import_module(f"{package}.config")
        config.setup_logging(log_dir)
        # Forked workers join the run by themselves; the others need the hook.
        hook = None if method == "fork" else config.worker_logging()
    context = multiprocessing.get_context(method)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = now()
    pool = context.Pool(POOL_PROCESSES, initializer=hook, maxtasksperchild=1)
    done = pool.map(functools.partial(_pool_task, tag), range(tasks), chunksize=1)
    pool.close()
    pool.join()  # the last workers end as their task does: none is killed
    if logging_on:
        logging.shutdown()
    seconds = (now() - start) / 1e9
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert done == list(range(tasks))
    return {
        "seconds": seconds,
        "workers_cpu_seconds": cpu,
        "tags": [f"{tag}t{n}" for n in range(tasks)],
    }


def role_main(argv: list[str]) -> None:
    """``--role single|parent|pool RESULT PACKAGE LOG_DIR RECORDS TAG
    [WORKERS METHOD]``; for pool, RECORDS is the number of tasks and WORKERS
    is 1 with logging, 0 without."""
    import json

    role, result_file, package, log_dir, records, tag = argv[:6]
    try:
        if role == "single":
            result = role_single(package, log_dir, int(records), tag)
        elif role == "pool":
            logging_on, method = argv[6] == "1", argv[7]
            result = role_pool(package, log_dir, int(records), tag, method, logging_on)
        else:
            workers, method = int(argv[6]), argv[7]
            result = role_parent(package, log_dir, int(records), tag, workers, method)
    except Exception:
        import traceback

        result = {"error": traceback.format_exc()}
    with open(result_file, "w", encoding="utf-8") as out:
        json.dump(result, out)


# --- counting records in the files --------------------------------------------------


def check_files(log_dir: str, tags: list[str], records: int) -> dict[str, int]:
    """Lost, duplicated and torn records in every info file under ``log_dir``.

    A line is torn if it is not one whole record: no level and time at its start
    (text) or not one JSON object (JSON), more than one record's message in it, a
    message of the workload that does not end the line, or no newline at the end.
    """
    import json
    import re

    header = re.compile(rb"(DEBUG|INFO|WARNING|ERROR|CRITICAL) \d{4}-\d\d-\d\d ")
    ending = re.compile(rb" (\S+) step (\d+) loss 0\.5000\Z")
    message = re.compile(r"(\S+) step (\d+) loss 0\.5000\Z")
    wanted = set(tags)
    seen: dict[tuple[str, int], int] = {}
    torn = 0
    for folder, _, names in os.walk(log_dir):
        for name in names:
            if not name.startswith("info"):
                continue  # error.log gets no INFO record; runs/ has no records
            with open(os.path.join(folder, name), "rb") as file:
                lines = file.read().split(b"\n")
            if lines[-1]:
                torn += 1  # no newline at the end: a record cut short
            for line in lines[:-1]:
                found = None
                if line.startswith(b"{"):
                    try:
                        text = json.loads(line).get("message", "")
                    except (ValueError, AttributeError):
                        torn += 1
                        continue
                    match = message.match(text)
                    if match:
                        found = match.group(1), int(match.group(2))
                    elif " step " in text:
                        torn += 1
                        continue
                elif not header.match(line) or line.count(b" step ") > 1:
                    torn += 1
                    continue
                elif b" step " in line:
                    match = ending.search(line)
                    if not match:
                        torn += 1
                        continue
                    found = match.group(1).decode(), int(match.group(2))
                if found is None:
                    continue  # another record of the run (a warning, say)
                if found[0] not in wanted or not 0 <= found[1] < records:
                    torn += 1
                    continue
                seen[found] = seen.get(found, 0) + 1
    expected = len(tags) * records
    return {
        "lost": expected - len(seen),
        "duplicated": sum(seen.values()) - len(seen),
        "torn": torn,
    }


# --- the runner -----------------------------------------------------------------------


def find_package(project: str) -> tuple[str, str]:
    """(src directory, package name) of a baked project's directory."""
    src = os.path.join(os.path.abspath(project), "src")
    try:
        names = sorted(os.listdir(src))
    except OSError:
        names = []
    packages = [n for n in names if os.path.isfile(os.path.join(src, n, "config.py"))]
    if len(packages) != 1:
        raise SystemExit(f"--project: no src/<package>/config.py under {project}")
    return src, packages[0]


def bake(template: str, out: str) -> str:
    """Bake the template's default options with cookiecutter; the project's path."""
    import subprocess

    command = [sys.executable, "-m", "cookiecutter", "--no-input", template]
    result = subprocess.run(
        [*command, "-o", out], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(
            f"cannot bake the template ({last}); bake it elsewhere and pass --project"
        )
    [project] = [e.path for e in os.scandir(out) if e.is_dir()]
    return project


def environment(src: str, package: str) -> dict[str, str]:
    """This environment without rank variables or the project's own settings."""
    prefix = package.upper() + "_LOG_"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in RANK_VARIABLES and not k.startswith(prefix)
    }
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):  # Python's defaults
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def run_once(
    src: str, package: str, tmp: str, workers: int, records: int, method: str
) -> dict:
    """One measurement in a fresh process (workers=0: one process alone)."""
    import contextlib
    import json
    import shutil
    import signal
    import subprocess
    import tempfile

    run_dir = tempfile.mkdtemp(prefix=f"workers-{workers}-", dir=tmp)
    log_dir = os.path.join(run_dir, "logs")
    result_file = os.path.join(run_dir, "result.json")
    tag = os.urandom(4).hex()
    command = [sys.executable, os.path.abspath(__file__), "--role"]
    command += ["single" if workers == 0 else "parent", result_file, package]
    command += [log_dir, str(records), tag]
    command += [str(workers), method] if workers else []
    process = subprocess.Popen(  # the console sink goes to /dev/null
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=run_dir,
        env=environment(src, package),
        start_new_session=True,  # so that a hung run's workers go with it
    )
    try:
        try:
            process.wait(timeout=120 + max(1, workers) * records * 2e-4)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"{workers} workers x {records}: timed out") from None
        finally:
            with contextlib.suppress(OSError):  # leftover workers, if any
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if not os.path.isfile(result_file):
            raise SystemExit(f"{workers} workers: exited {process.returncode}")
        with open(result_file, encoding="utf-8") as file:
            result = json.load(file)
        if "error" in result:
            raise SystemExit(f"{workers} workers failed:\n{result['error']}")
        result.update(check_files(log_dir, result["tags"], records))
        result["records"] = max(1, workers) * records
        return result
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def run_pool(
    src: str, package: str, tmp: str, tasks: int, method: str, logging_on: bool
) -> dict:
    """One worker-start measurement in a fresh process."""
    import json
    import shutil
    import subprocess
    import tempfile

    run_dir = tempfile.mkdtemp(prefix=f"pool-{method}-", dir=tmp)
    log_dir = os.path.join(run_dir, "logs")
    result_file = os.path.join(run_dir, "result.json")
    command = [sys.executable, os.path.abspath(__file__), "--role", "pool"]
    command += [result_file, package, log_dir, str(tasks), os.urandom(4).hex()]
    command += ["1" if logging_on else "0", method]
    try:
        process = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=run_dir,
            env=environment(src, package),
            timeout=120 + tasks * 2,
            check=False,
        )
        if not os.path.isfile(result_file):
            raise SystemExit(f"worker start ({method}): exited {process.returncode}")
        with open(result_file, encoding="utf-8") as file:
            result = json.load(file)
        if "error" in result:
            raise SystemExit(f"worker start ({method}) failed:\n{result['error']}")
        if logging_on:
            result.update(check_files(log_dir, result["tags"], POOL_RECORDS))
        return result
    except subprocess.TimeoutExpired:
        raise SystemExit(f"worker start ({method}): timed out") from None
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def measure_start(
    src: str,
    package: str,
    tmp: str,
    tasks: int,
    repeat: int,
    methods: list[str] | None = None,
) -> dict:
    """Each start method's pool with and without logging, interleaved: per
    task, the median wall time and the workers' CPU time, and their ratios."""
    import multiprocessing
    import statistics

    methods = methods or [
        m for m in ("fork", "spawn") if m in multiprocessing.get_all_start_methods()
    ]
    rows = {}
    for method in methods:
        samples: dict[bool, list[dict]] = {False: [], True: []}
        for rep in range(repeat):
            for logging_on in (False, True) if rep % 2 == 0 else (True, False):
                samples[logging_on].append(
                    run_pool(src, package, tmp, tasks, method, logging_on)
                )

        wall = [
            statistics.median(r["seconds"] for r in samples[on]) / tasks * 1e3
            for on in (False, True)
        ]
        cpu = [
            statistics.median(r["workers_cpu_seconds"] for r in samples[on])
            / tasks
            * 1e3
            for on in (False, True)
        ]
        rows[method] = {
            "ms_per_task": wall,
            "workers_cpu_ms_per_task": cpu,
            "ratio": statistics.median(
                a["seconds"] / b["seconds"]
                for a, b in zip(samples[True], samples[False], strict=True)
            ),
            "cpu_ratio": cpu[1] / cpu[0] if cpu[0] else None,
            "lost": sum(r["lost"] for r in samples[True]),
            "duplicated": sum(r["duplicated"] for r in samples[True]),
            "torn": sum(r["torn"] for r in samples[True]),
        }
    return {"tasks": tasks, "repeat": repeat, "rows": rows}


def start_broken(figures: dict | None) -> bool:
    if not figures:
        return False
    if "failed" in figures:
        return True
    return any(
        row["lost"] or row["duplicated"] or row["torn"]
        for row in figures["rows"].values()
    )


def start_table(figures: dict) -> list[str]:
    lines = [
        "| start method | ms per task without logging | with logging | ratio "
        "| workers' CPU ms per task without | with | lost | duplicated | torn |",
        "| --- |" + " ---: |" * 8,
    ]
    for method, row in figures["rows"].items():
        wall, cpu = row["ms_per_task"], row["workers_cpu_ms_per_task"]
        lines.append(
            f"| {method} | {wall[0]:.1f} | {wall[1]:.1f} | {row['ratio']:.2f}x "
            f"| {cpu[0]:.1f} | {cpu[1]:.1f} "
            f"| {row['lost']} | {row['duplicated']} | {row['torn']} |"
        )
    return lines


def start_target(figures: dict | None) -> dict[str, str]:
    """Issue 20's target: a spawned worker's start with logging, at most 1.5x."""
    name = "worker start (spawn, Pool(maxtasksperchild=1)) vs no logging"
    row = (figures or {}).get("rows", {}).get("spawn")
    if row is None:
        verdict = "FAILED" if figures and "failed" in figures else "n/a"
        return {
            "target": name,
            "value": "n/a",
            "limit": f"<= {START_LIMIT}x",
            "verdict": verdict,
        }
    return {
        "target": name,
        "value": f"{row['ratio']:.2f}x",
        "limit": f"<= {START_LIMIT:.1f}x",
        "verdict": "PASS" if row["ratio"] <= START_LIMIT else "MISS",
    }


def measure(
    src: str,
    package: str,
    tmp: str,
    counts: list[int],
    records: int,
    repeat: int,
    method: str,
    warmup: bool = True,
    progress: bool = False,
) -> dict:
    """Every worker count and the one-process reference, interleaved, repeated."""
    if warmup:  # compiles the bytecode, checks that it all works
        run_once(src, package, tmp, 0, min(records, 1000), method)
        run_once(src, package, tmp, 2, min(records, 1000), method)
    samples: dict[int, list[dict]] = {n: [] for n in [0, *counts]}
    for rep in range(repeat):
        if progress:
            print(f"workers: repetition {rep + 1}/{repeat} ...", file=sys.stderr)
        order = [0, *counts]
        order = order[rep % len(order) :] + order[: rep % len(order)]
        for workers in order:
            samples[workers].append(
                run_once(src, package, tmp, workers, records, method)
            )
    rows = {n: summarize(runs) for n, runs in samples.items()}
    return {
        "method": method,
        "records": records,
        "repeat": repeat,
        "rows": {("one process" if n == 0 else str(n)): row for n, row in rows.items()},
    }


def summarize(runs: list[dict]) -> dict:
    """Medians of the timings, sums of the faults, the largest memory peaks."""
    import statistics

    def mib(kib: int | None) -> float:
        return (kib or 0) / 1024

    return {
        "records_per_s": statistics.median(r["records"] / r["seconds"] for r in runs),
        "call_us": statistics.median(
            statistics.median(r["calls_ns"]) / 1e3 for r in runs
        ),
        "slowest_call_us": max(max(r["calls_ns"]) / 1e3 for r in runs),
        "startup_s": statistics.median(r.get("startup_seconds", 0) for r in runs),
        "lost": sum(r["lost"] for r in runs),
        "duplicated": sum(r["duplicated"] for r in runs),
        "torn": sum(r["torn"] for r in runs),
        "parent_peak_mib": max(mib(r.get("parent_peak_rss_kib")) for r in runs),
        "parent_growth_mib": max(
            mib(r.get("parent_peak_rss_kib")) - mib(r.get("parent_rss_before_kib"))
            for r in runs
        ),
        "workers_peak_mib": max(
            sum(mib(k) for k in r.get("workers_peak_rss_kib", [])) for r in runs
        ),
        "runs": runs,
    }


def targets(figures: dict) -> list[dict[str, str]]:
    """Issue 11's speed targets, for the worker counts that were measured."""
    rows = figures["rows"]
    single, out = rows["one process"], []

    def add(name: str, value: float, limit: float, minimum: bool, fmt: str) -> None:
        ok = value >= limit if minimum else value <= limit
        out.append(
            {
                "target": name,
                "value": fmt.format(value),
                "limit": (">= " if minimum else "<= ") + fmt.format(limit),
                "verdict": "PASS" if ok else "MISS",
            }
        )

    method = figures["method"]
    if str(RATIO_WORKERS) in rows:
        ratio = rows[str(RATIO_WORKERS)]["records_per_s"] / single["records_per_s"]
        add(
            f"workers ({RATIO_WORKERS} {method}) vs one process, drained rate ratio "
            "(on 2 cores)",
            ratio,
            1.0,
            True,
            "{:.2f}x",
        )
    if str(RATE_WORKERS) in rows:
        add(
            f"{RATE_WORKERS} workers together, records/s (on 16 cores)",
            rows[str(RATE_WORKERS)]["records_per_s"],
            RATE_LIMIT,
            True,
            "{:,.0f}",
        )
        if "1" in rows:
            add(
                f"{RATE_WORKERS} workers' call vs one lone worker's (on 16 cores)",
                rows[str(RATE_WORKERS)]["call_us"] / rows["1"]["call_us"],
                CALL_LIMIT,
                False,
                "{:.2f}x",
            )
    return out


def table(figures: dict) -> list[str]:
    rows = figures["rows"]
    base = rows["one process"]["records_per_s"]
    lines = [
        "| workers | records/s together | vs one process | one worker's call us "
        "| lost | duplicated | torn | start-up s | peak RSS MiB parent (growth) "
        "| peak RSS MiB workers |",
        "| --- |" + " ---: |" * 9,
    ]
    for name, row in rows.items():
        alone = name == "one process"
        lines.append(
            f"| {name} | {row['records_per_s']:,.0f} "
            f"| {row['records_per_s'] / base:.2f}x | {row['call_us']:.1f} "
            f"| {row['lost']} | {row['duplicated']} | {row['torn']} "
            f"| {'-' if alone else format(row['startup_s'], '.2f')} "
            + (
                "| - | - |"
                if alone
                else f"| {row['parent_peak_mib']:.0f} "
                f"(+{row['parent_growth_mib']:.0f}) | {row['workers_peak_mib']:.0f} |"
            )
        )
    return lines


def render(figures: dict) -> str:
    out = [
        f"Workers ({figures['method']}, `ProcessPoolExecutor(initializer="
        f"worker_logging())`), {figures['records']:,} records each; median of "
        f"{figures['repeat']}, lost/duplicated/torn summed over all runs:",
        "",
        *table(figures),
    ]
    rows = targets(figures)
    if rows:
        out += [
            "",
            "| target | this run | limit | verdict |",
            "| --- | ---: | ---: | --- |",
        ]
        out += [
            f"| {t['target']} | {t['value']} | {t['limit']} | {t['verdict']} |"
            for t in rows
        ]
    return "\n".join(out)


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise SystemExit(f"--workers {text!r}: use positive numbers, e.g. 1,4,8,15")
    return sorted(set(counts))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import multiprocessing
    import platform
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--project", help="a baked project's directory")
    parser.add_argument(
        "--template", default=TEMPLATE, help="template to bake without --project"
    )
    parser.add_argument("--workers", default="1,4,8,15", help="worker counts")
    parser.add_argument("--records", type=int, default=RECORDS, help="per worker")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="medians of K runs")
    parser.add_argument(
        "--start-method",
        default="spawn",
        choices=multiprocessing.get_all_start_methods(),
    )
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    counts = parse_counts(args.workers)
    if args.records < 1 or args.repeat < 1:
        raise SystemExit("--records and --repeat must be at least 1")
    tmp = tempfile.mkdtemp(prefix="logbench-workers-")
    try:
        project = args.project or bake(os.path.abspath(args.template), tmp)
        src, package = find_package(project)
        started = time.perf_counter()
        figures = measure(
            src,
            package,
            tmp,
            counts,
            args.records,
            args.repeat,
            args.start_method,
            warmup=not args.no_warmup,
            progress=True,
        )
        cores = os.cpu_count()
        usable = len(os.sched_getaffinity(0)) if sys.platform == "linux" else cores
        load = [round(x, 2) for x in os.getloadavg()]
        figures["machine"] = {
            "cores": cores,
            "usable_cores": usable,
            "python": platform.python_version(),
            "load_average_after": load,
        }
        figures["seconds"] = time.perf_counter() - started
        figures["targets"] = targets(figures)
        print(
            f"{usable} usable cores of {cores}, Python {platform.python_version()}, "
            f"load average {' '.join(map(str, load))} after; "
            f"took {figures['seconds']:.0f} s"
        )
        print(render(figures))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as out:
                json.dump(figures, out, indent=2)
        broken = any(
            row["lost"] or row["duplicated"] or row["torn"]
            for row in figures["rows"].values()
        )
        return 1 if broken else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--role"]:
        role_main(sys.argv[2:])
    else:
        sys.exit(main())
