"""The logging setup: routing, format, rotation, overrides and failure modes."""

from __future__ import annotations

{% if cookiecutter.log_format == "json" -%}
import json
{% endif -%}
import logging
import logging.handlers
import os
{%- if cookiecutter.log_format != "json" %}
import re
{%- endif %}
import stat
import subprocess
import sys
import threading
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import logfiles
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import configure

log = logging.getLogger(__name__)
RunPython = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let every record reach the console and info.log, whatever levels were chosen."""
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "level", "DEBUG")
    for name in ("console", "info"):
        monkeypatch.setitem(config.LOGGING_CONFIG["handlers"][name], "level", "DEBUG")


def levels_in(path: Path) -> list[str]:
    return [record.level for record in logfiles.read(path)]


def messages_in(path: Path) -> list[str]:
    return [record.message for record in logfiles.read(path)]


def log_every_level() -> None:
    for level in configure.LEVELS:
        log.log(logging.getLevelName(level), "a %s record", level.lower())


def test_levels_are_routed_to_console_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert config.setup_logging(tmp_path) == tmp_path
    log_every_level()

    order = list(configure.LEVELS)
    expected = {
        "console": "{{ cookiecutter.console_log_level }}",
        "info": "{{ cookiecutter.info_log_level }}",
        "error": "ERROR",
    }

    def shown(handler: str) -> list[str]:
        return order[order.index(expected[handler]) :]

    config.flush_logs()
    console = capsys.readouterr().err.splitlines()
    assert console == [f"a {level.lower()} record" for level in shown("console")]
    assert levels_in(tmp_path / "info.log") == shown("info")
    assert levels_in(tmp_path / "error.log") == shown("error")


def test_file_records_tell_level_place_and_run(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    log.critical("disk is full")

    [record] = logfiles.read(tmp_path / "info.log")
    assert record.level == "CRITICAL"
    assert record.file == "test_config.py"
    assert record.function == "test_file_records_tell_level_place_and_run"
    assert record.message == "disk is full"
    assert record.run_id == config.run_context().run_id
    assert record.rank == 0


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, int], None]:
    def set_size(max_bytes: int, backups: int) -> None:
        info = config.LOGGING_CONFIG["handlers"]["info"]
        monkeypatch.setitem(info, "maxBytes", max_bytes)
        monkeypatch.setitem(info, "backupCount", backups)

    return set_size


def test_files_rotate_without_losing_a_line(
    tmp_path: Path, small_files: Callable[[int, int], None]
) -> None:
    small_files(4096, 100)
    config.setup_logging(tmp_path)

    for number in range(300):
        log.critical("record %05d", number)
    config.flush_logs()

    files = list(tmp_path.glob("info.log*"))
    assert len(files) > 2
    assert all(path.stat().st_size <= 4096 for path in files)
    found = sorted(message for path in files for message in messages_in(path))
    assert found == [f"record {number:05d}" for number in range(300)]


def test_rotation_keeps_backup_count_files(
    tmp_path: Path, small_files: Callable[[int, int], None]
) -> None:
    small_files(1024, 2)
    config.setup_logging(tmp_path)

    for number in range(300):
        log.critical("record %05d", number)

    assert messages_in(tmp_path / "info.log")[-1] == "record 00299"
    names = sorted(path.name for path in tmp_path.glob("info.log*"))
    assert names == ["info.log", "info.log.1", "info.log.2"]


def test_calling_setup_twice_never_duplicates_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.setup_logging(tmp_path)
    config.setup_logging(tmp_path)
    log.critical("once")

    assert messages_in(tmp_path / "info.log") == ["once"]
    assert capsys.readouterr().err == "once\n"
    assert messages_in(tmp_path / "error.log") == ["once"]


def test_level_from_the_environment_sets_overall_and_console_levels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(config.LOG_LEVEL_ENV, "debug")
    config.setup_logging(tmp_path)
    log.debug("details")

    config.flush_logs()
    assert logging.getLogger().level == logging.DEBUG
    assert capsys.readouterr().err == "details\n"


@pytest.mark.usefixtures("verbose")
def test_bad_level_in_the_environment_warns_once_and_keeps_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(config.LOG_LEVEL_ENV, "LOUD")
    config.setup_logging(tmp_path)

    assert logging.getLogger().level == logging.DEBUG
    [warning] = [m for m in messages_in(tmp_path / "info.log") if "LOUD" in m]
    assert warning.startswith(f"{config.LOG_LEVEL_ENV}='LOUD' is not one of")
    assert capsys.readouterr().err.count("LOUD") == 1  # read() has flushed


def test_bad_level_argument_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="level='LOUD'"):
        config.setup_logging(tmp_path, level="LOUD")


def test_log_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "from-env" / "nested"
    monkeypatch.setenv(config.LOG_DIR_ENV, str(target))

    assert config.setup_logging() == target
    log.critical("here")
    assert messages_in(target / "error.log") == ["here"]


@pytest.mark.usefixtures("verbose")
def test_unwritable_log_dir_falls_back_to_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file in the way\n")

    assert config.setup_logging(blocker / "logs") is None
    log.critical("still logged")
    config.flush_logs()

    console = capsys.readouterr().err.splitlines()
    assert len(console) == 2
    assert console[0].startswith(f"Cannot write log files in {blocker / 'logs'} (")
    assert console[0].endswith("); logging to the console only")
    assert console[1] == "still logged"
    assert not list(tmp_path.rglob("*.log*"))


@pytest.mark.usefixtures("verbose")
def test_warnings_are_logged(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    warnings.warn("this option is deprecated", DeprecationWarning, stacklevel=1)

    [record] = logfiles.read(tmp_path / "info.log")
    assert record.level == "WARNING"
    assert record.message == "DeprecationWarning: this option is deprecated"
    # Where the warning was raised, not in the warnings module.
    assert record.file == "test_config.py"
    assert record.function == "test_warnings_are_logged"


def test_uncaught_thread_exception_is_logged_with_its_traceback(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)

    def fail() -> None:
        raise RuntimeError("worker broke")

    thread = threading.Thread(target=fail, name="loader")
    thread.start()
    thread.join()

    [record] = logfiles.read(tmp_path / "error.log")
    assert record.message == "Uncaught exception in thread loader"
    assert record.exception.startswith("Traceback (most recent call last):")
    assert record.exception.endswith("RuntimeError: worker broke")
    assert (record.file, record.function) == ("test_config.py", "fail")  # raised there
    line = fail.__code__.co_firstlineno + 1
    assert location_of(tmp_path / "error.log") == ("test_config.py", "fail", line)


def test_an_exception_at_no_known_line_is_still_located(tmp_path: Path) -> None:
    # Ctrl+C between two lines: Python 3.10 gives the traceback's line as -1.
    config.setup_logging(tmp_path)
    frame = sys._getframe()
    traceback = types.TracebackType(None, frame, frame.f_lasti, -1)
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), traceback)

    function = test_an_exception_at_no_known_line_is_still_located
    known = traceback.tb_lineno  # 3.11 and later work it out from the frame
    line = known if known and known > 0 else function.__code__.co_firstlineno
    where = location_of(tmp_path / "error.log")
    assert where == ("test_config.py", function.__name__, line)


SCRIPT = """\
import {{ cookiecutter.package_name }}.config as config


