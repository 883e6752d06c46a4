"""The benchmark harness works end to end; timings are reported, never asserted."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE_DIR, run

BENCHMARKS = TEMPLATE_DIR / "benchmarks"


def table_rows(output: str) -> dict[str, list[str]]:
    """First-column name -> cells, for every row of the printed results table."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 7:
            rows[cells[0]] = cells[1:]
    return rows


def test_smoke_run_measures_every_configuration_without_losing_records(
    tmp_path: Path,
) -> None:
    figures = tmp_path / "figures.json"
    result = run(
        sys.executable,
        BENCHMARKS / "run.py",
        "--smoke",
        "--json",
        figures,
        "--variant",
        "unknown-option:no_such_option=1",
        "--variant",
        "bad-answer:log_dir=../outside",
        cwd=tmp_path,
        timeout=120,
    )

    rows = table_rows(result.stdout)
    assert {"article", "project"} <= set(rows), result.stdout
    assert all(cell.endswith("(1.00x)") for cell in rows["article"][:4])
    data = json.loads(figures.read_text(encoding="utf-8"))
    configurations = data["configurations"]
    for name, config in configurations.items():
        assert not config["failed"], f"{name}: {config['failed']}"
        if config["ran"]:
            assert config["lost"] == 0, name
            assert config["medians"]["wall_us"] > 0, name
            assert name in rows, name
    for peer in ("loguru", "structlog"):
        if importlib.util.find_spec(peer) is None:
            assert "is not installed" in configurations[peer]["skipped"]
    assert (
        "no_such_option is not in cookiecutter.json"
        in (configurations["project-unknown-option"]["skipped"])
    )
    assert (
        "Invalid answer: log_dir='../outside'"
        in (configurations["project-bad-answer"]["skipped"])
    )
    assert "Did not run:" in result.stdout
    verdicts = {row["target"]: row["verdict"] for row in data["targets"]}
    assert len(verdicts) == 8
    assert set(verdicts.values()) <= {"PASS", "MISS", "n/a"}
    assert verdicts["workers (4 spawn) vs one process, drained rate ratio"] != "n/a"
    start = "worker start (spawn, Pool(maxtasksperchild=1)) vs no logging"
    assert verdicts[start] != "n/a"
    # A process per task, fork and spawn, with logging: every record once and whole.
    started = data["worker_start"]["rows"]
    assert set(started) == {"fork", "spawn"}
    for row in started.values():
        assert (row["lost"], row["duplicated"], row["torn"]) == (0, 0, 0)
        assert min(row["ms_per_task"]) > 0
    assert "| spawn |" in result.stdout
    # Four spawn workers and one process alone, every record once and whole.
    workers = data["workers"]["rows"]
    assert set(workers) == {"one process", "4"}
    for row in workers.values():
        assert (row["lost"], row["duplicated"], row["torn"]) == (0, 0, 0)
        assert row["records_per_s"] > 0
    assert workers["4"]["workers_peak_mib"] > 0
    assert "| one process |" in result.stdout
    assert str(tmp_path) not in result.stdout


def test_missing_peer_libraries_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    harness = importlib.import_module("run")
    configurations = importlib.import_module("configurations")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        configurations.importlib.util,
        "find_spec",
        lambda name, *a: (
            None if name in {"loguru", "structlog"} else real_find_spec(name, *a)
        ),
    )

    args = harness.parse_args([])
    configs = {c.name: c for c in configurations.configurations(args)}

    assert "loguru is not installed" in str(configs["loguru"].skipped)
    assert "structlog is not installed" in str(configs["structlog"].skipped)
    assert configs["article"].skipped is None
