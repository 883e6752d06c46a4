"""What the benchmark runs: the configurations, and the baked projects they use.

A configuration is one logging setup of peers.py (the article's, the generated
project's, a peer library's); the project configurations each use a bake of the
template with their own answers. Each configuration keeps its samples.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

MEASURES = ("startup", "filtered", "records")  # repeated; "burst" runs once
# Variants of the template baked besides the defaults; skipped, with the reason,
# while the template has no such option.
VARIANTS: dict[str, dict[str, str]] = {"project-json": {"log_format": "json"}}
RANKS = 2  # processes of the multi-process configuration


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
