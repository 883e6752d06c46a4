"""Shared helpers: bake the template with real cookiecutter, run what it made."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
# The machinery's scenarios: Jinja templates of tests, rendered into a baked project
# by render_scenarios(), never part of the project a user gets.
SCENARIOS_DIR = TEMPLATE_DIR / "scenarios"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def run(
    *command: str | os.PathLike[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on an unexpected exit status, fail with its output."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def tool(name: str) -> str:
    """A console script installed beside this interpreter (the test venv's)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(
        name
    )
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return found


Bake = Callable[..., Path]


@pytest.fixture
def bake(cookies) -> Bake:  # type: ignore[no-untyped-def]
    """Render the template with these answers and return the project directory."""

    def bake(**answers: object) -> Path:
        result = cookies.bake(extra_context=answers)
        assert result.exception is None, result.exception
        assert result.exit_code == 0
        return Path(result.project_path)

    return bake


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every baked project: torch's stubs are parsed once."""
    return tmp_path_factory.mktemp("mypy-cache")


def render_scenarios(project: Path, context: dict[str, object]) -> Path:
    """Render the machinery's scenarios with the answers a project was baked with.

    They land in <project>/scenarios, where they import the package from src/ and
    read the project's lnav format, as the generated tests once did.
    """
    from cookiecutter.environment import StrictEnvironment

    if str(TEMPLATE_DIR) not in sys.path:  # for the template's Jinja extensions
        sys.path.insert(0, str(TEMPLATE_DIR))
    environment = StrictEnvironment(
        context={"cookiecutter": context}, keep_trailing_newline=True
    )
    target = project / "scenarios"
    target.mkdir(exist_ok=True)
    for source in sorted(SCENARIOS_DIR.iterdir()):
        if not source.is_file() or source.name.startswith("."):  # caches
            continue
        if source.name == "test_json.py" and context["log_format"] != "json":
            continue
        text = source.read_text(encoding="utf-8")
        if source.suffix == ".py":
            text = environment.from_string(text).render(cookiecutter=context)
        (target / source.name).write_text(text, encoding="utf-8")
    return target


def project_env(project: Path) -> dict[str, str]:
    """Environment to run a baked project from its source tree, uninstalled."""
    return {"PYTHONPATH": str(project / "src"), "PYTHONDONTWRITEBYTECODE": "1"}


def find_python(version: str) -> str | None:
    """An interpreter of this minor version: on PATH, or installed with pyenv."""
    candidates = [shutil.which(f"python{version}")]
    if shutil.which("pyenv"):
        prefix = subprocess.run(
            ["pyenv", "prefix", version], capture_output=True, text=True
        ).stdout.strip()
        if prefix:
            candidates.append(str(Path(prefix) / "bin" / f"python{version}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def pinned(*names: str) -> list[str]:
    """The requirements-dev.txt lines that pin these packages, e.g. "tqdm==4.70.1"."""
    lines = (TEMPLATE_DIR / "requirements-dev.txt").read_text().splitlines()
    return [line for line in lines if line.split("==")[0] in names]


def assert_passed(output: str, also_skipped: tuple[str, ...] = ()) -> None:
    """A generated project's tests all passed; only optional libraries may skip,
    and the tests whose skip reasons hold one of ``also_skipped``."""
    lines = output.splitlines()
    summary = r"\d+ passed(, \d+ skipped)?(, \d+ deselected)? in .*"
    assert re.fullmatch(summary, lines[-1]), lines[-1]
    skipped = [line for line in lines if line.startswith("SKIPPED")]
    optional = ("could not import 'transformers'", "could not import 'torch'")
    allowed = optional + also_skipped
    assert all(any(o in line for o in allowed) for line in skipped), skipped
