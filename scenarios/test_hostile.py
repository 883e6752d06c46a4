"""Hostile input and surroundings: no terminal control, no write through a link,
no crash on a bad environment, no forged line."""

from __future__ import annotations

import io
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import logfiles
from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.logging_infra import text_format

log = logging.getLogger(__name__)
RunPython = Callable[..., subprocess.CompletedProcess[str]]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")

# What a logged file name or server reply could hold: erase the line (CR, BS,
# ESC[2K), a fake red ERROR, a window title (OSC ... BEL), NUL, DEL, a C1 CSI
# and text reversed by a bidirectional override.
HOSTILE = (
    "name\r\x08\x1b[2K\x1b[31mERROR\x1b[0m \x1b]0;owned\x07 nul\x00 del\x7f"
    " csi\x9b2J rev\u202eexe.txt\u2066 iso\u2069 tab\there"
)
CONTROLS = {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))} - {"\t"} | set(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def raw_controls(text: str, allowed: str = "\n") -> set[str]:
    return {c for c in text if c in CONTROLS and c not in allowed}


def test_control_characters_are_escaped_on_the_console_and_in_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.setup_logging(tmp_path)
    log.critical("file %s", HOSTILE)
    try:
        raise OSError(HOSTILE)
    except OSError:
        log.critical("traceback", exc_info=True)
    config.flush_logs()

    console = capsys.readouterr().err
    assert raw_controls(console) == set()
    assert "\\x1b]0;owned\\x07" in console and "tab\there" in console
    for name in ("info.log", "error.log"):
        data = (tmp_path / name).read_bytes()
        assert b"\x00" not in data  # grep reads it as text
        assert raw_controls(data.decode("utf-8")) == set()
    [record, traceback] = logfiles.read(tmp_path / "error.log")
    assert record.message == as_read_back(f"file {HOSTILE}")
    assert traceback.exception.endswith(f"OSError: {as_read_back(HOSTILE)}")


def as_read_back(text: str) -> str:
{%- if cookiecutter.log_format == "json" %}
    """JSON escapes every control character, and its reader restores them."""
    return text
{%- else %}
    """Every control character but tab is written escaped, as Python would."""
    return text.encode("unicode_escape").decode("ascii").replace("\\t", "\t")
{%- endif %}


def test_a_multi_line_message_keeps_its_lines_on_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.setup_logging(tmp_path)
    log.critical("table:\n a | b\n 1 | 2\r")
    config.flush_logs()

    assert capsys.readouterr().err == "table:\n a | b\n 1 | 2\\r\n"


def test_a_console_that_cannot_encode_a_character_still_gets_every_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = io.BytesIO()
    ascii_only = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    monkeypatch.setattr(sys, "stderr", ascii_only)
    config.setup_logging(tmp_path)
    log.critical("caf\u00e9")
    log.critical("plain")
    config.flush_logs()

    lines = raw.getvalue().decode("ascii").splitlines()
    assert lines[-2].endswith("caf\\xe9") and lines[-1].endswith("plain"), lines


def test_records_logged_before_setup_are_escaped(run_python: RunPython) -> None:
    result = run_python(
        "-c",
        "import logging\n"
        "import {{ cookiecutter.package_name }}.config\n"
        f"logging.getLogger('early').warning({HOSTILE!r})\n",
    )

    assert result.returncode == 0
    assert raw_controls(result.stderr) == set()
    assert "\\x1b]0;owned\\x07" in result.stderr


@posix_only
@pytest.mark.parametrize("name", ["info.log", "error.log"])
@pytest.mark.parametrize("dangling", [False, True])
def test_a_planted_symlink_is_never_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, dangling: bool
) -> None:
    log_dir, victim = tmp_path / "logs", tmp_path / "victim"
    log_dir.mkdir()
    if not dangling:
        victim.write_text("precious\n")
        victim.chmod(0o644)
    (log_dir / name).symlink_to(victim)

    assert config.setup_logging(log_dir, level="DEBUG") is None
    for number in range(10):
        log.critical("record %d", number)
    config.flush_logs()

    if dangling:
        assert not victim.exists()
    else:
        assert victim.read_text() == "precious\n"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    console = capsys.readouterr().err.splitlines()
    assert console == [
        f"Cannot write log files in {log_dir} ({name} is a symbolic link, never "
        "followed); logging to the console only",
        *(f"record {number}" for number in range(10)),
    ]


