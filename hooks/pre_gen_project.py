"""Validate the answers before anything is rendered.

On bad input this prints one line naming the field, the value and what is
allowed, then exits 1: cookiecutter removes the project directory it made.
"""

import json
import keyword
import re
import sys
from pathlib import PurePosixPath

# Answers are read as data: pasting them into this source would break on quotes.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
CHOICES = {
    "log_format": ["text", "json"],
    "console_style": ["plain", "rich"],
    "log_layout": ["shared", "per_run"],
}
SLUG = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
LOG_DIR_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
MAX_NAME = 40  # keeps every generated line, imports of the package included, within 88
MAX_LOG_DIR = 60
# Top-level folders of the generated project that logs must not be mixed into.
RESERVED_DIRS = {"src", "tests", ".git", ".github"}


class BadAnswer(Exception):
    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(f"{field}={value!r} is not valid: {allowed}")


def name_problem(name: str, pattern: re.Pattern[str], shape: str) -> str | None:
    """Why a name cannot be a package, repository or command, or None."""
    if not pattern.fullmatch(name):
        return shape
    if len(name) > MAX_NAME:
        return f"keep it to {MAX_NAME} characters or fewer"
    identifier = name.replace("-", "_")
    if keyword.iskeyword(identifier) or keyword.issoftkeyword(identifier):
        return "it must not be a Python keyword"
    if identifier in sys.stdlib_module_names:
        return "it must not shadow a standard-library module"
    return None


def check_name(
    field: str, value: str, pattern: re.Pattern[str], shape: str, name: str = ""
) -> None:
    """Check the answer, or the name made from it (the project name's slug)."""
    problem = name_problem(name or value, pattern, shape)
    if problem and name and name != value:
        problem = f"it becomes {name!r} (the repository and command name); {problem}"
    if problem:
        raise BadAnswer(field, value, problem)


def check_log_dir(value: str) -> None:
    allowed = (
        "use a relative path of letters, digits, '.', '_' and '-' separated by '/', "
        "inside the project (no leading '/', no '..')"
    )
    parts = value.split("/")
    if len(value) > MAX_LOG_DIR:
        raise BadAnswer(
            "log_dir", value, f"keep it to {MAX_LOG_DIR} characters or fewer"
        )
    if (
        not value
        or PurePosixPath(value).is_absolute()
        or not all(map(LOG_DIR_PART.fullmatch, parts))
    ):
        raise BadAnswer("log_dir", value, allowed)
    if parts[0] in RESERVED_DIRS:
        raise BadAnswer(
            "log_dir",
            value,
            f"it must not be inside {', '.join(sorted(RESERVED_DIRS))}",
        )


def check_levels(answers: dict) -> None:
    # Each handler has its own threshold and the root takes the least of them, so
    # no pair of levels contradicts another: only unknown names are refused.
    for field in ("console_log_level", "info_log_level"):
        if answers[field] not in LEVELS:
            raise BadAnswer(field, answers[field], f"choose one of {', '.join(LEVELS)}")


def check_options(answers: dict) -> None:
    # cookiecutter checks these for answers it is given; a replay file is not checked.
    for field, allowed in CHOICES.items():
        if answers[field] not in allowed:
            raise BadAnswer(
                field, answers[field], f"choose one of {', '.join(allowed)}"
            )
    if not isinstance(answers["use_tqdm"], bool):
        raise BadAnswer("use_tqdm", answers["use_tqdm"], "answer yes or no")


def main(answers: dict) -> None:
    if not answers["project_name"].strip():
        raise BadAnswer("project_name", answers["project_name"], "it must not be empty")
    # The repository and command name come from the project name.
    check_name(
        "project_name",
        answers["project_name"],
        SLUG,
        "it must start with a letter and hold letters or digits",
        name=answers["__project_slug"],
    )
    check_name(
        "package_name",
        answers["package_name"],
        PACKAGE,
        "use lowercase letters, digits and '_', not starting with a digit",
    )
    if answers["author_email"] and not EMAIL.fullmatch(answers["author_email"]):
        raise BadAnswer(
            "author_email",
            answers["author_email"],
            "use an address like name@example.org, or leave it empty",
        )
    check_log_dir(answers["log_dir"])
    check_levels(answers)
    check_options(answers)


if __name__ == "__main__":
    try:
        main(ANSWERS)
    except BadAnswer as error:
        print(f"Invalid answer: {error}", file=sys.stderr)
        sys.exit(1)
