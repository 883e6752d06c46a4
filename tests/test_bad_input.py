"""Bad answers fail the bake with one line that names the field; nothing is left."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
from conftest import TEMPLATE_DIR, run, tool

BAD_ANSWERS = {
    "empty-name": ("project_name", "   "),
    "slug-with-space": ("project_slug", "my project"),
    "slug-uppercase": ("project_slug", "MyProject"),
    "slug-keyword": ("project_slug", "class"),
    "slug-too-long": ("project_slug", "a" * 41),
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
    "max-mb-zero": ("log_max_mb", "0"),
    "max-mb-negative": ("log_max_mb", "-5"),
    "max-mb-text": ("log_max_mb", "ten"),
    "max-mb-nan": ("log_max_mb", "nan"),
    "backups-zero": ("log_backup_count", "0"),
    "backups-fraction": ("log_backup_count", "2.5"),
    "keep-runs-zero": ("log_keep_runs", "0"),
    "keep-runs-negative": ("log_keep_runs", "-3"),
    "keep-runs-text": ("log_keep_runs", "all"),
    "email-without-at": ("author_email", "me at example.com"),
}
# Levels that contradict each other pass the choice lists but not the hook; the
# last answer is the one named.
CONFLICTS = {
    "console-below-overall": {"log_level": "WARNING", "console_log_level": "INFO"},
    "error-below-overall": {
        "log_level": "CRITICAL",
        "console_log_level": "CRITICAL",
        "info_log_level": "CRITICAL",
        "error_log_level": "ERROR",
    },
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


@pytest.mark.parametrize("answers", CONFLICTS.values(), ids=CONFLICTS)
def test_contradicting_levels_are_refused(
    tmp_path: Path, answers: dict[str, str]
) -> None:
    status, output, out = bake_cli(tmp_path, *(f"{k}={v}" for k, v in answers.items()))

    assert status != 0
    field = list(answers)[-1]
    expected = f"Invalid answer: {field}={answers[field]!r} is not valid: it is below"
    assert expected in output
    assert list(out.iterdir()) == []


def test_unknown_level_is_refused_before_rendering(tmp_path: Path) -> None:
    status, output, out = bake_cli(tmp_path, "log_level=LOUD")

    assert status != 0
    assert "LOUD provided for choice variable log_level" in output
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
    answers.update(project_slug="replayed", package_name="replayed", use_tqdm="maybe")
    # A replay file holds rendered answers: the levels that default to log_level.
    answers.update(console_log_level="INFO", info_log_level="INFO")
    answers.update(error_log_level="ERROR")
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
        f"description={text}",
        f"author_name={text}",
    )

    assert status == 0, output
    [project] = out.iterdir()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["description"] == text
    assert pyproject["project"]["authors"] == [
        {"name": text, "email": "you@example.com"}
    ]
    for path in project.rglob("*.py"):
        ast.parse(path.read_text("utf-8"))


@pytest.mark.parametrize(
    ("overall", "expected"),
    [("WARNING", ("WARNING", "WARNING", "ERROR")), ("CRITICAL", ("CRITICAL",) * 3)],
)
def test_handler_levels_follow_log_level_given_alone(
    tmp_path: Path, overall: str, expected: tuple[str, str, str]
) -> None:
    status, output, out = bake_cli(tmp_path, f"log_level={overall}")

    assert status == 0, output
    [config] = out.glob("*/src/*/config.py")
    # The console, info and error handlers come first in LOGGING_CONFIG, then root.
    levels = re.findall(r'"level": "([A-Z]+)"', config.read_text("utf-8"))
    assert tuple(levels[:4]) == (*expected, overall)
