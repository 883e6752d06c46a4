"""Secrets never reach a sink: not the console, not info.log, not error.log."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import {{ cookiecutter.package_name }}.logging_infra.redact as redaction
from {{ cookiecutter.package_name }} import config

log = logging.getLogger(__name__)
RunPython = Callable[..., subprocess.CompletedProcess[str]]

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
    # A token as the user name (GitHub's x-access-token style, a clone URL).
    ("pip install git+https://q8Xk2mP9vL4tR7@git.example.com/org/x", "q8Xk2mP9vL4tR7"),
    ("MLFLOW_TRACKING_URI=http://9f8e7d6c5b4a@mlflow:5000", "9f8e7d6c5b4a"),
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
    (
        "posting to https://hooks.slack.com/services/T0123ABCD/B0456EFGH/"
        "abcdefghijklmnopqrstuvwx",
        "abcdefghijklmnopqrstuvwx",
    ),
    (
        "s3 credentials AKIAZZZZEXAMPLE1ZZZZ:q9W8e7R6t5Y4u3I2o1P0aSdFgHjKlZxCvBnM1234",
        "q9W8e7R6t5Y4u3I2o1P0aSdF",
    ),
    ("login(user='bob', password='tiger lily orbit canyon')", "lily orbit canyon"),
    (
        "DefaultEndpointsProtocol=https;AccountName=mlstore;"
        "AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA+/==;EndpointSuffix=core.windows.net",
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        "DEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\nMIIEpQIBAAKCAQEAencrypted0body\n"
        "-----END RSA PRIVATE KEY-----",
        "MIIEpQIBAAKCAQEAencrypted0body",
    ),
    ("argv: train.py --wandb-key XYZ --epochs 3", "XYZ"),
    ("argv: train.py --epochs 3 --wandb-key=XYZ", "XYZ"),
    ("argv: ['train.py', '--comet-api-key', 'c0met-k3y']", "c0met-k3y"),
    ("argv: train.py --db-password 'two words' --epochs 3", "words"),
    ('{"wandb_key": "w4ndb-k3y", "lr": 0.1}', "w4ndb-k3y"),
    # Every case of a name that ends with "key", and options' names in each case.
    ("s3: Access_Key=Zx9key-value1, region=eu", "Zx9key-value1"),
    ("settings SECRET_KEY: 'dj4ngo-s3cret'", "dj4ngo-s3cret"),
    ("minio(accessKey='AbC123xyz', bucket='data')", "AbC123xyz"),
    ("argv: train.py --HF-TOKEN hf-t0ken-upper", "hf-t0ken-upper"),
    ("argv: train.py --neptune_api_token=n3ptune-t0k", "n3ptune-t0k"),
    ("argv: train.py --epochs 3 --OpenAI-Key 0pen-k3y", "0pen-k3y"),
    # A URL's user information of any length: no bound to step over.
    ("https://bob:" + "p4ss" * 200 + "@example.com/x", "p4ss"),
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
        "HF_TOKEN": " hf_v4lue_with_spaces_ar0und\n",
        "API_KEY": "s3cr",  # under 6 characters: too common a word to mask
        "MAX_TOKENS": "100000",  # a number, not a secret
        "HOME": "/home/someone",
    }
    assert redaction.secrets_in(environ) == ["hf_v4lue_with_spaces_ar0und"]


def test_working_directories_and_authors_are_not_secrets() -> None:
    environ = {
        "PWD": "/home/someone/project",
        "OLDPWD": "/home/someone",
        "GIT_AUTHOR_NAME": "Jane Doe",
        "XAUTHORITY": "/home/someone/.Xauthority",
        "DB_PWD": "db-pwd-v4lue",
        "GITHUB_AUTH": "auth-v4lue-1",
    }
    assert set(redaction.secrets_in(environ)) == {"auth-v4lue-1", "db-pwd-v4lue"}


# Variables with secret-sounding names whose values are words, names, figures,
# paths or URLs: masking them would mask every "val_loss" in the logs.
ORDINARY_SECRET_NAMED = {
    "MONITOR_KEY": "val_loss",
    "SORT_KEY": "sequence_length",
    "TOKENIZER_NAME": "bert-base-uncased",
    "TOKENIZERS_PARALLELISM": "false",
    "AUTH_MODE": "oauth",
    "SSH_AUTH_SOCK": "/tmp/ssh-XXXXabcd/agent.1234",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/ml/.config/gcloud/key.json",
    "HF_TOKEN_PATH": "~/.cache/huggingface/token",
    "TOKEN_URL": "https://auth.example.com/oauth/token",
    "MODEL_KEY": "meta-llama/Llama-3.1-8B",
    "CACHE_KEY": "20240501",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
}


def test_secret_named_variables_must_also_look_secret() -> None:
    assert redaction.secrets_in(ORDINARY_SECRET_NAMED) == []
    # What a secret looks like: symbols, digits among letters, several words,
    # or letters whose case changes again and again.
    secret_looking = {
        "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
        "DB_PASSWORD": "correct horse battery staple",
        "SMTP_PASSWORD": "Summer!24",
        "APP_SECRET": "xKqPzWmRtYvNbLsD",
        "MONITOR_KEY": "val_l0ss_9x",
    }
    assert set(redaction.secrets_in(secret_looking)) >= set(secret_looking.values())


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


def test_set_up_leaves_the_pattern_to_the_first_record(
    tmp_path: Path, run_python: RunPython
) -> None:
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
    result = run_python("-c", code, str(tmp_path))

    assert result.returncode == 0, result.stderr
    at_setup, after_a_record, directory = result.stdout.split()
    assert (at_setup, after_a_record) == ("True", "False")
    assert "api_key=***" in (Path(directory) / "info.log").read_text("utf-8")


def test_a_few_plain_texts_leave_the_pattern_uncompiled(run_python: RunPython) -> None:
    # A spawned pool worker that logs 3 plain records spared about 10 ms of CPU;
    # a process that logs many compiles it, then looks for literals no more. In
    # a process of its own: a writer thread of this one may mask a record meanwhile.
    code = (
        "from {{ cookiecutter.package_name }}.logging_infra import redact\n"
        "texts = [f'step {n} loss 0.25' for n in range(redact.SPARED_TEXTS)]\n"
        "print(all(redact.redact(text) == text for text in texts))\n"
        "print(redact._compiled is None)\n"
        "print(redact.redact('step 99 loss 0.25'), redact._compiled is None)\n"
        "redact._compiled, redact._spared = None, 0\n"
        "print(redact.redact('login with password=hunter2hunter2'))\n"
        "print(redact._compiled is None)\n"
    )
    result = run_python("-c", code)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True",
        "True",
        "step 99 loss 0.25 False",
        "login with password=***",
        "False",
    ]


def test_spawned_workers_that_log_plain_records_never_compile_the_pattern(
    tmp_path: Path, run_python: RunPython
) -> None:
    code = (
        "import logging, multiprocessing, sys\n"
        "from {{ cookiecutter.package_name }} import config\n"
        "from {{ cookiecutter.package_name }}.logging_infra import redact\n"
        "def task(secret):\n"
        "    logging.getLogger('task').error('epoch 1 loss 0.25 %s', secret)\n"
        "    config.flush_logs()\n"
        "    return redact._compiled is not None\n"
        "if __name__ == '__main__':\n"
        "    directory = config.setup_logging(sys.argv[1])\n"
        "    spawn = multiprocessing.get_context('spawn')\n"
        "    with spawn.Pool(2, config.worker_logging(), maxtasksperchild=1) as pool:\n"
        "        print(*pool.map(task, ['', 'api_key=q1w2e3r4t5y6']), directory)\n"
    )
    script = tmp_path / "pool.py"
    script.write_text(code, encoding="utf-8")
    result = run_python(str(script), str(tmp_path / "logs"), timeout=120)

    assert result.returncode == 0, result.stderr
    *compiled, directory = result.stdout.split()
    assert compiled == ["False", "True"]
    errors = (Path(directory) / "error.log").read_text(encoding="utf-8")
    assert "api_key=***" in errors  # error.log takes ERROR whatever the bake's levels
    assert "q1w2e3r4t5y6" not in errors + result.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_workers_inherit_the_pattern(
    tmp_path: Path, run_python: RunPython
) -> None:
    # The parent compiles it once, before its first fork, if no record did;
    # each worker compiled it again for its first record (8.8 ms) before.
    code = (
        "import multiprocessing, sys\n"
        "from {{ cookiecutter.package_name }} import config\n"
        "from {{ cookiecutter.package_name }}.logging_infra import redact\n"
        "def compiled(_):\n"
        "    return redact._compiled is not None\n"
        "config.setup_logging(sys.argv[1])\n"
        "print(redact._compiled is None)\n"
        "with multiprocessing.get_context('fork').Pool(2) as pool:\n"
        "    print(all(pool.map(compiled, range(4))))\n"
    )
    result = run_python("-c", code, str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


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


def test_records_logged_before_setup_are_masked(run_python: RunPython) -> None:
    # The texts come from the environment: the error report shows the source line.
    code = (
        "import logging, os\n"
        "import {{ cookiecutter.package_name }}.config\n"
        "logging.getLogger('early').warning(os.environ['TEXT'])\n"
        "logging.getLogger('early').warning('%d', os.environ['ARGUMENT'])\n"
    )
    environ = {"TEXT": "token=q1w2e3r4t5y6", "ARGUMENT": "password=hunter2hunter2"}
    result = run_python("-c", code, env=environ)

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


def test_extra_fields_under_secret_names_are_masked_whole(tmp_path: Path) -> None:
    config.setup_logging(tmp_path)
    settings = {"api_key": "plain words", "model": "bert-base-uncased"}
    special_tokens = {"bos_token": "<s>", "pad_token": "[PAD]", "hub_token": None}
    logging.getLogger("cfg").critical(
        "config",
        extra={"cfg": settings, "tokens": special_tokens, "dbPassword": "two words"},
    )
    config.flush_logs()

    written = (tmp_path / "error.log").read_text(encoding="utf-8")
    assert '"cfg": {"api_key": "***", "model": "bert-base-uncased"}' in written
    assert '"dbPassword": "***"' in written
    assert '{"bos_token": "<s>", "pad_token": "[PAD]", "hub_token": null}' in written
    assert "words" not in written
{%- endif %}


# Real output of the ML libraries (transformers, datasets, accelerate, Lightning,
# torch, their command-line help), one "source<TAB>line" row each; made by the
# template's tests/make_library_log_lines.py.
LIBRARY = [
    tuple(row.split("\t", 1))
    for row in (Path(__file__).parent / "library_log_lines.tsv")
    .read_text(encoding="utf-8")
    .splitlines()
]


def test_library_output_is_left_alone() -> None:
    # Under 1% of the lines may change, with secret-named variables set to
    # ordinary values (MONITOR_KEY=val_loss) as well as real secrets.
    environ = {**ORDINARY_ENVIRONMENT, **ORDINARY_SECRET_NAMED}
    redact = redaction.Redactor(redaction.secrets_in(environ))
    assert len(LIBRARY) >= 1500

    changed = [(source, line) for source, line in LIBRARY if redact(line) != line]
    by_library: dict[str, list[int]] = {}
    for source, line in LIBRARY:
        counts = by_library.setdefault(source.split(":")[0], [0, 0])
        counts[0] += (source, line) in changed
        counts[1] += 1
    assert len(changed) < len(LIBRARY) / 100, (by_library, changed)


def test_a_command_line_key_is_masked_in_the_run_record_and_summary(
    tmp_path: Path, run_python: RunPython
) -> None:
    # As a script with its own --wandb-key option would record it.
    code = (
        "import logging, sys\n"
        "from {{ cookiecutter.package_name }} import config\n"
        "from {{ cookiecutter.package_name }}.logging_infra import runs\n"
        "config.add_run_info(args={'wandb_key': sys.argv[-1], 'epochs': 3})\n"
        "directory = config.setup_logging(sys.argv[1])\n"
        "logging.getLogger('main').critical(runs.summary())\n"  # any bake's files
        "config.flush_logs()\n"
    )
    key = "w4ndbXYZ"
    result = run_python("-c", code, str(tmp_path), "--wandb-key", key)

    assert result.returncode == 0, result.stderr
    record = next(tmp_path.rglob("*.json")).read_text("utf-8")
    assert "--wandb-key ***" in record
    assert '"wandb_key": "***"' in record
    info = next(tmp_path.rglob("info.log")).read_text("utf-8")
    assert "--wandb-key ***" in info
    for written in (record, info, result.stderr):
        assert key not in written


TOKEN = "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"


class Unprintable:
    """An argument whose __str__ raises, quoting the secret it holds."""

    def __str__(self) -> str:
        raise ValueError(f"cannot show {TOKEN} or password=hunter2hunter2")

    def __repr__(self) -> str:
        return f"Unprintable({TOKEN!r})"


@pytest.mark.usefixtures("everything_logged")
def test_an_argument_that_cannot_be_shown_is_reported_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.setup_logging(tmp_path)
    log.info("config: %s", Unprintable())
    config.flush_logs()

    stderr = capsys.readouterr().err
    assert stderr.count("--- Logging error ---") == 1
    assert "ValueError: cannot show hf_*** or password=***" in stderr
    assert "Arguments: (\"Unprintable('hf_***')\",)" in stderr
    assert "abcdefghij" not in stderr
    assert "hunter2hunter2" not in stderr


# Texts that would make a pattern try again at every character and scan on each
# time (a run of dashes once took 7 s for 10,000): each literal alone, repeated,
# and followed by what its pattern takes, once or repeated; runs of each of its
# characters.
FILLERS = ("", "a", "A1", "=", "='", '="', ": ", " ", "-", "/", ":", "a-", "_", ".")


def _worst_cases() -> dict[str, tuple[str, str]]:
    cases = {}
    rests = set()
    for literal, rest, _ in redaction.PATTERNS:
        if rest in rests and literal.lower() != literal.upper():
            continue  # the same pattern after another name: the same cost
        rests.add(rest)
        for filler in FILLERS:
            cases[f"({literal} {filler})*n"] = (literal + filler, "")
            cases[f"{literal} ({filler})*n"] = (filler or "x", literal)
        for character in literal:  # each a place to try a branch at
            cases[f"({character})*n"] = (character, "")
    cases["-----BEGIN PRIVATE KEY----- (A)*n"] = ("A", "-----BEGIN PRIVATE KEY-----")
    cases["(eyJ...)*n"] = ("eyJhbGciOiJIUzI1NiJ9.eyJ", "")
    cases["long base64"] = ("Zm9vYmFyYmF6cXV4+/", "")
    cases["(://user:)*n"] = ("://user:", "")
    cases["(--a-)*n"] = ("--a-", "")
    cases["(--api-key )*n"] = ("--api-key ", "")
    cases["(Bearer )*n"] = ("Bearer ", "")
    cases["(password=' )*n"] = ("password=' ", "")
    return cases


def _seconds(redact: redaction.Redactor, text: str, times: int) -> float:
    """The least CPU time of this thread that masking the text took: time spent
    waiting for the CPU, on a shared machine, is not counted."""
    best = float("inf")
    for _ in range(times):
        started = time.thread_time()
        redact(text)
        best = min(best, time.thread_time() - started)
    return best


def _text(case: tuple[str, str], size: int) -> str:
    unit, head = case
    return (head + unit * (size // len(unit) + 1))[:size]


def test_masking_cost_grows_linearly() -> None:
    # Not an absolute bound, which a loaded machine could break: the test
    # compares sizes. 100 KB may take about 10 times as long as 10 KB (linear),
    # not 100 times (quadratic); the threshold, 30, lies between the two. Each
    # time is the best of 5 in CPU time, with the garbage collector off; the
    # cases compared are the 10 slowest at 1 KB. A case whose 10 KB takes over
    # a second (a run of dashes took 7) is not timed at 100 KB: it failed.
    redact = redaction.Redactor(redaction.secrets_in(ENVIRONMENT))
    redact("compile the pattern first")
    cases = _worst_cases()
    assert len(cases) >= 300
    gc.disable()
    try:
        slowest = sorted(
            cases, key=lambda name: _seconds(redact, _text(cases[name], 1_000), 1)
        )[-10:]
        ratios = {}
        for name in slowest:
            once = _seconds(redact, _text(cases[name], 10_000), 1)
            assert once < 1, f"{name}: {once:.1f} s for 10 KB"
            small = _seconds(redact, _text(cases[name], 10_000), 5)
            large = _seconds(redact, _text(cases[name], 100_000), 5)
            ratios[name] = (round(large / small, 1), f"{large * 1000:.1f} ms")
    finally:
        gc.enable()
    assert all(ratio < 30 for ratio, _ in ratios.values()), ratios


def test_past_a_thousand_places_to_mask_the_rest_is_masked_unread() -> None:
    # Each place costs a few us in Python: 100 KB of "pwd=x " held 16,000.
    redact = redaction.Redactor()
    read = redaction.MATCHES_READ
    places = [f"pwd=s3cret{n} " for n in range(read + 500)]

    masked = redact("".join(places))
    unread = len("".join(places[read:])) + 1  # and the space after the last read
    assert masked == "pwd=*** " * (read - 1) + "pwd=***" + (
        f"*** (the last {unread} characters, masked unread: "
        f"more than {read} places to mask in one text)"
    )
    # As many places as are read: each masked, nothing else.
    assert redact("".join(places[:read])) == "pwd=*** " * read
