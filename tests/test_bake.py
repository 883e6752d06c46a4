"""Bake option combinations and check each project as its users meet it."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tomllib
import yaml
from conftest import assert_pytest_passed, project_env, run, tool

# Every value of every option appears at least once.
COMBINATIONS: dict[str, dict[str, str]] = {
    "defaults": {},
    "verbose-nested-dir": {
        "project_name": "Vision Transformer Sweep",
        "log_dir": "var/log/train",
        "log_level": "DEBUG",
        "console_log_level": "DEBUG",
        "info_log_level": "DEBUG",
        "error_log_level": "WARNING",
        "log_max_mb": "0.5",
        "log_backup_count": "3",
    },
    "quiet": {
        "project_name": "quiet_job",
        "log_level": "WARNING",
        "console_log_level": "ERROR",
        "info_log_level": "WARNING",
        "error_log_level": "CRITICAL",
        "log_max_mb": "100",
        "log_backup_count": "1",
    },
    "errors-only": {
        "log_level": "ERROR",
        "console_log_level": "CRITICAL",
        "info_log_level": "ERROR",
        "error_log_level": "ERROR",
    },
    "awkward-text": {
        "project_name": "Ünïcode Project 2",
        "description": "Quotes \" ' \\ back\\slash, { braces }, tab\tand\nnewline 😀",
        "author_name": 'O\'Brien "Q" \\',
        "author_email": "",
    },
    "longest-names": {
        "project_name": "x" * 50,
        "log_dir": "deeply-nested.log-dir/" * 2 + "d" * 16,
    },
}
SLOW = pytest.mark.slow
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DETAILED = re.compile(
    r"(?P<level>[A-Z]+) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    r"run=\S+ rank=0 \[\w+\.py:\w+:\d+\] (?P<message>\S.*)"
)
JINJA_LEFTOVERS = re.compile(r"\{\{|\{%|\{#|cookiecutter\.")


@dataclass
class Baked:
    path: Path
    answers: dict[str, str]
    files: list[Path] = field(default_factory=list)  # as rendered, before any run

    @property
    def log_dir(self) -> Path:
        return self.path / self.answers["log_dir"]

    def levels_reaching(self, handler: str) -> list[str]:
        """Levels that pass both the overall threshold and the handler's own."""
        overall = LEVELS.index(self.answers["log_level"])
        own = LEVELS.index(self.answers[f"{handler}_log_level"])
        return LEVELS[max(overall, own) :]

    def run_demo(self, *args: str) -> subprocess.CompletedProcess[str]:
        shutil.rmtree(self.log_dir, ignore_errors=True)
        return run(
            sys.executable,
            "-m",
            self.answers["package_name"],
            *args,
            cwd=self.path,
            env=project_env(self.path),
            check=False,
        )


