"""Turn the measured samples into the printed table, the targets and RESULTS.md."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

import workers

if TYPE_CHECKING:
    from configurations import Config

REFERENCE = "article"
PROJECT = "project"
JSON_VARIANT = "project-json"
# (column, sample key, number format)
COLUMNS = (
    ("filtered ns/call", "filtered_ns", "{:.0f}"),
    ("emitted us/call", "emitted_us", "{:.2f}"),
    ("wall us/record", "wall_us", "{:.2f}"),
    ("startup ms", "startup_ms", "{:.1f}"),
    ("peak MiB", "peak_mib", "{:.1f}"),
)
MIN_PEAK_FOR_RATIO = 1.0  # MiB: below it a ratio of growths means nothing


def clean(text: str, tmp: Path, template: Path) -> str:
    """Keep this machine's paths out of what gets printed and recorded."""
    for path, name in ((tmp, "<tmp>"), (template, "<template>"), (Path.home(), "~")):
        text = text.replace(str(path), name)
    return text


def by_name(configs: list[Config]) -> dict[str, Config]:
    return {config.name: config for config in configs}


def ratio(config: Config, reference: Config | None, key: str) -> float | None:
    """The median of the ratios of measurements taken side by side (the same
    repetition and slot, seconds apart): load from elsewhere that comes and goes
    over minutes then weighs on both sides of each ratio. Where the two were
    not measured as many times, the ratio of the medians."""
    base = reference.median(key) if reference else None
    if key == "peak_mib" and base is not None and base < MIN_PEAK_FOR_RATIO:
        return None
    values = config.samples.get(key) or []
    bases = (reference.samples.get(key) if reference else None) or []
    if values and len(values) == len(bases) and all(bases):
        return statistics.median(v / b for v, b in zip(values, bases, strict=True))
    return ratio_of_medians(config, reference, key)


def ratio_of_medians(
    config: Config, reference: Config | None, key: str
) -> float | None:
    """The ratio as runs before side-by-side ratios gave it."""
    value, base = config.median(key), reference.median(key) if reference else None
    return value / base if value is not None and base else None


def cell(config: Config, reference: Config | None, key: str, fmt: str) -> str:
    value = config.median(key)
    if value is None:
        return "-"
    share = ratio(config, reference, key)
    return fmt.format(value) + (f" ({share:.2f}x)" if share is not None else "")


def table(configs: list[Config]) -> list[str]:
    reference = by_name(configs).get(REFERENCE)
    header = ["configuration", *(c[0] for c in COLUMNS), "lost"]
    lines = [
        "| " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * (len(header) - 1),
    ]
    for config in configs:
        if not config.ran:
            continue
        cells = [cell(config, reference, key, fmt) for _, key, fmt in COLUMNS]
        lines.append(
            f"| {config.name} | " + " | ".join([*cells, str(config.lost)]) + " |"
        )
    return lines


def targets(
    configs: list[Config],
    worker_figures: dict | None = None,
    start_figures: dict | None = None,
) -> list[dict[str, str]]:
    """The issues' targets for the generated project (default options)."""
    named = by_name(configs)
    project, reference = named.get(PROJECT), named.get(REFERENCE)
    rows: list[dict[str, str]] = []

    def add(name: str, value: float | None, limit: float, unit: str = "x") -> None:
        if value is None:
            rows.append({"target": name, "value": "n/a", "limit": "", "verdict": "n/a"})
            return
        rows.append(
            {
                "target": name,
                "value": f"{value:.2f}{unit}",
                "limit": f"<= {limit:g}{unit}",
                "verdict": "PASS" if value <= limit else "MISS",
            }
        )

    ran = project is not None and project.ran and reference is not None
    for name, key, limit in (
        ("filtered (vs article)", "filtered_ns", 1.05),
        ("emitted, call site (vs article)", "emitted_us", 0.4),
        ("wall per record (vs article)", "wall_us", 0.8),
        ("startup (vs article)", "startup_ms", 1.5),
    ):
        add(name, ratio(project, reference, key) if ran else None, limit)
        if ran:
            rows[-1]["medians"] = _times(ratio_of_medians(project, reference, key))
    if ran and rows[2]["verdict"] == "PASS" and project.lost:
        rows[2]["verdict"] = f"MISS ({project.lost} lost)"
    if ran:
        rows[2]["value"] += f", lost {project.lost}"
    json_variant = named.get(JSON_VARIANT)
    json_ratio = None
    if ran and json_variant is not None and json_variant.ran:
        json_ratio = ratio(json_variant, project, "wall_us")
    add("JSON format, wall per record (vs text)", json_ratio, 1.15)
    if json_ratio is not None:
        rows[-1]["medians"] = _times(ratio_of_medians(json_variant, project, "wall_us"))
    if json_ratio is None and json_variant is not None and json_variant.skipped:
        rows[-1]["value"] = f"n/a ({JSON_VARIANT} skipped)"
    add(
        "peak memory growth, burst",
        project.median("peak_mib") if ran else None,
        64,
        " MiB",
    )
    ratio_row = f"workers ({workers.RATIO_WORKERS} spawn) vs one process"
    found = (
        [
            t
            for t in workers.targets(worker_figures)
            if t["target"].startswith(ratio_row)
        ]
        if worker_figures and "rows" in worker_figures
        else []
    )
    if found:
        rows.append({**found[0], "target": ratio_row + ", drained rate ratio"})
    else:
        add(ratio_row + ", drained rate ratio", None, 1.0)
        if worker_figures and "failed" in worker_figures:
            rows[-1]["verdict"] = "FAILED"
    rows.append(workers.start_target(start_figures))
    return rows


