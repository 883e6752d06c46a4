"""lnav reads the log files with the shipped format: levels, ranks, SQL."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import config

PACKAGE = config.__name__.rpartition(".")[0]
TABLE = f"{PACKAGE}_log"  # the format's name: lnav's SQL table
FORMAT = Path(__file__).resolve().parents[1] / "lnav" / f"{TABLE}.json"
# The column that holds a record's traceback.
TRACEBACK = "{{ 'exception' if cookiecutter.log_format == 'json' else 'log_body' }}"
# Records per level for each rank; the ranks differ, so a wrong GROUP BY shows.
PLAN = {
    0: {"DEBUG": 2, "INFO": 5, "WARNING": 3, "ERROR": 2, "CRITICAL": 1},
    1: {"DEBUG": 1, "INFO": 4, "WARNING": 2, "ERROR": 3, "CRITICAL": 2},
}
SCRIPT = """
import logging, os
from {{ cookiecutter.package_name }} import config
config.RUN_DIRS_KEPT = None  # both ranks' files straight in the log directory
config.LOGGING_CONFIG["root"]["level"] = "DEBUG"
config.LOGGING_CONFIG["handlers"]["info"]["level"] = "DEBUG"
config.setup_logging({log_dir!r})
log = logging.getLogger("lnav-test")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("step failed\\nsecond line")  # one of the ERROR records
for level, count in {plan!r}.items():
    for n in range(count - (level == "ERROR")):
        log.log(getattr(logging, level), "%s record %d", level, n)
"""

pytestmark = pytest.mark.skipif(shutil.which("lnav") is None, reason="needs lnav")


def lnav(tmp_path: Path, *args: str) -> str:
    """Run lnav headless with only the shipped format installed; return stdout."""
    formats = tmp_path / "lnav-config" / "formats" / PACKAGE
    formats.mkdir(parents=True, exist_ok=True)
    shutil.copy(FORMAT, formats)
    result = subprocess.run(
        ["lnav", "-I", str(tmp_path / "lnav-config"), "-n", *args],
        env={**os.environ, "HOME": str(tmp_path)},  # lnav keeps its state there
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # lnav exits 0 even when a command fails: the error is on standard error.
    assert result.returncode == 0 and "✘" not in result.stderr, result.stderr
    return result.stdout


def query(tmp_path: Path, sql: str, files: list[Path]) -> list[dict[str, str]]:
    out = lnav(tmp_path, "-c", f";{sql}", "-c", ":write-csv-to -", *map(str, files))
    return list(csv.DictReader(io.StringIO(out)))


@pytest.fixture
def two_ranks(tmp_path: Path) -> list[Path]:
    """info.log and info.rank1.log of one two-rank job, with PLAN's records."""
    log_dir = tmp_path / "logs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "WORLD_SIZE": "2"}
    env[config.RUN_ID_ENV] = "lnav-job"
    for rank, plan in PLAN.items():
        subprocess.run(
            [sys.executable, "-c", SCRIPT.format(log_dir=str(log_dir), plan=plan)],
            env={**env, "RANK": str(rank)},
            capture_output=True,
            check=True,
            timeout=60,
        )
    return [log_dir / "info.log", log_dir / "info.rank1.log"]


def test_lnav_counts_records_per_rank_and_level(
    tmp_path: Path, two_ranks: list[Path]
) -> None:
    files = query(tmp_path, "SELECT format FROM lnav_file", two_ranks)
    assert [row["format"] for row in files] == [TABLE, TABLE]

    sql = f"SELECT rank, log_level, count(*) AS n FROM {TABLE} GROUP BY rank, log_level"
    counts = {
        (int(row["rank"]), row["log_level"]): int(row["n"])
        for row in query(tmp_path, sql, two_ranks)
    }
    assert counts == {
        (rank, level.lower()): n
        for rank, plan in PLAN.items()
        for level, n in plan.items()
    }


def test_lnav_keeps_the_traceback_with_its_record(
    tmp_path: Path, two_ranks: list[Path]
) -> None:
    sql = (
        f"SELECT rank, run_id, {TRACEBACK} AS traceback FROM {TABLE} "
        "WHERE log_body LIKE 'step failed%' ORDER BY rank"
    )
    rows = query(tmp_path, sql, two_ranks)
    assert [(row["rank"], row["run_id"]) for row in rows] == [
        ("0", "lnav-job"),
        ("1", "lnav-job"),
    ]
    for row in rows:
        assert row["traceback"].rstrip().endswith("ZeroDivisionError: division by zero")


def test_lnav_merges_the_ranks_and_filters_by_level(
    tmp_path: Path, two_ranks: list[Path]
) -> None:
    view = lnav(tmp_path, "-c", ":set-min-log-level error", *map(str, two_ranks))
    heads = [line for line in view.splitlines() if " run=lnav-job rank=" in line]
    assert len(heads) == sum(plan["ERROR"] + plan["CRITICAL"] for plan in PLAN.values())
    assert all("ERROR" in line or "CRITICAL" in line for line in heads)
    assert {"rank=0", "rank=1"} <= {word for line in heads for word in line.split()}