@pytest.fixture(
    scope="module",
    params=[  # the quick run (-m "not slow") checks the defaults only
        pytest.param(answers, id=name, marks=() if name == "defaults" else SLOW)
        for name, answers in COMBINATIONS.items()
    ],
)
def baked(request: pytest.FixtureRequest, cookies_session) -> Baked:  # type: ignore[no-untyped-def]
    result = cookies_session.bake(extra_context=request.param)
    assert result.exception is None, result.exception
    path = Path(result.project_path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return Baked(path, dict(result.context), files)


def log_lines(path: Path) -> list[re.Match[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    matches = [DETAILED.fullmatch(line) for line in lines]
    assert all(matches), f"{path.name}: a line is not in the detailed format: {lines}"
    return [match for match in matches if match]


def test_expected_files_exist(baked: Baked) -> None:
    package = baked.answers["package_name"]
    relative = {path.relative_to(baked.path).as_posix() for path in baked.files}
    assert relative >= {
        ".gitattributes",
        ".github/workflows/ci.yml",
        ".gitignore",
        ".pre-commit-config.yaml",
        "README.md",
        "pyproject.toml",
        f"src/{package}/__init__.py",
        f"src/{package}/__main__.py",
        f"src/{package}/config.py",
        f"src/{package}/log_context.py",
        f"src/{package}/log_handlers.py",
        f"src/{package}/log_queue.py",
        f"src/{package}/main.py",
        f"src/{package}/py.typed",
        "tests/conftest.py",
        "tests/test_config.py",
        "tests/test_main.py",
        "tests/test_processes.py",
    }


def test_files_read_as_written_by_hand(baked: Baked) -> None:
    for path in baked.files:
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(baked.path)
        if not text:  # e.g. the py.typed marker
            continue
        if path.name != "ci.yml":  # GitHub's own ${{ }} expressions
            assert not JINJA_LEFTOVERS.search(text), f"{name}: Jinja left over"
        assert not text.startswith("\n"), f"{name}: starts with a blank line"
        assert text.endswith("\n"), f"{name}: no newline at the end"
        assert not text.endswith("\n\n"), f"{name}: blank lines at the end"
        assert "\n\n\n\n" not in text, f"{name}: stray blank lines"
        assert not re.search(r"[ \t]+$", text, re.MULTILINE), f"{name}: trailing blanks"


def test_data_and_code_parse(baked: Baked) -> None:
    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["name"] == baked.answers["project_slug"]
    assert pyproject["project"]["description"] == baked.answers["description"]
    assert pyproject["project"]["authors"][0]["name"] == baked.answers["author_name"]
    for path in baked.files:
        if path.suffix in {".yml", ".yaml"}:
            assert yaml.safe_load(path.read_text(encoding="utf-8")), path
        if path.suffix == ".py":
            ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_lint_and_types_are_clean(baked: Baked, mypy_cache: Path) -> None:
    run(tool("ruff"), "check", "--no-cache", ".", cwd=baked.path)
    run(tool("ruff"), "format", "--no-cache", "--check", ".", cwd=baked.path)
    run(tool("mypy"), "--cache-dir", mypy_cache, cwd=baked.path)


def test_generated_test_suite_passes(baked: Baked) -> None:
    result = run(
        sys.executable,
        *("-m", "pytest", "-q", "-p", "no:cacheprovider"),
        cwd=baked.path,
        env=project_env(baked.path),
    )
    assert_pytest_passed(result.stdout)


def test_main_script_logs_a_run(baked: Baked) -> None:
    result = baked.run_demo("--epochs", "2")

    assert result.returncode == 0, result.stderr
    info = log_lines(baked.log_dir / "info.log")
    assert {line["level"] for line in info} <= set(baked.levels_reaching("info"))
    if "INFO" in baked.levels_reaching("info"):
        messages = [line["message"] for line in info]
        assert messages[0].startswith("Training started: {'epochs': 2")
        epochs = [m.split()[1] for m in messages if "valid_loss=" in m]
        assert epochs == ["1/2", "2/2"]
        assert messages[-1] == f"Logs are in {baked.log_dir}"
    assert log_lines(baked.log_dir / "error.log") == []
    console = result.stderr.splitlines()
    assert not any(map(DETAILED.fullmatch, console)), "console lines are minimal"
    if "INFO" in baked.levels_reaching("console"):
        assert console[-1] == f"Logs are in {baked.log_dir}"
    else:
        assert console == []


def test_main_script_logs_a_failed_run_as_an_error(baked: Baked) -> None:
    result = baked.run_demo("--lr", "5")

    assert result.returncode == 1
    for handler in ("info", "error"):
        errors = [
            line["message"]
            for line in log_lines(baked.log_dir / f"{handler}.log")
            if line["level"] == "ERROR"
        ]
        reaches = "ERROR" in baked.levels_reaching(handler)
        assert len(errors) == reaches, handler
        assert all(m.startswith("Training diverged: validation loss") for m in errors)
    error_levels = {line["level"] for line in log_lines(baked.log_dir / "error.log")}
    assert error_levels <= set(baked.levels_reaching("error"))
    reaches_console = "ERROR" in baked.levels_reaching("console")
    assert ("Training diverged" in result.stderr) == reaches_console


def test_logs_are_ignored_by_git(baked: Baked) -> None:
    baked.run_demo("--epochs", "1")
    run("git", "init", "-q", cwd=baked.path)

    for name in ("info.log", "error.log"):
        run("git", "check-ignore", "-q", baked.log_dir / name, cwd=baked.path)
    status = run(
        "git", "status", "--porcelain", "--untracked-files=all", cwd=baked.path
    )
    assert ".log" not in status.stdout
