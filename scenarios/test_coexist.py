"""Other code that configures logging too: Hydra, notebooks, libraries. Run with
the real libraries (hydra-core, ipykernel and nbclient), skipped where absent."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from logfiles import Record, read
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import coexist, configure

RunPython = Callable[..., subprocess.CompletedProcess[str]]
REPLACED = "Logging was configured again by"
LEVELS = configure.LEVELS
INFO_LEVEL = config.LOGGING_CONFIG["handlers"]["info"]["level"]
CONSOLE_LEVEL = config.LOGGING_CONFIG["handlers"]["console"]["level"]
RECORDS = 20

# A Hydra app that sets up logging before @hydra.main or inside the job, and
# logs RECORDS records at info.log's level and one error.
HYDRA_APP = f"""
import logging
import os

import hydra

from {{ cookiecutter.package_name }} import config

logger = logging.getLogger("app")
if os.environ["ORDER"] == "before":
    config.setup_logging()


@hydra.main(version_base="1.3", config_path="conf", config_name=os.environ["CONF"])
def main(cfg: object) -> None:
    if os.environ["ORDER"] == "inside":
        config.setup_logging()
    config.log_run_start()
    for number in range({RECORDS}):
        logger.log(logging.{INFO_LEVEL}, "record %d", number)
    logger.error("the one error")
    config.log_run_end(0)


main()
"""
# The recipe of docs/logging.md: Hydra leaves logging alone.
RECIPE = """\
defaults:
  - override hydra/job_logging: none
  - override hydra/hydra_logging: none
  - _self_
