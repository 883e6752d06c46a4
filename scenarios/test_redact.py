"""Secrets never reach a sink: not the console, not info.log, not error.log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import {{ cookiecutter.package_name }}.logging_infra.redact as redaction
from {{ cookiecutter.package_name }} import config

log = logging.getLogger(__name__)

# Made up, in the shapes of real ones.
ENVIRONMENT = {
    "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
    "DB_PASSWORD": "correct horse battery staple",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "my_service_token": "tok!en-value-42",
    "MYSQL_PWD": "mysql-pwd-9f8e",
    "LDAP_PASSWD": "ldap-passwd-7d6c",
    "PROXY_AUTH": "user:pr0xy/p@ss",
}
# (text as it may be logged, the secret in it)
CORPUS = [
    (
        "wandb key 0123456789abcdef0123456789abcdef01234567",
        ENVIRONMENT["WANDB_API_KEY"],
    ),
    ("connecting with correct horse battery staple", ENVIRONMENT["DB_PASSWORD"]),
    (f"aws {ENVIRONMENT['AWS_SECRET_ACCESS_KEY']}", "K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("service says tok!en-value-42", "tok!en-value-42"),
    ("key id AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE"),
    ("temporary key ASIAY34FZKBOKMUTVV7A", "Y34FZKBOKMUTVV7A"),
    ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "abcdefghijklmnopqrstuvwxyzABCDEFGH"),
    (
        "client = OpenAI(api_key=sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12)",
        "Ab12Cd34Ef56Gh78Ij90",
    ),
    ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123"),
    (
        "push with ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "abcdefghijklmnopqrstuvwxyz01234",
    ),
    (
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "11ABCDEFG0123456789_",
    ),
    ("glpat-abcdefghij0123456789", "abcdefghij0123456789"),
    ("slack xoxb-123456789012-abcdefghijklmnop", "123456789012-abcdefghijklmnop"),
    (
        "maps key AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "SyA1234567890abcdefghijklmnopqrstuv",
    ),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
        "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    ),
    ("GET https://alice:pa55-w0rd@example.com/data.csv", "pa55-w0rd"),
    ("cache at redis://:r3dis-pass@cache:6379/0", "r3dis-pass"),
    ("GET /v1/models?token=q1w2e3r4t5y6&page=2", "q1w2e3r4t5y6"),
    ("https://api.example.com/v2?api_key=zz9yy8xx7ww6", "zz9yy8xx7ww6"),
    ("Authorization: Bearer abcdef.ghijkl-123456", "abcdef.ghijkl-123456"),
    ("headers={'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpwYXNzd29yZA=="),
    ("config: {'lr': 0.1, 'password': 'hunter2hunter2'}", "hunter2hunter2"),
    ('{"client_secret": "s3cr3t-cl13nt"}', "s3cr3t-cl13nt"),
    ("HF_TOKEN=hf_notreallyatoken", "notreallyatoken"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx9\nq0Zl3W\n"
        "-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAx9",
    ),
    ("s3://bucket/x?X-Amz-Signature=f00dbabe1234&X-Amz-Expires=60", "f00dbabe1234"),
    ("argv: train.py --password hunter2hunter2 --epochs 3", "hunter2hunter2"),
    ("argv: train.py --hf-token 'tok-from-cli-1' --epochs 3", "tok-from-cli-1"),
    ("argv: deploy --api-key ak-0987654321 --region eu", "ak-0987654321"),
    ("{'apiKey': 'camel-api-key-1'}", "camel-api-key-1"),
    ("secretKey=camel-secret-2", "camel-secret-2"),
    ('{"privateKey": "camel-private-3"}', "camel-private-3"),
    ("passphrase: 'phrase-6-long'", "phrase-6-long"),
    ("mysql --pwd=sqlpw-4 --user=root", "sqlpw-4"),
    ("{'auth': 'basic-auth-5'}", "basic-auth-5"),
    ("db: pwd=mysql-pwd-9f8e", ENVIRONMENT["MYSQL_PWD"]),
    ("bind with ldap-passwd-7d6c", ENVIRONMENT["LDAP_PASSWD"]),
    ("GET https://proxy/?auth=user%3Apr0xy%2Fp%40ss", "pr0xy%2Fp%40ss"),
]
# Log lines of ordinary training runs: epochs, paths, model ids, URLs, authors,
# arguments, hashes. None may change.
ORDINARY = (
    (Path(__file__).parent / "ordinary_log_lines.txt")
    .read_text(encoding="utf-8")
    .splitlines()
)
# An ordinary environment: the working directory, an author, an agent socket.
ORDINARY_ENVIRONMENT = {
    **ENVIRONMENT,
    "PWD": "/home/ml/runs/exp-042/checkpoint-1500",
    "OLDPWD": "/data/shards",
    "GIT_AUTHOR_NAME": "Jane Doe",
    "XAUTHORITY": "/run/user/1000/gdm/Xauthority",
}


def test_the_corpora_are_large_enough() -> None:
    assert len(CORPUS) >= 20
    assert len(ORDINARY) >= 250


@pytest.mark.parametrize(("text", "secret"), CORPUS)
def test_secret_is_masked(text: str, secret: str) -> None:
    redact = redaction.Redactor(redaction.secrets_in(ENVIRONMENT))

    masked = redact(text)
    assert secret not in masked
    assert redaction.MASK in masked


def test_ordinary_log_lines_are_left_alone() -> None:
    redact = redaction.Redactor(redaction.secrets_in(ORDINARY_ENVIRONMENT))

    assert [line for line in ORDINARY if redact(line) != line] == []


def test_only_long_values_of_secret_looking_variables_count() -> None:
    environ = {
        "HF_TOKEN": " hf_value_with_spaces_around\n",
        "API_KEY": "short",  # under 6 characters: too common a word to mask
        "MAX_TOKENS": "100000",  # a number, not a secret
        "HOME": "/home/someone",
    }
    assert redaction.secrets_in(environ) == ["hf_value_with_spaces_around"]


def test_working_directories_and_authors_are_not_secrets() -> None:
    environ = {
        "PWD": "/home/someone/project",
        "OLDPWD": "/home/someone",
        "GIT_AUTHOR_NAME": "Jane Doe",
        "XAUTHORITY": "/home/someone/.Xauthority",
        "DB_PWD": "db-pwd-value",
        "GITHUB_AUTH": "auth-value",
    }
    assert redaction.secrets_in(environ) == ["db-pwd-value", "auth-value"]


def test_secrets_are_masked_also_percent_encoded() -> None:
    redact = redaction.Redactor(redaction.secrets_in({"DB_PASSWORD": "p@ss/w0rd"}))

    assert redact("postgres://u:p%40ss%2Fw0rd@db/x") == "postgres://u:***@db/x"
    assert redact("form: p%40ss%2Fw0rd") == "form: ***"


def test_a_signal_handler_logging_while_the_pattern_compiles_is_masked_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a signal handler meets when it interrupts the first record's compile.
    monkeypatch.setattr(redaction, "_compiled", None)
    monkeypatch.setattr(redaction._compiling, "now", True, raising=False)
    redact = redaction.Redactor()

    assert redact("step 3 loss 0.25") == "step 3 loss 0.25"
    assert redact("login with password=hunter2hunter2 ok") == "login with ***"
    assert redaction._compiled is None


def test_set_up_leaves_the_pattern_to_the_first_record(tmp_path: Path) -> None:
    # Unless the run record holds one of its literals (in a path, say).
    code = (
        "import logging, sys\n"
        "import {{ cookiecutter.package_name }}.config as config\n"
        "from {{ cookiecutter.package_name }}.logging_infra import redact\n"
        "directory = config.setup_logging(sys.argv[1])\n"
        "record = ''.join(p.read_text('utf-8') for p in directory.rglob('*.json'))\n"
        "print(redact._compiled is None or redact._has_literal(record))\n"
        "logging.getLogger('first').critical('api_key=%s', 'q1w2e3r4t5y6')\n"
        "config.flush_logs()\n"
        "print(redact._compiled is None, directory)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(config.__file__).parents[1])},
    )

    assert result.returncode == 0, result.stderr
    at_setup, after_a_record, directory = result.stdout.split()
    assert (at_setup, after_a_record) == ("True", "False")
    assert "api_key=***" in (Path(directory) / "info.log").read_text("utf-8")


@pytest.fixture
def everything_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets in the environment; every record reaches the console and info.log."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(config.LOGGING_CONFIG["root"], "level", "DEBUG")
    for name in ("console", "info"):
        monkeypatch.setitem(config.LOGGING_CONFIG["handlers"][name], "level", "DEBUG")


@pytest.mark.usefixtures("everything_logged")
def test_no_secret_reaches_any_sink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.setup_logging(tmp_path)
    library = logging.getLogger("urllib3.connectionpool")
    for text, _ in CORPUS:
        log.info(text)  # in the message, written by the background thread only
        log.info("request failed: %s", text)  # in an argument
        library.critical("retrying %r", text)  # another library's, to every sink
        try:
            raise ConnectionError(text)
        except ConnectionError:
            log.critical("upload failed", exc_info=True)  # in the traceback
{%- if cookiecutter.log_format == "json" %}
        log.info("extra fields", extra={"detail": text, "nested": {"list": [text]}})
{%- endif %}
    config.flush_logs()

    sinks = {
        "console": capsys.readouterr().err,
        "info.log": (tmp_path / "info.log").read_text(encoding="utf-8"),
        "error.log": (tmp_path / "error.log").read_text(encoding="utf-8"),
    }
    assert sinks["error.log"].count("upload failed") == len(CORPUS)
    for sink, written in sinks.items():
        assert written.count(redaction.MASK) >= len(CORPUS), sink
        leaked = [secret for _, secret in CORPUS if secret in written]
        assert leaked == [], f"{sink} shows {leaked}"


@pytest.mark.usefixtures("everything_logged")
@pytest.mark.parametrize("level", [logging.ERROR, logging.CRITICAL])
def test_arguments_that_do_not_fit_are_reported_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], level: int
) -> None:
    # The standard handleError() prints a record's arguments to stderr (and the
    # call stack, so the secrets are not written in the calling line here).
    config.setup_logging(tmp_path)
    secrets = [text for text, _ in CORPUS[:3]]
    log.log(level, "connecting %s", *secrets)
    log.log(level, "%d retries", secrets[0])
    config.flush_logs()

    stderr = capsys.readouterr().err
    assert "Arguments: ('wandb key ***'," in stderr  # reported, as by the stdlib
    assert [secret for _, secret in CORPUS[:3] if secret in stderr] == []


def test_records_logged_before_setup_are_masked(tmp_path: Path) -> None:
    # The texts come from the environment: the error report shows the source line.
    code = (
        "import logging, os\n"
        "import {{ cookiecutter.package_name }}.config\n"
        "logging.getLogger('early').warning(os.environ['TEXT'])\n"
        "logging.getLogger('early').warning('%d', os.environ['ARGUMENT'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "PYTHONPATH": str(Path(config.__file__).parents[1]),
            "TEXT": "token=q1w2e3r4t5y6",
            "ARGUMENT": "password=hunter2hunter2",
        },
    )

    assert "token=***" in result.stderr
    assert "q1w2e3r4t5y6" not in result.stderr
    assert "hunter2hunter2" not in result.stderr
{%- if cookiecutter.log_format == "json" %}


def test_key_shapes_are_masked_in_logger_names_and_extra(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    key = "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"
    logging.getLogger(f"client.{key}").critical("hello", extra={"tokens": [key]})
    config.flush_logs()

    written = (tmp_path / "error.log").read_text(encoding="utf-8")
    assert '"logger": "client.hf_***"' in written
    assert '"tokens": ["hf_***"]' in written
    assert "abcdefghij" not in written
{%- endif %}
