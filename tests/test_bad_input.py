"""Bad answers fail the bake with one line that names the field; nothing is left."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
from conftest import TEMPLATE_DIR, run, tool

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

BAD_ANSWERS = {
    "empty-name": ("project_name", "   "),
    # The repository and command name follow the project name.
    "name-only-digits": ("project_name", "2024"),
    "name-keyword": ("project_name", "class"),
    "name-shadows-stdlib": ("project_name", "Logging"),
    "name-too-long": ("project_name", "a" * 41),
    "package-not-identifier": ("package_name", "my-package"),
    "package-leading-digit": ("package_name", "2fast"),
    "package-keyword": ("package_name", "import"),
    "package-soft-keyword": ("package_name", "match"),
    "package-shadows-stdlib": ("package_name", "logging"),
    "log-dir-absolute": ("log_dir", "/var/log/app"),
    "log-dir-escapes": ("log_dir", "../logs"),
    "log-dir-dotdot-inside": ("log_dir", "logs/../../etc"),
    "log-dir-empty": ("log_dir", ""),
    "log-dir-backslash": ("log_dir", "logs\\train"),
    "log-dir-in-src": ("log_dir", "src/logs"),
    "log-dir-double-slash": ("log_dir", "logs//train"),
    "email-without-at": ("author_email", "me at example.com"),
}


def bake_cli(tmp_path: Path, *answers: str) -> tuple[int, str, Path]:
    out = tmp_path / "out"
    out.mkdir()
    result = run(
        tool("cookiecutter"),
        "--no-input",
        TEMPLATE_DIR,
        "-o",
        out,
        *answers,
        cwd=tmp_path,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr, out


@pytest.mark.parametrize(("field", "value"), BAD_ANSWERS.values(), ids=BAD_ANSWERS)
def test_bad_answer_fails_with_one_line_naming_the_field(
    tmp_path: Path, field: str, value: str
) -> None:
    status, output, out = bake_cli(tmp_path, f"{field}={value}")

    assert status != 0
    [line] = [
        line for line in output.splitlines() if line.startswith("Invalid answer:")
    ]
    assert line.startswith(f"Invalid answer: {field}={value!r} is not valid: "), line
    assert list(out.iterdir()) == [], "a half-rendered project was left behind"


def test_unknown_level_is_refused_before_rendering(tmp_path: Path) -> None:
    status, output, out = bake_cli(tmp_path, "console_log_level=LOUD")

    assert status != 0
    assert "LOUD provided for choice variable console_log_level" in output
    assert list(out.iterdir()) == []


# Checked by cookiecutter before any hook runs: its message, naming the field,
# is the last line of its output.
UNKNOWN_VALUES = {
    "log-format": ("log_format=xml", "xml provided for choice variable log_format"),
    "console-style": (
        "console_style=fancy",
        "fancy provided for choice variable console_style",
    ),
    "use-tqdm": (
        "use_tqdm=maybe",
        "maybe provided for variable use_tqdm could not be converted to a boolean.",
    ),
}


@pytest.mark.parametrize(
    ("answer", "message"), UNKNOWN_VALUES.values(), ids=UNKNOWN_VALUES
)
def test_unknown_option_value_is_refused(
    tmp_path: Path, answer: str, message: str
) -> None:
    status, output, out = bake_cli(tmp_path, answer)

    assert status != 0
    assert output.splitlines()[-1].startswith(f"ValueError: {message}")
    assert list(out.iterdir()) == []


def test_replayed_answers_are_checked_too(tmp_path: Path) -> None:
    replay = tmp_path / "replay.json"
    context = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))
    answers = {key: value for key, value in context.items() if not key.startswith("_")}
    for key, value in answers.items():
        answers[key] = value[0] if isinstance(value, list) else value
    answers.update(project_name="replayed", use_tqdm="maybe")
    answers.update(__project_slug="replayed", package_name="replayed")
    answers.update(__description="replayed")  # a replay holds rendered values
    replay.write_text(json.dumps({"cookiecutter": answers}), encoding="utf-8")
    out = tmp_path / "out"
    result = run(
        tool("cookiecutter"),
        "--replay-file",
        replay,
        TEMPLATE_DIR,
        "-o",
        out,
        cwd=tmp_path,
        check=False,
    )

    assert result.returncode != 0
    assert "Invalid answer: use_tqdm='maybe' is not valid: answer yes or no" in (
        result.stdout + result.stderr
    )
    assert not out.exists() or list(out.iterdir()) == []


def test_free_text_renders_valid_python_and_toml(tmp_path: Path) -> None:
    text = 'Tom\'s "model" \\ {x} ü 😀\tline\nnext \x7f'
    status, output, out = bake_cli(
        tmp_path,
        f"project_name=Odd {text}",
        f"author_name={text}",
    )

    assert status == 0, output
    [project] = out.iterdir()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    description = f"Odd {text}: machine learning with logging wired in."
    assert pyproject["project"]["description"] == description
    assert pyproject["project"]["authors"] == [
        {"name": text, "email": "you@example.com"}
    ]
    for path in project.rglob("*.py"):
        ast.parse(path.read_text("utf-8"))


def test_every_pair_of_levels_bakes_with_the_root_below_both(tmp_path: Path) -> None:
    from cookiecutter.main import cookiecutter

    for console in LEVELS:
        for info in LEVELS:
            out = tmp_path / f"{console}-{info}"
            project = cookiecutter(
                str(TEMPLATE_DIR),
                no_input=True,
                output_dir=str(out),
                extra_context={"console_log_level": console, "info_log_level": info},
            )
            config = next(Path(project).glob("src/*/config.py"))
            # LOGGING_CONFIG names the console, info and error handlers' levels,
            # then the root's.
            levels = re.findall(r'"level": "([A-Z]+)"', config.read_text("utf-8"))
            lowest = min(console, info, "ERROR", key=LEVELS.index)
            assert tuple(levels[:4]) == (console, info, "ERROR", lowest)
