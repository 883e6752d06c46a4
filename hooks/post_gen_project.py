"""Remove the modules and tests of options that were not chosen.

Runs inside the new project directory, so every path here is relative to it.
"""

import json
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


def unused_files(answers: dict) -> list[Path]:
    package = Path("src", answers["package_name"])
    unused = []
    if answers["log_format"] != "json":
        unused += [package / "log_json.py", Path("tests", "test_json.py")]
    if answers["console_style"] == "plain" and not answers["use_tqdm"]:
        unused += [package / "log_console.py", Path("tests", "test_console.py")]
    return unused


if __name__ == "__main__":
    for path in unused_files(ANSWERS):
        path.unlink()