lr: 0.1
"""


def shows(threshold: str, level: str = "WARNING") -> bool:
    return LEVELS.index(level) >= LEVELS.index(threshold)


def run_records(log_dir: Path) -> list[dict[str, Any]]:
    """The run records in ``log_dir``, in either layout."""
    paths = [*log_dir.glob("runs/*.json"), *log_dir.glob("*/run.json")]
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for path in paths
        if not path.parent.is_symlink()
    ]


def numbered(records: list[Record]) -> list[str]:
    return [r.message for r in records if r.message.startswith("record ")]


def run_hydra_app(
    run_python: RunPython, tmp_path: Path, order: str, conf: str, *args: str
) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("hydra")
    (tmp_path / "app.py").write_text(HYDRA_APP, encoding="utf-8")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "recipe.yaml").write_text(RECIPE, encoding="utf-8")
    (tmp_path / "conf" / "plain.yaml").write_text("{}\n", encoding="utf-8")
    # A relative log directory, and Hydra moving into its output directory.
    env = {"ORDER": order, "CONF": conf, config.LOG_DIR_ENV: "logs"}
    env[config.RUN_ID_ENV] = ""  # a run id of its own
    result = run_python("app.py", *args, "hydra.job.chdir=True", env=env)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("order", ["before", "inside"])
def test_with_the_hydra_recipe_every_record_reaches_the_files_once(
    run_python: RunPython, tmp_path: Path, order: str
) -> None:
    result = run_hydra_app(run_python, tmp_path, order, "recipe")

    logs = tmp_path / "logs"  # where the app started, not Hydra's directory
    [info] = logs.glob("**/info.log")
    [error] = logs.glob("**/error.log")
    expected = [f"record {n}" for n in range(RECORDS)]
    assert numbered(read(info)) == expected
    assert [r.message for r in read(error)].count("the one error") == 1
    assert not list((tmp_path / "outputs").glob("**/*.log"))  # none of Hydra's
    [record] = run_records(logs)
    assert record["status"] == "finished"
    assert coexist.FIELD not in record
    assert REPLACED not in result.stderr + result.stdout


def test_each_job_of_a_hydra_multirun_is_a_run(
    run_python: RunPython, tmp_path: Path
) -> None:
    """The task function sets up logging and ends with log_run_end()."""
    run_hydra_app(run_python, tmp_path, "inside", "recipe", "-m", "lr=1,2,3")

    records = run_records(tmp_path / "logs")
    assert [r["status"] for r in records] == ["finished"] * 3
    ids = {r["run_id"] for r in records}
    assert len(ids) == 3
    infos = (tmp_path / "logs").glob("**/info.log")  # one, or one a run
    logged = [record for info in infos for record in read(info)]
    for run_id in ids:
        assert len(numbered([r for r in logged if r.run_id == run_id])) == RECORDS


def test_hydra_replacing_the_handlers_is_told_once_and_recorded(
    run_python: RunPython, tmp_path: Path
) -> None:
    """Without the recipe, Hydra's dictConfig replaces the handlers that a
    setup_logging() before @hydra.main made."""
    result = run_hydra_app(run_python, tmp_path, "before", "plain")

    output = result.stderr + result.stdout
    assert output.count(REPLACED) == (1 if shows(CONSOLE_LEVEL) else 0), output
    [info] = (tmp_path / "logs").glob("**/info.log")
    warnings = [r.message for r in read(info) if r.message.startswith(REPLACED)]
    assert len(warnings) == (1 if shows(INFO_LEVEL) else 0)
    assert all("this run's log files get no more records" in w for w in warnings)
    [record] = run_records(tmp_path / "logs")
    assert "hydra" in record[coexist.FIELD]
    assert "logging.config.dictConfig" in record[coexist.FIELD]


def replace_with_basic_config(tmp_path: Path) -> None:
    logging.basicConfig(force=True, handlers=[logging.NullHandler()])


def replace_with_dict_config(tmp_path: Path) -> None:
    # Other tests' loggers stay enabled.
    settings = {"version": 1, "disable_existing_loggers": False, "root": {}}
    logging.config.dictConfig(settings)


def replace_with_file_config(tmp_path: Path) -> None:
    ini = tmp_path / "logging.ini"
    ini.write_text(
        "[loggers]\nkeys=root\n[handlers]\nkeys=\n[formatters]\nkeys=\n"
        "[logger_root]\nhandlers=\n",
        encoding="utf-8",
    )
    logging.config.fileConfig(ini, disable_existing_loggers=False)


@pytest.mark.parametrize(
    ("replace", "through"),
    [
        (replace_with_basic_config, "logging.basicConfig(force=True)"),
        (replace_with_dict_config, "logging.config.dictConfig"),
        (replace_with_file_config, "logging.config.fileConfig"),
    ],
)
def test_replacing_the_handlers_after_setup_is_told_once(
    tmp_path: Path, replace: Callable[[Path], None], through: str
) -> None:
    config.setup_logging(tmp_path)
    config.setup_logging(tmp_path)  # set up again: no replacement
    replace(tmp_path)
    replace(tmp_path)  # told once only

    [record] = run_records(tmp_path)
    named = rf"{__name__}\.{replace.__name__}\(\) line \d+ through {re.escape(through)}"
    assert re.fullmatch(named, record[coexist.FIELD])
    if shows(INFO_LEVEL):
        messages = [r.message for r in read(tmp_path / "info.log")]
        assert sum(m.startswith(REPLACED) for m in messages) == 1


def test_a_dict_config_without_root_is_told_and_the_files_go_on(
    tmp_path: Path,
) -> None:
    """As uvicorn's: it closes every handler, but leaves root's list alone."""
    config.setup_logging(tmp_path)
    loggers = {"uvicorn": {"level": "INFO"}}
    settings = {"version": 1, "disable_existing_loggers": False, "loggers": loggers}
    logging.config.dictConfig(settings)
    logging.getLogger("app").error("after it")

    assert [r.message for r in read(tmp_path / "error.log")] == ["after it"]
    [record] = run_records(tmp_path)
    assert record[coexist.FIELD].endswith(" through logging.config.dictConfig")
    if shows(INFO_LEVEL):
        messages = [r.message for r in read(tmp_path / "info.log")]
        [warning] = [m for m in messages if m.startswith(REPLACED)]
        assert "which go on without the log writer" in warning
        assert messages[-1] == "after it"


def test_handlers_emptied_unseen_are_told_at_the_run_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.setup_logging(tmp_path)
    logging.getLogger().handlers = []  # as some libraries do
    config.log_run_end(0)

    # Python's last resort handler shows it, if the root's level lets it through.
    root_level = config.LOGGING_CONFIG["root"]["level"]
    assert capsys.readouterr().err.count(REPLACED) == (1 if shows(root_level) else 0)
    [record] = run_records(tmp_path)
    assert record[coexist.FIELD] == "code that changed the root logger's handlers"


def test_setting_up_again_keeps_the_run_unless_a_new_one_is_asked(
    tmp_path: Path,
) -> None:
    config.setup_logging(tmp_path)
    first = config.run_context().run_id
    config.setup_logging(tmp_path)
    assert config.run_context().run_id == first
    config.setup_logging(tmp_path, new_run=True)
    second = config.run_context().run_id
    assert second != first
    config.log_run_end(0)
    config.setup_logging(tmp_path)  # after the run's end: a new one
    assert config.run_context().run_id not in (first, second)
    assert len(run_records(tmp_path)) == 3


NOTEBOOK_CELLS = [
    "import logging\n"
    "from {{ cookiecutter.package_name }} import config\n"
    "config.setup_logging(LOG_DIR)\n"
    "ids = [config.run_context().run_id]",
    "config.setup_logging(LOG_DIR)  # the setup cell, run again\n"
    "ids.append(config.run_context().run_id)",
    "def divide(a, b):\n    return a / b\n\ndivide(1, 0)",
    "logging.getLogger('nb').error('after the cell that raised')\nprint(ids)",
]


def test_a_notebook_session_is_one_run_and_its_cell_errors_are_logged(
    tmp_path: Path,
) -> None:
    """A real kernel (ipykernel) run by nbclient: the setup cell twice, a cell
    that raises, one more cell; then the kernel shuts down."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    log_dir = tmp_path / "logs"
    source = str(Path(__file__).resolve().parents[1] / "src")
    first = f"import sys\nsys.path.insert(0, {source!r})\nLOG_DIR = {str(log_dir)!r}"
    cells = [first, *NOTEBOOK_CELLS]
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells]
    )
    client = nbclient.NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        allow_errors=True,  # the cell that raises
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # and shuts the kernel down

    failed = [
        number
        for number, cell in enumerate(notebook.cells)
        if any(output.output_type == "error" for output in cell.outputs)
    ]
    assert failed == [3]  # the cell that divides by 0
    printed = "".join(
        output.text
        for output in notebook.cells[-1].outputs
        if output.get("name") == "stdout"
    )
    [record] = run_records(log_dir)
    assert printed.strip() == repr([record["run_id"]] * 2)
    assert (record["status"], record["exit_code"]) == ("finished", 0)
    [error_log] = log_dir.glob("**/error.log")
    errors = read(error_log)
    raised = [r for r in errors if "ZeroDivisionError" in r.exception]
    assert len(raised) == 1
    assert raised[0].function == "divide"
    assert "divide(1, 0)" in raised[0].exception
    assert "interactiveshell" not in raised[0].exception  # IPython's frame left out
    assert errors[-1].message == "after the cell that raised"
    assert {r.run_id for r in errors} == {record["run_id"]}
