"""The READMEs' commands work as written, and so does cruft."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import TEMPLATE_DIR, Bake, run, tool
from cookiecutter.main import cookiecutter

README = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
TEMPLATE_URL = "gh:org/ml-logging-template"


def bash_blocks(readme: str) -> list[list[str]]:
    """The commands of each ```bash block, comments left out."""
    return [
        [line for line in block.splitlines() if line and not line.startswith("#")]
        for block in re.findall(r"```bash\n(.*?)```", readme, re.DOTALL)
    ]


def block_starting(readme: str, start: str) -> list[str]:
    """The commands of the first ```bash block whose first command starts so."""
    return next(b for b in bash_blocks(readme) if b[0].startswith(start))


def setup_commands() -> list[str]:
    """The README's opening block: the render command, then the test command."""
    return bash_blocks(README)[0]


def without_comment(command: str) -> str:
    return command.split("  #", 1)[0].strip()


def uv_only_env(tmp_path: Path) -> dict[str, str]:
    """This environment, with uv and uvx the only tools besides the system's.

    As on a machine with uv and a system Python but no cookiecutter: the rest of
    the environment (certificates, proxies, uv's cache) is passed through.
    """
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (pip install -r requirements-dev.txt)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("uv", "uvx"):
        (bin_dir / name).symlink_to(Path(uv).with_name(name))
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    return env


def run_shell(
    command: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run a command line in bash with exactly this environment."""
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{command} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def test_readme_opens_with_two_setup_commands() -> None:
    render, test = setup_commands()
    assert render.startswith("uvx cookiecutter ")
    assert TEMPLATE_URL in render
    assert "pytest" in test
    assert README.index("```bash") < README.index("\n## ")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (TEMPLATE_DIR / ".ci" / "run").read_text(encoding="utf-8")
    assert setup_commands()[1] in ci.splitlines()


def section(readme: str, heading: str) -> str:
    """The text under a ``## heading``, up to the next one."""
    return readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_lists_the_prompts_a_bake_asks() -> None:
    context = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))
    asked = [key for key in context if not key.startswith("_")]
    rows = re.findall(r"^\| ((?:`\w+`(?:, )?)+) \|", section(README, "Prompts"), re.M)
    listed = [key.strip("`") for row in rows for key in row.split(", ")]
    assert listed == asked


def tree_paths(readme: str) -> list[str]:
    """The paths of the "What you get" tree, relative to the project."""
    [tree] = re.findall(r"```text\nmy-ml-project/\n(.*?)```", readme, re.DOTALL)
    parents: list[str] = []
    paths = []
    for line in tree.splitlines():
        marker = re.search(r"[├└]── ", line)
        assert marker, line
        depth = marker.start() // 4
        name = line[marker.end() :].split()[0]
        parents = parents[:depth]
        paths.append("/".join([*parents, name.rstrip("/")]))
        if name.endswith("/"):
            parents.append(name.rstrip("/"))
    return paths


def test_readme_tree_is_what_a_bake_makes(bake: Bake) -> None:
    project = bake(log_format="json")  # every module, json_format.py included
    paths = tree_paths(README)

    missing = [path for path in paths if not (project / path).exists()]
    assert not missing, f"in the tree, not in a bake: {missing}"
    unlisted = {p.name for p in project.iterdir()} - {p.split("/")[0] for p in paths}
    assert not unlisted, f"in a bake, not in the tree: {unlisted}"
    tests = {p.relative_to(project).as_posix() for p in project.glob("tests/*")}
    assert tests == {path for path in paths if path.startswith("tests/")}


@pytest.mark.slow
def test_readme_render_command_works_with_only_uv(tmp_path: Path) -> None:
    env = uv_only_env(tmp_path)
    render = setup_commands()[0].replace(TEMPLATE_URL, str(TEMPLATE_DIR))

    result = run_shell(render, tmp_path, env)

    assert "epoch 5/5 valid_loss=" in result.stderr
    assert (tmp_path / "my-ml-project" / "logs" / "info.log").stat().st_size > 0


@pytest.mark.slow
def test_readme_pip_command_works_in_a_virtual_environment(tmp_path: Path) -> None:
    [render] = block_starting(README, "python3 -m pip install cookiecutter")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    path = f"{venv / 'bin'}:/usr/bin:/bin"
    result = run(
        "bash",
        "-c",
        render.replace(TEMPLATE_URL, str(TEMPLATE_DIR)),
        cwd=tmp_path,
        env={"PATH": path, "VIRTUAL_ENV": str(venv)},
    )

    assert "epoch 5/5 valid_loss=" in result.stderr
    assert (tmp_path / "my-ml-project" / "logs" / "info.log").stat().st_size > 0