def load_batch():
    raise ValueError("bad batch")


config.RUN_DIRS_KEPT = None  # the files straight in the log directory
config.setup_logging("out")
load_batch()
"""


def location_of(path: Path) -> tuple[str, str, int]:
    """File, function and line of the last record in a log file."""
    config.flush_logs()
    last = [line for line in path.read_text("utf-8").splitlines() if line[0] != " "][-1]
{%- if cookiecutter.log_format == "json" %}
    fields = json.loads(last)
    return fields["file"], fields["function"], fields["line"]
{%- else %}
    match = re.search(r" \[([^:\]]+):([^:\]]+):(\d+)\] ", last)
    assert match, last
    return match[1], match[2], int(match[3])
{%- endif %}


def test_uncaught_exception_is_logged_with_its_traceback_where_it_was_raised(
    tmp_path: Path, run_python: RunPython
) -> None:
    (tmp_path / "train_job.py").write_text(SCRIPT, encoding="utf-8")
    result = run_python("train_job.py")

    assert result.returncode == 1
    for name in ("error.log", "info.log"):  # info.log's queue was drained at exit
        [record] = logfiles.read(tmp_path / "out" / name)
        assert record.message == "Uncaught exception"
        assert record.exception.startswith("Traceback (most recent call last):")
        assert record.exception.endswith("ValueError: bad batch")
        # Where it was raised, not where the hook logged it.
        assert location_of(tmp_path / "out" / name) == ("train_job.py", "load_batch", 5)
    assert "ValueError: bad batch" in result.stderr  # the console still shows it


def test_importing_the_config_configures_nothing(run_python: RunPython) -> None:
    result = run_python(
        "-c",
        "import logging, sys\n"
        "import {{ cookiecutter.package_name }}.config\n"
        "assert not logging.getLogger().handlers\n"
        "assert sys.excepthook is sys.__excepthook__\n",
    )

    assert result.returncode == 0, result.stderr


{% if cookiecutter.log_format == "json" -%}
FORGED = '"}\n{"severity": "CRITICAL", "message": "forged"}\r\x85\u2028'
{%- else -%}
FORGED = "ok\nCRITICAL 2030-01-01 00:00:00,000 run=x rank=0 [a.py:b:1] forged\r\x85"
{%- endif %}


def test_line_breaks_in_a_message_cannot_forge_a_record(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    log.critical("user input: %s", FORGED)

    [record] = logfiles.read(tmp_path / "info.log")  # one line, one record
{%- if cookiecutter.log_format == "json" %}
    assert record.message == f"user input: {FORGED}"
{%- else %}
    escaped = FORGED.replace("\n", r"\n").replace("\r", r"\r").replace("\x85", r"\x85")
    assert record.message == f"user input: {escaped}"
{%- endif %}


def test_traceback_stays_with_its_record(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    try:
        raise ValueError("bad\nCRITICAL forged record")
    except ValueError:
        log.critical("step failed", exc_info=True)

    [record] = logfiles.read(tmp_path / "error.log")
    assert record.message == "step failed"
    assert record.exception.startswith("Traceback (most recent call last):")
    assert record.exception.endswith("ValueError: bad\nCRITICAL forged record")
{%- if cookiecutter.log_format != "json" %}
    lines = (tmp_path / "error.log").read_text(encoding="utf-8").splitlines()
    assert all(line.startswith("  ") for line in lines[1:])  # none looks like a record
{%- endif %}


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_log_files_and_directory_are_private(
    tmp_path: Path, small_files: Callable[[int, int], None]
) -> None:
    small_files(1024, 3)
    log_dir = tmp_path / "new" / "logs"
    old_umask = os.umask(0o022)  # what most systems use: files readable by all
    try:
        config.setup_logging(log_dir)
        for number in range(100):
            log.critical("record %05d", number)
        config.flush_logs()
    finally:
        os.umask(old_umask)

    files = sorted(path for path in log_dir.rglob("*") if path.is_file())
    assert {path.name for path in files} >= {"info.log", "info.log.1", "error.log"}
    assert {path.name: mode(path) for path in files} == {
        path.name: 0o600 for path in files
    }
    assert mode(log_dir) == mode(log_dir / "runs") == 0o700  # runs: run records


def test_chatty_libraries_are_quiet_below_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.setup_logging(tmp_path, level="DEBUG")
    for name in ("urllib3.connectionpool", "httpx", "PIL.PngImagePlugin", "fsspec"):
        logging.getLogger(name).info("chatter from %s", name)
        logging.getLogger(name).warning("warning from %s", name)

    config.flush_logs()
    console = capsys.readouterr().err
    assert "chatter" not in console
    assert console.count("warning from") == 4


# A library as transformers and Lightning are: its own console handler, and
# records that stop at its top logger.
LIBRARY = """\
import logging, sys
_top = logging.getLogger("accelerate")
_top.addHandler(logging.StreamHandler(sys.stderr))
_top.propagate = False
"""


@pytest.mark.parametrize("order", ["imported first", "imported after setup"])
def test_a_library_with_its_own_handler_logs_once(
    tmp_path: Path, run_python: RunPython, order: str
) -> None:
    library = tmp_path / "lib" / "accelerate"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text(LIBRARY)
    imports = ["import accelerate", "setup_logging('logs', 'DEBUG')"]
    if order == "imported after setup":
        imports.reverse()
    result = run_python(
        "-c",
        f"import logging, sys; sys.path.insert(0, 'lib')\n"
        f"from {config.__name__} import LOGGING_CONFIG, setup_logging\n"
        # Every level and one shared directory, whatever the project was made with.
        "LOGGING_CONFIG['handlers']['info']['level'] = 'DEBUG'\n"
        f"import {config.__name__} as config; config.RUN_DIRS_KEPT = None\n"
        + "\n".join(imports)
        + "\nlogging.getLogger('accelerate.state').warning('from the library')\n",
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == "from the library\n"
    assert messages_in(tmp_path / "logs" / "info.log") == ["from the library"]


def test_extra_cannot_forge_the_run_context(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    log.critical("hello", extra={"run_id": "forged", "rank": 99})

    [record] = logfiles.read(tmp_path / "error.log")
    assert (record.run_id, record.rank) == (config.run_context().run_id, 0)


def test_a_lone_surrogate_is_written_not_dropped(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    log.critical("undecodable %s", "\udcff")

    [record] = logfiles.read(tmp_path / "error.log")
    assert record.message in ("undecodable \\udcff", "undecodable \udcff")
