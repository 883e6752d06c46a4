"""Remove the modules of options that were not chosen.

Runs inside the new project directory, so every path here is relative to it.
"""

import json
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


def unused_files(answers: dict) -> list[Path]:
    infra = Path("src", answers["package_name"], "logging_infra")
    unused = []
    if answers["log_format"] != "json":
        unused.append(infra / "json_format.py")
    if answers["tracker"] == "none":
        unused.append(infra / "tracking.py")
    return unused


if __name__ == "__main__":
    for path in unused_files(ANSWERS):
        path.unlink()