@pytest.mark.slow
def test_generated_readme_uv_commands_work(tmp_path: Path) -> None:
    env = uv_only_env(tmp_path)
    run(tool("cookiecutter"), "--no-input", TEMPLATE_DIR, "-o", tmp_path, cwd=tmp_path)
    project = tmp_path / "my-ml-project"
    readme = (project / "README.md").read_text(encoding="utf-8")
    uv_block = block_starting(readme, "uv run ")

    demo_command, test_command = map(without_comment, uv_block)
    demo = run_shell(demo_command, project, env)
    # The slow scenarios run in test_bake; here, that uv installs and runs them.
    tests = run_shell(f"{test_command} -m 'not slow'", project, env)

    assert "epoch 5/5 valid_loss=" in demo.stderr
    assert re.search(r"\d+ passed", tests.stdout), tests.stdout
    assert " failed" not in tests.stdout


GIT = ("git", "-c", "user.name=t", "-c", "user.email=t@example.org")


def commit_template(repository: Path) -> None:
    """Make the template's current files the repository's next commit."""
    if not (repository / ".git").exists():
        run("git", "init", "-q", cwd=repository)
    run("git", "rm", "-rqf", "--ignore-unmatch", ".", cwd=repository)
    shutil.copytree(
        TEMPLATE_DIR,
        repository,
        ignore=shutil.ignore_patterns(".git", ".venv*", "__pycache__", "*_cache"),
        dirs_exist_ok=True,
    )
    run(*GIT, "add", "-A", cwd=repository)
    run(*GIT, "commit", "-qm", "template", cwd=repository)


def project_files(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


@pytest.mark.slow
def test_cruft_creates_an_updatable_project(tmp_path: Path) -> None:
    # cruft clones the template, so give it a repository of the files as they are now.
    template = tmp_path / "template"
    template.mkdir()
    commit_template(template)

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


# A template of 18 questions, among them project_slug, log_level, error_log_level,
# log_max_mb, log_backup_count and log_keep_runs, which are gone since.
OLD_TEMPLATE = "6e1c55a"
OLD_ANSWERS = {
    "project_name": "Cruft Demo",
    "log_level": "DEBUG",  # the console's and info.log's level followed it
    "error_log_level": "CRITICAL",
    "log_max_mb": 20,
    "log_keep_runs": 5,
    "log_format": "json",
    "console_style": "rich",
    "use_tqdm": True,
    "log_layout": "per_run",
}


def test_cruft_updates_a_project_of_an_older_template(tmp_path: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", OLD_TEMPLATE],
        cwd=TEMPLATE_DIR,
        capture_output=True,
    )
    if archive.returncode != 0:
        pytest.skip(f"the template's history lacks {OLD_TEMPLATE}")
    template = tmp_path / "template"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as old:
        old.extractall(template, filter="data")
    run("git", "init", "-q", cwd=template)
    run(*GIT, "add", "-A", cwd=template)
    run(*GIT, "commit", "-qm", "old template", cwd=template)
    out = tmp_path / "out"
    run(
        tool("cruft"),
        *("create", "--no-input", template, "--output-dir", out),
        *("--extra-context", json.dumps(OLD_ANSWERS)),
        cwd=tmp_path,
    )
    project = out / "cruft-demo"
    run("git", "init", "-q", cwd=project)
    run(*GIT, "add", "-A", cwd=project)
    run(*GIT, "commit", "-qm", "baked", cwd=project)

    commit_template(template)
    run(tool("cruft"), "update", "--skip-apply-ask", cwd=project)

    files = project_files(project)
    rejected = [name for name in files if name.endswith((".rej", ".orig"))]
    conflicts = [name for name, text in files.items() if b"\n<<<<<<< " in text]
    assert rejected == conflicts == []
    state = json.loads(files.pop(".cruft.json"))
    answers = state["context"]["cookiecutter"]
    gone = {"project_slug", "log_level", "error_log_level", "log_max_mb"}
    gone |= {"log_backup_count", "log_keep_runs"}
    assert gone.isdisjoint(answers), answers
    # Private keys (_template, _commit, ...) start with one "_", derived ones with two.
    given = {key: value for key, value in answers.items() if not re.match("_[^_]", key)}
    assert given == {
        "project_name": "Cruft Demo",
        "__project_slug": "cruft-demo",
        "package_name": "cruft_demo",
        "__description": "Cruft Demo: machine learning with logging wired in.",
        "author_name": "Your Name",
        "author_email": "you@example.com",
        "log_dir": "logs",
        "console_log_level": "DEBUG",
        "info_log_level": "DEBUG",
        "log_format": "json",
        "console_style": "rich",
        "use_tqdm": True,
        "log_layout": "per_run",
        "tracker": "none",
    }
    # The same answers given to the template as it is now make the same files.
    fresh = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        output_dir=str(tmp_path / "fresh"),
        extra_context=given,
    )
    expected = project_files(Path(fresh))
    assert sorted(files) == sorted(expected)
    assert [name for name in files if files[name] != expected[name]] == []
