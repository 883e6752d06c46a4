"""The logging setup: routing, format, rotation, overrides and failure modes."""

from __future__ import annotations

import logging
import logging.handlers
import re
import subprocess
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import config, log_queue

DETAILED = re.compile(
    r"(?P<level>[A-Z]+) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    r"run=(?P<run_id>\S+) rank=(?P<rank>\d+) "
    r"\[(?P<file>[\w.]+):(?P<function>\w+):\d+\] (?P<message>.*)"
)
log = logging.getLogger(__name__)
RunPython = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let every record reach the console and info.log, whatever levels were chosen."""
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "level", "DEBUG")
    for name in ("console", "info"):
        monkeypatch.setitem(config.LOGGING_CONFIG["handlers"][name], "level", "DEBUG")


def lines(path: Path) -> list[str]:
    log_queue.flush()  # records are written by a background thread
    return path.read_text(encoding="utf-8").splitlines()


def levels_in(path: Path) -> list[str]:
    return [match["level"] for match in map(DETAILED.fullmatch, lines(path)) if match]


def log_every_level() -> None:
    for level in config.LEVELS:
        log.log(logging.getLevelName(level), "a %s record", level.lower())


def test_levels_are_routed_to_console_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert config.setup_logging(tmp_path) == tmp_path
    log_every_level()

    order = list(config.LEVELS)
    expected = {
        "console": "{{ cookiecutter.console_log_level }}",
        "info": "{{ cookiecutter.info_log_level }}",
        "error": "{{ cookiecutter.error_log_level }}",
    }
    overall = order.index("{{ cookiecutter.log_level }}")

    def shown(handler: str) -> list[str]:
        return order[max(overall, order.index(expected[handler])) :]

    log_queue.flush()
    console = capsys.readouterr().err.splitlines()
    assert console == [f"a {level.lower()} record" for level in shown("console")]
    assert levels_in(tmp_path / "info.log") == shown("info")
    assert levels_in(tmp_path / "error.log") == shown("error")


def test_file_lines_use_the_detailed_format(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    log.critical("disk is full")

    [line] = lines(tmp_path / "info.log")
    match = DETAILED.fullmatch(line)
    assert match is not None, line
    assert match["file"] == "test_config.py"
    assert match["function"] == "test_file_lines_use_the_detailed_format"
    assert match["message"] == "disk is full"


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
    log_queue.flush()

    files = list(tmp_path.glob("info.log*"))
    assert len(files) > 2
    assert all(path.stat().st_size <= 4096 for path in files)
    found = sorted(line[-5:] for path in files for line in lines(path))
    assert found == [f"{number:05d}" for number in range(300)]


def test_rotation_keeps_backup_count_files(
    tmp_path: Path, small_files: Callable[[int, int], None]
) -> None:
    small_files(1024, 2)
    config.setup_logging(tmp_path)

    for number in range(300):
        log.critical("record %05d", number)

    assert lines(tmp_path / "info.log")[-1].endswith("record 00299")
    names = sorted(path.name for path in tmp_path.glob("info.log*"))
    assert names == ["info.log", "info.log.1", "info.log.2"]


def test_calling_setup_twice_never_duplicates_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.setup_logging(tmp_path)
    config.setup_logging(tmp_path)
    log.critical("once")

    assert [line.endswith(" once") for line in lines(tmp_path / "info.log")] == [True]
    assert capsys.readouterr().err == "once\n"
    assert [line.endswith(" once") for line in lines(tmp_path / "error.log")] == [True]


def test_level_from_the_environment_sets_overall_and_console_levels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(config.LOG_LEVEL_ENV, "debug")
    config.setup_logging(tmp_path)
    log.debug("details")

    log_queue.flush()
    assert logging.getLogger().level == logging.DEBUG
    assert capsys.readouterr().err == "details\n"


@pytest.mark.usefixtures("verbose")
def test_bad_level_in_the_environment_warns_once_and_keeps_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(config.LOG_LEVEL_ENV, "LOUD")
    config.setup_logging(tmp_path)

    assert logging.getLogger().level == logging.DEBUG
    [warning] = [line for line in lines(tmp_path / "info.log") if "LOUD" in line]
    assert f"{config.LOG_LEVEL_ENV}='LOUD' is not one of" in warning
    assert capsys.readouterr().err.count("LOUD") == 1  # lines() has flushed


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
    assert lines(target / "error.log")[0].endswith(" here")


@pytest.mark.usefixtures("verbose")
def test_unwritable_log_dir_falls_back_to_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file in the way\n")

    assert config.setup_logging(blocker / "logs") is None
    log.critical("still logged")
    log_queue.flush()

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

    [record] = [line for line in lines(tmp_path / "info.log") if DETAILED.match(line)]
    assert record.startswith("WARNING ")
    assert "DeprecationWarning: this option is deprecated" in record


def test_uncaught_thread_exception_is_logged_with_its_traceback(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)

    def fail() -> None:
        raise RuntimeError("worker broke")

    thread = threading.Thread(target=fail, name="loader")
    thread.start()
    thread.join()

    text = (tmp_path / "error.log").read_text(encoding="utf-8")
    assert "Uncaught exception in thread loader" in text
    assert "Traceback (most recent call last):" in text
    assert text.rstrip().endswith("RuntimeError: worker broke")


def test_uncaught_exception_is_logged_with_its_traceback(
    tmp_path: Path, run_python: RunPython
) -> None:
    result = run_python(
        "-c",
        f"from {config.__name__} import setup_logging\n"
        "setup_logging('out')\n"
        "raise ValueError('bad batch')\n",
    )

    assert result.returncode == 1
    for name in ("error.log", "info.log"):  # info.log's queue was drained at exit
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert "Uncaught exception" in text
        assert "Traceback (most recent call last):" in text
        assert text.rstrip().endswith("ValueError: bad batch")
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


def test_line_breaks_in_a_message_cannot_forge_a_record(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    forged = "ok\nCRITICAL 2030-01-01 00:00:00,000 run=x rank=0 [a.py:b:1] forged\r\x85"
    log.critical("user input: %s", forged)

    [line] = lines(tmp_path / "info.log")
    escaped = forged.replace("\n", r"\n").replace("\r", r"\r").replace("\x85", r"\x85")
    assert line.endswith(f" user input: {escaped}")


def test_traceback_lines_are_indented_under_their_record(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    try:
        raise ValueError("bad\nCRITICAL forged record")
    except ValueError:
        log.critical("step failed", exc_info=True)

    first, *rest = lines(tmp_path / "error.log")
    assert DETAILED.fullmatch(first)
    assert first.endswith(" step failed")
    assert rest[0] == "  Traceback (most recent call last):"
    assert rest[-2:] == ["  ValueError: bad", "  CRITICAL forged record"]
    assert all(line.startswith("  ") for line in rest)
