"""Benchmark the generated project's logging against the article's and its peers.

    python benchmarks/run.py                  # full run, about 3 minutes
    python benchmarks/run.py --smoke          # a few seconds: does it all work?
    python benchmarks/run.py --suite --write-results   # also time the test suite,
                                                       # record benchmarks/RESULTS.md

Each measurement of each configuration runs in a fresh process (child.py) with its
own temporary log directory and its console output sent to /dev/null; the
configurations are interleaved and repeated, and medians are reported as ratios to
the article's configuration. Timings are reported, never judged: the exit status is
non-zero only if a configuration fails to run or loses records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report
import workers
from configurations import Settings, configurations, prepare_projects
from measuring import PROCESSES, measure_all, run_child

HERE = Path(__file__).resolve().parent
TEMPLATE_DIR = HERE.parent
PATH_OPTIONS = ("--json", "--template")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--records", type=int, help="records per emitted/wall run (20000)"
    )
    parser.add_argument("--repeat", type=int, help="repetitions, medians taken (5)")
    parser.add_argument(
        "--filtered-calls", type=int, help="filtered calls per run (1000000)"
    )
    parser.add_argument(
        "--burst", type=int, help="records of the peak-memory burst (1000000)"
    )
    parser.add_argument("--bake-repeat", type=int, help="timed bakes (5)")
    parser.add_argument(
        "--workers",
        type=int,
        default=workers.RATIO_WORKERS,
        help="spawn workers of the workers measurement (4; 0 leaves it out)",
    )
    parser.add_argument(
        "--pool-tasks",
        type=int,
        help="tasks of the worker-start measurement (200; 0 leaves it out)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: check that it all works"
    )
    parser.add_argument(
        "--only", help="comma-separated configuration names (article always runs)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="bake and measure another variant of the template, e.g. "
        "rich:console_style=rich (repeatable)",
    )
    parser.add_argument(
        "--template", type=Path, default=TEMPLATE_DIR, help="template directory"
    )
    parser.add_argument(
        "--suite",
        action="store_true",
        help="also time the template's test suite (pytest --durations=10 -rf)",
    )
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="write the report to benchmarks/RESULTS.md",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="only profile the emitted path of one configuration (cProfile)",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    base = (
        Settings(200, 1, 5000, 2000, 1, warmup=False)
        if args.smoke
        else Settings(20000, 5, 1000000, 1000000, 5, warmup=True)
    )
    for name in ("records", "repeat", "filtered_calls", "burst", "bake_repeat"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
            setattr(base, name, value)
    return base


def measure_workers(
    configs: list, settings: Settings, count: int, tmp: Path, progress: bool
) -> dict | None:
    """The project's spawn workers next to one process, to the same sinks."""
    project = next((c for c in configs if c.name == "project" and c.ran), None)
    if project is None or count < 1:
        return None
    try:
        return workers.measure(
            str(project.src),
            str(project.package),
            str(tmp),
            [count],
            settings.records,
            settings.repeat,
            "spawn",
            warmup=settings.warmup,
            progress=progress,
        )
    except SystemExit as error:  # how workers.py reports a run that failed
        return {"failed": str(error)}


def measure_worker_start(
    configs: list, settings: Settings, tasks: int, tmp: Path
) -> dict | None:
    """A Pool(maxtasksperchild=1)'s workers, fork and spawn, with and without
    the project's logging."""
    project = next((c for c in configs if c.name == "project" and c.ran), None)
    if project is None or tasks < 1:
        return None
    try:
        return workers.measure_start(
            str(project.src),
            str(project.package),
            str(tmp),
            tasks,
            min(settings.repeat, 3),
        )
    except SystemExit as error:  # how workers.py reports a run that failed
        return {"failed": str(error)}