def workers_broken(worker_figures: dict | None) -> bool:
    """Did the workers measurement fail, or lose, repeat or tear a record?"""
    if not worker_figures:
        return False
    if "failed" in worker_figures:
        return True
    return any(
        row["lost"] or row["duplicated"] or row["torn"]
        for row in worker_figures["rows"].values()
    )


def worker_lines(worker_figures: dict | None) -> list[str]:
    if not worker_figures:
        return []
    if "failed" in worker_figures:
        return [f"Workers: FAILED: {worker_figures['failed']}", ""]
    return [
        f"Workers: the generated project, spawn workers of a `ProcessPoolExecutor"
        f"(initializer=worker_logging())` logging {worker_figures['records']:,} "
        "records each at once, next to one process logging as many records alone; "
        "timed until `logging.shutdown()` returns in the parent (medians of "
        f"{worker_figures['repeat']}; lost, duplicated and torn summed):",
        "",
        *workers.table(worker_figures),
        "",
    ]


def start_lines(figures: dict | None) -> list[str]:
    if not figures:
        return []
    if "failed" in figures:
        return [f"Worker start: FAILED: {figures['failed']}", ""]
    return [
        f"Worker start: {figures['tasks']} tasks through `Pool("
        f"{workers.POOL_PROCESSES}, maxtasksperchild=1)`, a process each, "
        f"{workers.POOL_RECORDS} records a task; with logging set up (spawn: "
        "`initializer=worker_logging()`) and without, timed until every worker "
        f"has exited (medians of {figures['repeat']}; the ratio is the median of "
        "side-by-side ratios):",
        "",
        *workers.start_table(figures),
        "",
    ]


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def target_lines(
    configs: list[Config], worker_figures: dict | None, start_figures: dict | None
) -> list[str]:
    lines = [
        "| target | this run | ratio of the medians | limit | verdict |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in targets(configs, worker_figures, start_figures):
        lines.append(
            f"| {row['target']} | {row['value']} | {row.get('medians', '-')} "
            f"| {row['limit']} | {row['verdict']} |"
        )
    return lines


def notes(configs: list[Config], run: dict) -> list[str]:
    settings = run["settings"]
    empty = [c.median("empty_call_ns") for c in configs if c.median("empty_call_ns")]
    processes = run["processes"]
    lines = [
        (
            "- Medians over fresh processes, one per measurement of each "
            "configuration "
            f"(per repetition: {processes['startup']} startup, {processes['filtered']} "
            f"filtered, {processes['records']} emitted/wall), {settings['repeat']} "
            "repetitions with the configurations interleaved, console output to "
            "/dev/null. Ratios are to the article's configuration in the same run: "
            "the median of the ratios of measurements taken side by side (same "
            "repetition and slot), which load from elsewhere weighs on alike; the "
            "targets also show the ratio of the medians."
        ),
        (
            f'- filtered: one `logger.debug("step %d loss %.4f", i, x)` below the '
            f"threshold, loop included: the fastest of 10 batches of "
            f"{settings['filtered_calls'] // 10} calls in each process."
        ),
    ]
    if empty:
        lines.append(
            f"  The same loop calling an empty method costs "
            f"{statistics.median(empty):.0f} ns per call: not subtracted above."
        )
    lines += [
        (
            f"- emitted: one `logger.info(...)` at the call site, to every sink, over "
            f"{settings['records']} records; wall: the same run from the first call "
            "until after the library's shutdown and every exit handler (flush, drain)."
        ),
        "- startup: importing the configuration and running its setup, in a fresh "
        "interpreter"
        + (" (bytecode compiled by a warm-up run)." if settings["warmup"] else "."),
        (
            f"- peak MiB: growth of the peak RSS (VmHWM, reset before the burst) over "
            f"the RSS before a burst of {settings['burst']} records, once per "
            f"configuration; ratios are left out while the article's growth is under "
            f"{MIN_PEAK_FOR_RATIO:g} MiB."
        ),
        (
            "- lost: records missing from every file of the log directory (rotated "
            "ones included) after the process ended, summed over all runs; in the "
            "burst, files deleted past the retention limit are not counted as lost."
        ),
    ]
    rotated = [c for c in configs if c.rotated_out]
    for config in rotated:
        lines.append(
            f"  {config.name}: {config.rotated_out} burst records were rotated out "
            "past the retention limit (by design)."
        )
    ranks = [c for c in configs if c.ranks > 1 and c.ran]
    for config in ranks:
        lines.append(
            f"- {config.name}: {config.ranks} processes at once, figures per process "
            "and record (records measurement only)."
        )
    return lines


def render(configs: list[Config], run: dict, tmp: Path, template: Path) -> str:
    machine = run["machine"]
    out = [
        "## Logging benchmark",
        "",
        f"- Date: {run['date']}",
        f"- Machine: {machine['cores']} cores, {machine['cpu']}; {machine['os']}",
        f"- Python: {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in run["versions"].items()),
        "",
        *table(configs),
        "",
        *worker_lines(run.get("workers")),
        *start_lines(run.get("worker_start")),
    ]
    missing = [c for c in configs if not c.ran]
    if missing:
        out.append("Did not run:")
        out += [
            f"- {c.name}: "
            + ("skipped: " + c.skipped if c.skipped else f"FAILED: {c.failed}")
            for c in missing
        ]
        out.append("")
    out += [
        "Targets for the generated project (default options), report only:",
        "",
        *target_lines(configs, run.get("workers"), run.get("worker_start")),
        "",
        *notes(configs, run),
        "",
        "Configurations:",
        "",
        *(f"- {c.name}: {c.about}" for c in configs),
        "",
    ]
    bakes = run["bake_seconds"]
    if bakes:
        out.append(
            f"Bake time of the default template (`cookiecutter --no-input`, "
            f"interpreter start included): median {statistics.median(bakes):.2f} s "
            f"of {len(bakes)} bakes (min {min(bakes):.2f} s, max {max(bakes):.2f} s)."
        )
    suite = run["suite"]
    if suite:
        out += [
            "",
            (
                f"Template test suite (`python -m pytest --durations=10 -rf`): "
                f"{suite['seconds']:.0f} s wall, {suite['summary']}. Slowest tests:"
            ),
            "",
            "```text",
            *suite["slowest"],
            "```",
        ]
        if suite.get("failed"):
            out += ["", "Failed:", "", "```text", *suite["failed"], "```"]
    if run.get("profile"):
        out += [
            "",
            (
                f"Where the generated project's emitted time goes: cProfile of one run "
                f"of {run['settings']['records']} records, by own time (profiling "
                "inflates the absolute figures):"
            ),
            "",
            "```text",
            *run["profile"].strip("\n").splitlines(),
            "```",
        ]
    out.append(f"\nThis run took {run['seconds']:.0f} s.")
    return clean("\n".join(out), tmp, template)


def results_md(text: str, run: dict) -> str:
    return (
        "# Benchmark results\n\n"
        "Written by `python benchmarks/run.py --suite --write-results`; see "
        "[README.md](README.md) for what each figure means. Timings depend on the "
        "machine and its load: compare the ratios, which come from one run.\n\n"
        f"Command: `{run['command']}`\n\n"
        + text.removeprefix("## Logging benchmark\n").lstrip("\n")
    )


def as_json(configs: list[Config], run: dict, tmp: Path, template: Path) -> dict:
    def scrub(text: str | None) -> str | None:
        return clean(text, tmp, template) if text else text

    return {
        **{k: v for k, v in run.items() if k != "suite"},
        "suite": run["suite"],
        "configurations": {
            c.name: {
                "ran": c.ran,
                "skipped": scrub(c.skipped),
                "failed": scrub(c.failed),
                "lost": c.lost,
                "rotated_out": c.rotated_out,
                "medians": {key: c.median(key) for key in c.samples},
                "samples": dict(c.samples),
            }
            for c in configs
        },
        "targets": targets(configs, run.get("workers"), run.get("worker_start")),
    }
