"""The questions of an interactive bake: few, each choice once, each one mattering."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import TEMPLATE_DIR, tool

CONTEXT = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))
QUESTIONS = [key for key in CONTEXT if not key.startswith("_")]
# A value other than the default for each free-text question.
OTHER_TEXT = {
    "project_name": "Other Project",
    "package_name": "other_package",
    "author_name": "Someone Else",
    "author_email": "",
    "log_dir": "var/logs",
}
# "  [3/12] " starts a question; "Choose from [1/2] " ends a list of choices.
MARKER = re.compile(r"(?:^|(?<=:)) +\[(\d+)/(\d+)\] ")


def alternatives(question: str) -> list[object]:
    """The answers to a question other than its default."""
    default = CONTEXT[question]
    if isinstance(default, list):
        return default[1:]
    if isinstance(default, bool):
        return [not default]
    return [OTHER_TEXT[question]]


def parse_questions(output: str) -> list[tuple[str, list[str]]]:
    """Each question as the terminal showed it, with its list of choices."""
    chunks = MARKER.split(output)[1:]
    shown = []
    for number, total, chunk in zip(
        chunks[::3], chunks[1::3], chunks[2::3], strict=True
    ):
        assert int(total) == len(chunks) // 3, (
            f"[{number}/{total}] of {len(chunks) // 3}"
        )
        first_line = chunk.splitlines()[0]
        choices = re.findall(r"^ +\d+ - (.*)$", chunk, re.MULTILINE)
        if choices:
            text = first_line
        elif " [y/n] " in first_line:
            text = first_line.split(" [y/n] ")[0]
        else:  # "Question (default): "
            match = re.fullmatch(r"(.*) \(.*\): *", first_line)
            assert match, first_line
            text = match[1]
        shown.append((text, choices))
    return shown


def test_interactive_bake_asks_each_question_once(tmp_path: Path) -> None:
    # Typed answers: a name, four defaults, then the console above info.log
    # (CRITICAL over DEBUG), JSON, Rich, tqdm, a directory per run and TensorBoard.
    typed = ["Interactive Demo", "", "", "", "", "5", "2", "2", "2", "y", "2", "3"]
    result = subprocess.run(
        [tool("cookiecutter"), str(TEMPLATE_DIR), "-o", str(tmp_path)],
        cwd=tmp_path,
        env={
            **os.environ,
            "COLUMNS": "250",
        },  # a question per line, as on a wide terminal
        input="\n".join(typed) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    shown = parse_questions(result.stdout)
    assert len(shown) <= 12
    prompts = CONTEXT["__prompts__"]
    assert [text for text, _ in shown] == [prompts[key] for key in QUESTIONS]
    for key, (text, choices) in zip(QUESTIONS, shown, strict=True):
        if isinstance(CONTEXT[key], list):
            assert choices == CONTEXT[key], text  # each value once, in order
            assert len(set(choices)) == len(choices), text
        else:
            assert choices == [], text
    # Every pair of levels is a valid answer: this one made a project.
    project = tmp_path / "interactive-demo"
    config = (project / "src/interactive_demo/config.py").read_text("utf-8")
    assert re.findall(r'"level": "([A-Z]+)"', config)[:4] == [
        "CRITICAL",
        "DEBUG",
        "ERROR",
        "DEBUG",
    ]
    assert (project / "src/interactive_demo/logging_infra/json_format.py").exists()
    assert (project / "src/interactive_demo/logging_infra/tracking.py").exists()


class Bakes:
    """Projects rendered with given answers, as {path: content}, each made once."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: dict[str, dict[str, bytes]] = {}

    def __call__(self, **answers: object) -> dict[str, bytes]:
        from cookiecutter.main import cookiecutter

        key = json.dumps(answers, sort_keys=True)
        if key not in self.made:
            out = self.tmp_path / str(len(self.made))
            project = Path(
                cookiecutter(
                    str(TEMPLATE_DIR),
                    no_input=True,
                    output_dir=str(out),
                    extra_context=answers,
                )
            )
            self.made[key] = {
                path.relative_to(out).as_posix(): path.read_bytes()
                for path in sorted(project.rglob("*"))
                if path.is_file()
            }
        return self.made[key]


def test_every_answer_changes_the_project(tmp_path: Path) -> None:
    bakes = Bakes(tmp_path)
    for question in QUESTIONS:
        for other in alternatives(question):
            assert bakes(**{question: other}) != bakes(), f"{question}={other!r}"


@pytest.mark.slow
def test_no_choice_is_made_irrelevant_by_an_earlier_answer(tmp_path: Path) -> None:
    """Whatever an earlier choice was, a later choice still changes the project
    (as the number of kept runs did not with the shared layout)."""
    bakes = Bakes(tmp_path)
    choices = [key for key in QUESTIONS if isinstance(CONTEXT[key], list | bool)]
    for position, question in enumerate(choices):
        for earlier in choices[:position]:
            for before in alternatives(earlier):
                given = {earlier: before}
                for other in alternatives(question):
                    changed = bakes(**given, **{question: other})
                    assert changed != bakes(**given), (
                        f"{question}={other!r} changes nothing with {given}"
                    )