def run_suite(template: Path) -> dict:
    """Time the template's own test suite; keep the slowest and failed tests."""
    command = [sys.executable, "-m", "pytest", "--durations=10", "-q", "-rf"]
    command += ["-p", "no:cacheprovider"]
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=template, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    lines = result.stdout.splitlines()
    slowest = []
    if any("slowest" in line for line in lines):
        start_at = next(i for i, line in enumerate(lines) if "slowest" in line) + 1
        for line in lines[start_at:]:
            if not re.match(r"\d+(\.\d+)?s ", line):
                break
            slowest.append(line)
    summary = next(
        (ln.strip("= ") for ln in reversed(lines) if " in " in ln and "passed" in ln),
        f"exit status {result.returncode}",
    )
    return {
        "seconds": seconds,
        "summary": summary,
        "slowest": slowest,
        "failed": [line for line in lines if line.startswith("FAILED ")],
        "exit": result.returncode,
    }


def machine() -> dict[str, str]:
    """What the figures depend on; no host names, no paths."""
    try:
        os_name = platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, KeyError, AttributeError):
        os_name = platform.platform(terse=True)
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in info if "model name" in ln), ""
            )
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cores": f"{os.cpu_count()} ({usable} usable)"
        if usable
        else str(os.cpu_count()),
        "cpu": cpu or platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{os_name}, {platform.system()} {platform.release()}",
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("loguru", "structlog", "cookiecutter"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def profile(config_name: str, args: argparse.Namespace, tmp: Path) -> int:
    settings = settings_from(args)
    configs = [c for c in configurations(args) if c.name == config_name]
    if not configs:
        raise SystemExit(f"--profile: unknown configuration {config_name!r}")
    [config] = configs
    prepare_projects([config], args.template.resolve(), tmp, settings)
    if not config.ran:
        print(f"{config.name}: skipped: {config.skipped}")
        return 0
    [result] = run_child(config, "records", settings.records, tmp, profile=True)
    print(
        f"{config.name}: {settings.records} records, "
        f"{result['emitted_ns'] / 1e3:.2f} us per call under cProfile "
        f"(profiling inflates it), lost {result['lost']}"
    )
    print(report.clean(result["profile"], tmp, args.template.resolve()))
    return 0


def command_line(argv: list[str]) -> str:
    """The command as run, with file arguments (local paths) shown as FILE."""
    shown, hide = ["python benchmarks/run.py"], False
    for arg in argv:
        option = arg.split("=", 1)[0]
        if hide:
            shown.append("FILE")
        elif option in PATH_OPTIONS and "=" in arg:
            shown.append(f"{option}=FILE")
        else:
            shown.append(arg)
        hide = arg in PATH_OPTIONS
    return " ".join(shown)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    # On SIGTERM as on Ctrl+C: stop the children, remove the temporary files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    template = args.template.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="logbench-"))
    try:
        if args.profile:
            return profile(args.profile, args, tmp)
        started = time.perf_counter()
        configs = configurations(args)
        bake_times = prepare_projects(configs, template, tmp, settings)
        measure_all(configs, settings, tmp, progress=not args.smoke)
        worker_figures = measure_workers(
            configs, settings, args.workers, tmp, progress=not args.smoke
        )
        pool_tasks = args.pool_tasks
        if pool_tasks is None:
            pool_tasks = 10 if args.smoke else workers.POOL_TASKS
        start_figures = measure_worker_start(configs, settings, pool_tasks, tmp)
        suite = run_suite(template) if args.suite else None
        project = next((c for c in configs if c.name == "project" and c.ran), None)
        profiled = None
        if args.write_results and project:
            [result] = run_child(project, "records", settings.records, tmp, True)
            profiled = result["profile"]
        run = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": command_line(argv if argv is not None else sys.argv[1:]),
            "machine": machine(),
            "versions": versions(),
            "settings": settings.__dict__,
            "processes": PROCESSES,
            "bake_seconds": bake_times,
            "workers": worker_figures,
            "worker_start": start_figures,
            "suite": suite,
            "profile": profiled,
            "seconds": time.perf_counter() - started,
        }
        text = report.render(configs, run, tmp, template)
        print(text)
        if args.write_results:
            (HERE / "RESULTS.md").write_text(report.results_md(text, run), "utf-8")
        if args.json:
            args.json.write_text(
                json.dumps(report.as_json(configs, run, tmp, template), indent=2),
                "utf-8",
            )
        broken = [c for c in configs if c.failed or c.lost]
        if report.workers_broken(worker_figures):
            return 1
        return 1 if broken or workers.start_broken(start_figures) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