@posix_only
def test_rotation_never_writes_through_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"]["info"], "maxBytes", 2048)
    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"]["info"], "backupCount", 3)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    config.setup_logging(tmp_path / "logs")
    for backup in ("info.log.1", "info.log.2", "info.log.3"):
        (tmp_path / "logs" / backup).symlink_to(victim)
    for number in range(200):
        log.critical("record %05d", number)
    config.flush_logs()

    assert victim.read_text() == "precious\n"
    rotated = sorted((tmp_path / "logs").glob("info.log*"))
    assert not [path for path in rotated if path.is_symlink()]


@posix_only
def test_created_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        config.setup_logging(tmp_path / "a" / "b" / "logs")
    finally:
        os.umask(old_umask)

    for path in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "logs"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE((tmp_path / "a/b/logs/info.log").stat().st_mode) == 0o600


@posix_only
def test_no_stderr_logs_to_the_files_only(
    tmp_path: Path, run_python: RunPython
) -> None:
    # As under pythonw or with stderr closed (2>&-): sys.stderr is None.
    result = run_python(
        "-c",
        "import logging, sys\n"
        "assert sys.stderr is None\n"
        "from {{ cookiecutter.package_name }} import config\n"
        "config.RUN_DIRS_KEPT = None  # one shared directory, whatever the layout\n"
        "config.LOGGING_CONFIG['handlers']['info']['level'] = 'DEBUG'\n"
        "print(config.setup_logging('logs', 'DEBUG'))\n"
        "logging.getLogger().critical('still logged')\n",
        stderr_closed=True,
    )

    assert result.returncode == 0
    assert result.stdout == f"{tmp_path / 'logs'}\n"  # made absolute at set-up
    records = logfiles.read(tmp_path / "logs" / "error.log")
    assert [r.message for r in records if r.level == "CRITICAL"] == ["still logged"]
    [warning] = logfiles.read(tmp_path / "logs" / "info.log")[:1]
    assert warning.message == "No stream to write to: logging without console"


@pytest.mark.parametrize(
    "run_id",
    [
        "ok\nCRITICAL 2030-01-01 00:00:00,000 run=x rank=0 [a.py:b:1] forged",
        "tab\tand\x1b[2J and \u202e",
        "x" * 1000,
    ],
)
def test_a_bad_run_id_warns_once_and_is_made_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_id: str
) -> None:
    monkeypatch.setenv(config.RUN_ID_ENV, run_id)
    monkeypatch.setitem(config.LOGGING_CONFIG["handlers"]["info"], "level", "DEBUG")
    config.setup_logging(tmp_path, level="DEBUG")
    log.critical("hello")

    safe = config.run_context().run_id
    assert len(safe) <= 128 and safe.isascii() and safe.isprintable()
    assert " " not in safe
    [warning, hello] = logfiles.read(tmp_path / "info.log")
    assert warning.message.startswith(f"{config.RUN_ID_ENV}=")
    assert warning.message.endswith(f"is not a plain word; using {safe}")
    assert (hello.message, hello.run_id) == ("hello", safe)
    text = (tmp_path / "info.log").read_text(encoding="utf-8")
    assert text.count("\n") == 2  # and each line a record, as read() checked


def test_a_clock_that_jumps_never_gets_a_stale_time() -> None:
    # The text formatter calls strftime() once a second and keeps the text: the
    # same second again, the next one, a clock set back, then now.
    ours = text_format.TextFormatter("%(asctime)s %(message)s")
    standard = logging.Formatter("%(asctime)s %(message)s")
    for created in (1.8e9, 1.8e9 + 0.999, 1.8e9 + 1.0004, 1.8e9 - 0.5, time.time()):
        record = logging.makeLogRecord({"created": created, "msg": "x"})
        assert ours.format(record) == standard.format(record)
