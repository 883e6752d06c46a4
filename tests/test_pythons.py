"""The generated project installs and passes its tests and the machinery's scenarios
on every supported Python."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import (
    PYTHONS,
    assert_passed,
    find_python,
    pinned,
    render_scenarios,
    run,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_project(cookies_session) -> Path:  # type: ignore[no-untyped-def]
    result = cookies_session.bake()
    assert result.exception is None, result.exception
    render_scenarios(Path(result.project_path), dict(result.context))
    return Path(result.project_path)


@pytest.mark.parametrize("version", PYTHONS)
def test_generated_project_on_python(
    version: str, default_project: Path, tmp_path: Path
) -> None:
    python = find_python(version)
    if python is None:
        pytest.skip(f"Python {version} is not installed here")
    venv = tmp_path / "venv"
    run(python, "-m", "venv", venv, cwd=tmp_path)
    venv_python = venv / (
        "Scripts/python.exe" if sys.platform == "win32" else "bin/python"
    )
    run(
        venv_python,
        "-m",
        "pip",
        "install",
        "-q",
        "-e",
        default_project,
        *pinned("pytest", "tqdm"),  # tqdm: the console's progress-bar test
        cwd=tmp_path,
    )

    # The slow scenarios (many processes, minutes) run on this interpreter in
    # test_bake.py; every Python runs the quick ones, which cover each path.
    slow = ["-m", "not slow"]
    tests = run(
        venv_python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *slow,
        default_project / "tests",
        default_project / "scenarios",
        cwd=default_project,
        env={"PYTHONDONTWRITEBYTECODE": "1"},
        timeout=1200,  # many-process and fault scenarios included
    )
    # This venv holds the project, pytest and tqdm: the scenarios of other
    # libraries skip, and so do the attacks as another uid (a venv in a private
    # temporary directory); test_bake.py runs them all on the main interpreter.
    assert_passed(tests.stdout, ("could not import", "a Python that uid can start"))
    demo = run(
        venv.joinpath("bin", "my-ml-project"),
        "--epochs",
        "1",
        cwd=tmp_path,
        env={"MY_ML_PROJECT_LOG_DIR": str(tmp_path / "logs")},
    )
    assert "epoch 1/1 valid_loss=" in demo.stderr
    assert (tmp_path / "logs" / "info.log").stat().st_size > 0
