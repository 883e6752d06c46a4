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
import importlib.util
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import report

HERE = Path(__file__).resolve().parent
CHILD = HERE / "child.py"
TEMPLATE_DIR = HERE.parent
MEASURES = ("startup", "filtered", "records")  # repeated; "burst" runs once
# Processes per configuration and repetition: the short measurements vary most
# from one process to the next (memory layout, other load), so they get more.
PROCESSES = {"startup": 3, "filtered": 2, "records": 1}
RANK_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "SLURM_NTASKS",
)
# Variants of the template baked besides the defaults; skipped, with the reason,
# while the template has no such option.
VARIANTS: dict[str, dict[str, str]] = {"project-json": {"log_format": "json"}}
RANKS = 2  # processes of the multi-process configuration
PATH_OPTIONS = ("--json", "--template")


@dataclass
class Config:
    name: str
    kind: str  # a setup of peers.py
    about: str
    answers: dict[str, str] | None = None  # cookiecutter answers, for the project
    ranks: int = 1
    package: str | None = None
    src: Path | None = None
    skipped: str | None = None
    failed: str | None = None
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lost: int = 0
    rotated_out: int = 0

    @property
    def ran(self) -> bool:
        return not (self.skipped or self.failed)

    @property
    def measures(self) -> tuple[str, ...]:
        return ("records",) if self.ranks > 1 else MEASURES

    def median(self, key: str) -> float | None:
        values = self.samples.get(key)
        return statistics.median(values) if values else None


class ChildFailed(Exception):
    pass


@dataclass
class Settings:
    records: int
    repeat: int
    filtered_calls: int
    burst: int
    bake_repeat: int
    warmup: bool


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
        help="also time the template's test suite (python -m pytest --durations=10)",
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


def configurations(args: argparse.Namespace) -> list[Config]:
    configs = [
        Config("article", "article", "Made With ML's config.py as written"),
        Config("floor", "floor", "one stdlib FileHandler, detailed format"),
        Config("project", "project", "generated project, default options", {}),
    ]
    variants = dict(VARIANTS)
    for spec in args.variant:
        name, _, pairs = spec.partition(":")
        answers = dict(pair.split("=", 1) for pair in pairs.split(",") if "=" in pair)
        if not name or not answers:
            raise SystemExit(f"--variant {spec!r}: use NAME:KEY=VALUE[,KEY=VALUE]")
        variants[name if name.startswith("project") else f"project-{name}"] = answers
    for name, answers in variants.items():
        about = "generated project, " + ", ".join(
            f"{k}={v}" for k, v in answers.items()
        )
        configs.append(Config(name, "project", about, answers))
    configs.append(
        Config(
            f"project-{RANKS}ranks",
            "project",
            f"generated project, {RANKS} processes (RANK=0..{RANKS - 1}) "
            "logging at once into one log directory",
            {},
            ranks=RANKS,
        )
    )
    configs.append(Config("loguru", "loguru", "loguru, the article's three sinks"))
    configs.append(
        Config(
            "structlog",
            "structlog",
            "structlog filtering bound logger, rendered through the article's "
            "stdlib handlers",
        )
    )
    for library in ("loguru", "structlog"):
        if importlib.util.find_spec(library) is None:
            for config in configs:
                if config.kind == library:
                    config.skipped = (
                        f"{library} is not installed "
                        "(pip install -r benchmarks/requirements.txt)"
                    )
    if args.only:
        wanted = {"article", *args.only.split(",")}
        unknown = wanted - {c.name for c in configs}
        if unknown:
            raise SystemExit(f"--only: unknown configuration(s) {sorted(unknown)}")
        configs = [c for c in configs if c.name in wanted]
    return configs


# Baking ---------------------------------------------------------------------------


def bake(template: Path, out: Path, answers: dict[str, str]) -> float:
    """Render the template with cookiecutter's CLI; return the seconds it took."""
    command = [sys.executable, "-m", "cookiecutter", "--no-input", str(template)]
    command += ["-o", str(out), *(f"{k}={v}" for k, v in answers.items())]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        lines = [ln.strip() for ln in (result.stderr + result.stdout).splitlines()]
        message = next(
            (ln for ln in lines if ln.startswith("Invalid answer:")),
            next((ln for ln in reversed(lines) if ln), "no output"),
        )
        raise ChildFailed(f"bake failed ({message})")
    return seconds


def prepare_projects(
    configs: list[Config], template: Path, tmp: Path, settings: Settings
) -> list[float]:
    """Bake every project configuration; return the timed default bakes."""
    known = set(json.loads((template / "cookiecutter.json").read_text("utf-8")))
    baked: dict[str, tuple[str, Path] | str] = {}
    bake_times: list[float] = []
    for config in configs:
        if config.answers is None or config.skipped:
            continue
        missing = sorted(set(config.answers) - known)
        if missing:
            config.skipped = (
                f"option {', '.join(missing)} is not in cookiecutter.json yet"
            )
            continue
        key = json.dumps(config.answers, sort_keys=True)
        if key not in baked:
            out = Path(tempfile.mkdtemp(prefix="bake-", dir=tmp))
            try:
                seconds = bake(template, out, config.answers)
                if not config.answers:
                    bake_times.append(seconds)
                    for _ in range(settings.bake_repeat - 1):
                        again = Path(tempfile.mkdtemp(prefix="bake-", dir=tmp))
                        bake_times.append(bake(template, again, config.answers))
                        shutil.rmtree(again)
                [project] = [p for p in out.iterdir() if p.is_dir()]
                [package] = [
                    p.name
                    for p in (project / "src").iterdir()
                    if (p / "config.py").is_file()
                ]
                baked[key] = (package, project / "src")
            except (ChildFailed, ValueError) as error:
                baked[key] = str(error)
        if isinstance(baked[key], str):
            config.skipped = str(baked[key])
        else:
            config.package, config.src = baked[key]
    return bake_times


# Running one measurement ------------------------------------------------------------


def child_env(config: Config, rank: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in RANK_VARIABLES and k != "PYTHONDONTWRITEBYTECODE"
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


# Template-level timings -----------------------------------------------------------


def run_suite(template: Path) -> dict:
    """Time the template's own test suite; keep the slowest tests pytest lists."""
    command = [sys.executable, "-m", "pytest", "--durations=10", "-q"]
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
        return 1 if broken else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
