"""The template's own Python (hooks, tests, benchmarks) is lint-clean and formatted."""

from __future__ import annotations

from conftest import TEMPLATE_DIR, run, tool

OWN_CODE = ["hooks", "tests", "benchmarks", "local_extensions.py"]


def test_template_code_is_lint_clean_and_formatted() -> None:
    run(tool("ruff"), "check", "--no-cache", *OWN_CODE, cwd=TEMPLATE_DIR)
    run(tool("ruff"), "format", "--check", "--no-cache", *OWN_CODE, cwd=TEMPLATE_DIR)
