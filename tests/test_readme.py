"""The README's commands work as written, and so does cruft."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE_DIR, run, tool

README = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
TEMPLATE_URL = "gh:org/ml-logging-template"


def setup_commands() -> list[str]:
    """The commands of the README's first code block, comments left out."""
    block = re.search(r"```bash\n(.*?)```", README, re.DOTALL)
    assert block is not None
    return [line for line in block[1].splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_two_setup_commands() -> None:
    render, test = setup_commands()
    assert TEMPLATE_URL in render
    assert "pytest" in test
    assert README.index("```bash") < README.index("\n## ")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (TEMPLATE_DIR / ".ci" / "run").read_text(encoding="utf-8")
    assert setup_commands()[1] in ci.splitlines()


@pytest.mark.slow
def test_readme_render_command_works(tmp_path: Path) -> None:
    render = setup_commands()[0].replace(TEMPLATE_URL, str(TEMPLATE_DIR))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    path = f"{venv / 'bin'}:/usr/bin:/bin"
    result = run(
        "bash", "-c", render, cwd=tmp_path, env={"PATH": path, "VIRTUAL_ENV": str(venv)}
    )

    assert "epoch 5/5 valid_loss=" in result.stderr
    assert (tmp_path / "my-ml-project" / "logs" / "info.log").stat().st_size > 0


@pytest.mark.slow
def test_cruft_creates_an_updatable_project(tmp_path: Path) -> None:
    # cruft clones the template, so give it a repository of the files as they are now.
    template = tmp_path / "template"
    shutil.copytree(
        TEMPLATE_DIR,
        template,
        ignore=shutil.ignore_patterns(".git", ".venv*", "__pycache__", "*_cache"),
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    run("git", "init", "-q", cwd=template)
    run(*git, "add", "-A", cwd=template)
    run(*git, "commit", "-qm", "template", cwd=template)

    run(
        tool("cruft"),
        "create",
        "--no-input",
        template,
        "--output-dir",
        tmp_path / "out",
        cwd=tmp_path,
    )

    project = tmp_path / "out" / "my-ml-project"
    state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert state["context"]["cookiecutter"]["package_name"] == "my_ml_project"
    assert (project / "src" / "my_ml_project" / "config.py").is_file()
    run(tool("cruft"), "check", cwd=project)
