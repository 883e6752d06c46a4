"""Bake option combinations and check each project as its users meet it."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import (
    PYTHONS,
    Bake,
    assert_passed,
    project_env,
    render_scenarios,
    run,
    tool,
)

# Every value of every option appears at least once.
COMBINATIONS: dict[str, dict[str, str]] = {
    "defaults": {},
    "verbose-nested-dir": {
        "project_name": "Vision Transformer Sweep",
        "log_dir": "var/log/train",
        "console_log_level": "DEBUG",
        "info_log_level": "DEBUG",
        "log_format": "json",
        "log_layout": "per_run",
    },
    "quiet": {
        "project_name": "quiet_job",
        "console_log_level": "WARNING",
        "info_log_level": "WARNING",
        "console_style": "rich",
    },
    # The console above the files: the root follows the lowest handler.
    "errors-only": {
        "console_log_level": "CRITICAL",
        "info_log_level": "ERROR",
        "use_tqdm": "yes",
        "log_layout": "per_run",
    },
    # With the values above, every combination of the three feature options.
    "json-rich-tqdm": {
        "log_format": "json",
        "console_style": "rich",
        "use_tqdm": "true",
    },
    "json-rich": {"log_format": "json", "console_style": "rich"},
    "json-tqdm": {"log_format": "json", "use_tqdm": "1", "console_log_level": "DEBUG"},
    "rich-tqdm": {
        "console_style": "rich",
        "use_tqdm": "y",
        "log_dir": "out/logs",
        "info_log_level": "CRITICAL",
    },
    "awkward-text": {
        # Also in the description, which follows from the name.
        "project_name": 'Ünïcode "Quotes" \' \\ back\\slash, { braces }, tab\t 😀 2',
        "author_name": 'O\'Brien "Q" \\',
        "author_email": "",
    },
    # Each tracker, with a layout and a format the others leave at their defaults.
    "tracker-mlflow": {"tracker": "mlflow", "log_layout": "per_run"},
    "tracker-tensorboard": {"tracker": "tensorboard", "log_format": "json"},
    "longest-names": {
        "project_name": "x" * 40,
        "log_dir": "deeply-nested.log-dir/" * 2 + "d" * 16,
    },
}
# The machinery's slow scenarios (many processes, repetitions) run for these: both
# file formats and layouts, both console styles, and tqdm (a stuck or captured
# console takes another path with each).
FULL_SUITE = ["defaults", "verbose-nested-dir", "quiet", "errors-only"]
SLOW = pytest.mark.slow
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DETAILED = re.compile(
    r"(?P<level>[A-Z]+) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    r"run=\S+ rank=0 \[\w+\.py:\w+:\d+\] (?P<message>\S.*)"
)
JSON_FIELDS = ["time", "severity", "logger", "message", "file", "line", "function"]
JSON_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
JINJA_LEFTOVERS = re.compile(r"\{\{|\{%|\{#|cookiecutter\.")
# Terminal control sequences: styles, cursor moves, hyperlinks.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x1b]*\x1b\\")


@dataclass
class Baked:
    path: Path
    answers: dict[str, str]
    files: list[Path] = field(default_factory=list)  # as rendered, before any run
    defaults: bool = False  # made with every default answer
    full_suite: bool = False  # its own suite runs the slow tests too

    @property
    def log_dir(self) -> Path:
        return self.path / self.answers["log_dir"]

    @property
    def run_dir(self) -> Path:
        """Where the last run's files are: its own directory, or the shared one."""
        if self.answers["log_layout"] == "per_run":
            return (self.log_dir / "latest").resolve()
        return self.log_dir

    def levels_reaching(self, handler: str) -> list[str]:
        """Levels at or above the handler's own threshold (the root is below all)."""
        own = "ERROR" if handler == "error" else self.answers[f"{handler}_log_level"]
        return LEVELS[LEVELS.index(own) :]

    @property
    def options(self) -> set[str]:
        """The optional features this project was made with."""
        chosen = {self.answers["log_format"], self.answers["console_style"]}
        chosen.add(self.answers.get("tracker", "none"))
        return chosen | ({"tqdm"} if self.answers["use_tqdm"] else set())

    def run_demo(self, *args: str) -> subprocess.CompletedProcess[str]:
        shutil.rmtree(self.log_dir, ignore_errors=True)
        return run(
            sys.executable,
            "-m",
            self.answers["package_name"],
            *args,
            cwd=self.path,
            env=project_env(self.path),
            check=False,
        )

    def log_lines(self, name: str) -> list[dict[str, str]]:
        """Level and message of each record in a log file, whatever its format."""
        path = self.run_dir / name
        if "json" in self.options:
            return [json_record(line) for line in path.read_text("utf-8").splitlines()]
        return [match.groupdict() for match in log_lines(path)]


@pytest.fixture(
    scope="module",
    params=[  # the quick run (-m "not slow") checks the defaults only
        pytest.param(answers, id=name, marks=() if name == "defaults" else SLOW)
        for name, answers in COMBINATIONS.items()
    ],
)
def baked(request: pytest.FixtureRequest, cookies_session) -> Baked:  # type: ignore[no-untyped-def]
    result = cookies_session.bake(extra_context=request.param)
    assert result.exception is None, result.exception
    path = Path(result.project_path)
    # The machinery's scenarios are checked as the generated files are.
    render_scenarios(path, dict(result.context))
    files = sorted(p for p in path.rglob("*") if p.is_file())
    full_suite = any(request.param == COMBINATIONS[name] for name in FULL_SUITE)
    return Baked(path, dict(result.context), files, not request.param, full_suite)


def json_record(line: str) -> dict[str, str]:
    record = json.loads(line)
    assert list(record)[: len(JSON_FIELDS)] == JSON_FIELDS, line
    assert JSON_TIME.fullmatch(record["time"]), line
    assert record["rank"] == 0 and record["run_id"], line
    return {"level": record["severity"], "message": record["message"]}


def log_lines(path: Path) -> list[re.Match[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    matches = [DETAILED.fullmatch(line) for line in lines]
    assert all(matches), f"{path.name}: a line is not in the detailed format: {lines}"
    return [match for match in matches if match]


def test_expected_files_exist(baked: Baked) -> None:
    package = baked.answers["package_name"]
    infra = f"src/{package}/logging_infra"
    relative = {path.relative_to(baked.path).as_posix() for path in baked.files}
    assert relative >= {
        ".gitattributes",
        ".github/workflows/ci.yml",
        ".gitignore",
        ".pre-commit-config.yaml",
        "README.md",
        f"lnav/{package}_log.json",
        "pyproject.toml",
        f"src/{package}/__init__.py",
        f"src/{package}/__main__.py",
        f"src/{package}/config.py",
        f"src/{package}/data.py",
        f"src/{package}/main.py",
        f"src/{package}/train.py",
        f"{infra}/__init__.py",
        f"{infra}/configure.py",
        f"{infra}/console.py",
        f"{infra}/context.py",
        f"{infra}/files.py",
        f"{infra}/libraries.py",
        f"{infra}/redact.py",
        f"{infra}/relay.py",
        f"{infra}/runs.py",
        f"{infra}/sigterm.py",
        f"{infra}/text_format.py",
        f"{infra}/writer.py",
        f"src/{package}/py.typed",
        "tests/test_demo.py",
    }
    # Modules and tests of options not chosen are not rendered.
    optional = {
        f"{infra}/json_format.py": "json" in baked.options,
        "scenarios/test_json.py": "json" in baked.options,
        f"{infra}/tracking.py": "none" not in baked.options,
    }
    assert {name: name in relative for name in optional} == optional


def test_user_files_reach_the_machinery_through_config_only(baked: Baked) -> None:
    package = baked.path / "src" / baked.answers["package_name"]
    users = [package / name for name in ("main.py", "train.py", "data.py")]
    users += [*baked.path.glob("tests/*.py"), *baked.path.glob("examples/*.py")]
    assert len(users) >= 5
    importing = [p.name for p in users if "logging_infra" in p.read_text("utf-8")]
    assert importing == []


def test_dependencies_follow_the_options(baked: Baked) -> None:
    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text("utf-8"))
    names = [
        re.split(r"[<>=]", spec)[0] for spec in pyproject["project"]["dependencies"]
    ]
    wanted = {"mlflow": ["mlflow"], "rich": ["rich"], "tqdm": ["tqdm"]}
    wanted["tensorboard"] = ["tensorboard", "tensorboardX"]
    assert names == [
        name for key in sorted(wanted) if key in baked.options for name in wanted[key]
    ]


def test_files_read_as_written_by_hand(baked: Baked) -> None:
    for path in baked.files:
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(baked.path)
        if not text:  # e.g. the py.typed marker
            continue
        if path.suffix == ".tsv":  # a corpus of library output, kept byte for byte
            continue
        if path.name != "ci.yml":  # GitHub's own ${{ }} expressions
            assert not JINJA_LEFTOVERS.search(text), f"{name}: Jinja left over"
        assert not text.startswith("\n"), f"{name}: starts with a blank line"
        assert text.endswith("\n"), f"{name}: no newline at the end"
        assert not text.endswith("\n\n"), f"{name}: blank lines at the end"
        assert "\n\n\n\n" not in text, f"{name}: stray blank lines"
        assert not re.search(r"[ \t]+$", text, re.MULTILINE), f"{name}: trailing blanks"
        if path.suffix == ".md":
            fences = [line for line in text.splitlines() if "```" in line]
            assert all(re.fullmatch(r" *```\w*", line) for line in fences), name
            prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # not code
            assert not re.search(r"\n#+ .*\n[^\n]", prose), f"{name}: heading glued on"
            glued_table = re.search(r"\n[^|\n][^\n]*\n\|", prose)
            assert not glued_table, f"{name}: table glued on"


def test_config_reads_in_one_sitting(baked: Baked) -> None:
    config = baked.path / "src" / baked.answers["package_name"] / "config.py"
    lines = config.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"config.py has {len(lines)} lines"


def test_data_and_code_parse(baked: Baked) -> None:
    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["name"] == baked.answers["__project_slug"]
    assert pyproject["project"]["description"] == baked.answers["__description"]
    assert pyproject["project"]["authors"][0]["name"] == baked.answers["author_name"]
    for path in baked.files:
        if path.suffix in {".yml", ".yaml"}:
            assert yaml.safe_load(path.read_text(encoding="utf-8")), path
        if path.suffix == ".json":  # the lnav format
            assert json.loads(path.read_text(encoding="utf-8")), path
        if path.suffix == ".py":
            ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_lint_and_types_are_clean(baked: Baked, mypy_cache: Path) -> None:
    """ruff covers the scenarios too; mypy runs with the project's own settings,
    then strict on the scenarios, which import the package from src/."""
    run(tool("ruff"), "check", "--no-cache", ".", cwd=baked.path)
    run(tool("ruff"), "format", "--no-cache", "--check", ".", cwd=baked.path)
    run(tool("mypy"), "--cache-dir", mypy_cache, cwd=baked.path)
    strict = ("--cache-dir", mypy_cache, "--strict", "scenarios")
    run(tool("mypy"), *strict, cwd=baked.path, env={"MYPYPATH": "src"})


def test_generated_test_suite_passes(baked: Baked) -> None:
    """The user's own suite, as `pytest` runs it in the project: small and fast."""
    result = run(
        sys.executable,
        *("-m", "pytest", "-q", "-p", "no:cacheprovider"),
        cwd=baked.path,
        env=project_env(baked.path),
    )
    assert_passed(result.stdout)


def test_machinery_scenarios_pass(baked: Baked) -> None:
    """Faults, workers, hostile input, redaction, runs, lnav: against this bake."""
    slow = [] if baked.full_suite else ["-m", "not slow"]
    result = run(
        sys.executable,
        *("-m", "pytest", "-q", "-p", "no:cacheprovider", *slow, "scenarios"),
        cwd=baked.path,
        env=project_env(baked.path),
        timeout=2400,
    )
    assert_passed(result.stdout)
    if baked.answers["tracker"] != "none" and not baked.full_suite:
        # The tracker's slow ones too: a real MLflow server, Lightning's loggers.
        tracker = run(
            sys.executable,
            *("-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "slow"),
            "scenarios/test_tracker.py",
            cwd=baked.path,
            env=project_env(baked.path),
            timeout=600,
        )
        assert_passed(tracker.stdout)


def test_main_script_logs_a_run(baked: Baked) -> None:
    result = baked.run_demo("--epochs", "2")

    assert result.returncode == 0, result.stderr
    info = baked.log_lines("info.log")
    assert {line["level"] for line in info} <= set(baked.levels_reaching("info"))
    shown = str(baked.run_dir.relative_to(baked.path))  # as the console names it
    if "INFO" in baked.levels_reaching("info"):
        messages = [line["message"] for line in info]
        # The files get the whole summary; the console, where the logs are.
        summary = r"Run (\S+) started: .* --epochs 2; args=\{\"epochs\": 2, .*"
        started = re.fullmatch(summary, messages[0])
        assert started, messages[0]
        epochs = [
            line["message"].split()[1]
            for line in info
            if line["message"].startswith("epoch ") and line["level"] == "INFO"
        ]
        assert epochs == ["1/2", "2/2"]  # at DEBUG, the steps' records come too
        assert re.fullmatch(rf"Run {started[1]} finished in [\d.]+s", messages[-1])
        assert not any(shown in m.split() for m in messages), "the console's lines"
    assert baked.log_lines("error.log") == []
    console = result.stderr.splitlines()
    assert not any(map(DETAILED.fullmatch, console)), "console lines are minimal"
    assert not any(line.startswith("{") for line in console), "no JSON on the console"
    assert not ANSI.search(result.stderr), "piped output is plain text"
    if "INFO" in baked.levels_reaching("console"):
        # At most two short lines (one if it fits), naming the log directory once.
        start = console[: [line[:10] for line in console].index("Generated ")]
        assert 1 <= len(start) <= 2 and max(map(len, start)) <= 100, start
        assert re.fullmatch(r"Run \S+ started(; logs in .*)?", start[0]), start
        assert f"{' '.join(start)} ".count(f" in {shown} ") == 1, start
        assert console[-1] == f"Logs are in {shown}"
    else:
        assert console == []


def test_main_script_logs_a_failed_run_as_an_error(baked: Baked) -> None:
    result = baked.run_demo("--lr", "5")

    assert result.returncode == 1
    for handler in ("info", "error"):
        errors = [
            line["message"]
            for line in baked.log_lines(f"{handler}.log")
            if line["level"] == "ERROR"
        ]
        if "ERROR" in baked.levels_reaching(handler):
            assert len(errors) == 2, handler
            assert errors[0].startswith("Training diverged: validation loss")
            assert re.fullmatch(r"Run \S+ failed after [\d.]+s", errors[1])
        else:
            assert errors == [], handler
    error_levels = {line["level"] for line in baked.log_lines("error.log")}
    assert error_levels <= set(baked.levels_reaching("error"))
    reaches_console = "ERROR" in baked.levels_reaching("console")
    assert ("Training diverged" in result.stderr) == reaches_console


def test_logs_are_ignored_by_git(baked: Baked) -> None:
    baked.run_demo("--epochs", "1")
    run("git", "init", "-q", cwd=baked.path)

    for name in ("info.log", "error.log"):
        run("git", "check-ignore", "-q", baked.run_dir / name, cwd=baked.path)
    status = run(
        "git", "status", "--porcelain", "--untracked-files=all", cwd=baked.path
    )
    assert ".log" not in status.stdout


SECRETS_SCRIPT = """
import json, logging, os, sys
sys.path.insert(0, "scenarios")
from test_redact import CORPUS, ENVIRONMENT
os.environ.update(ENVIRONMENT)
from {package}.config import setup_logging
setup_logging()
log, library = logging.getLogger("demo"), logging.getLogger("urllib3")
for text, _ in CORPUS:
    log.critical(text)
    library.critical("retrying %s", text)
    try:
        raise ConnectionError(text)
    except ConnectionError:
        log.critical("failed", exc_info=True, extra={{"detail": text}})
print(json.dumps([secret for _, secret in CORPUS]))
"""


def test_no_secret_of_the_corpus_reaches_any_sink(baked: Baked) -> None:
    shutil.rmtree(baked.log_dir, ignore_errors=True)
    script = SECRETS_SCRIPT.format(package=baked.answers["package_name"])
    result = run(
        sys.executable, "-c", script, cwd=baked.path, env=project_env(baked.path)
    )

    secrets = json.loads(result.stdout)
    assert len(secrets) >= 20
    sinks = {"console": result.stderr}
    for path in baked.run_dir.rglob("*"):
        if path.is_file() and not path.name.startswith("."):  # not the marker
            sinks[path.name] = path.read_text(encoding="utf-8")
    [record] = set(sinks) - {"console", "info.log", "error.log"}
    assert record.endswith(".json")  # the run record
    for sink, text in sinks.items():
        assert sink == record or text.count("***") >= 3 * len(secrets), sink
        leaked = [secret for secret in secrets if secret in text]
        assert leaked == [], f"{sink} shows {leaked}"


def on_a_terminal(baked: Baked, *args: str, columns: int = 120) -> str:
    """Run the demo with its console on a pseudo-terminal; return what it drew."""
    import fcntl
    import pty
    import struct
    import termios

    shutil.rmtree(baked.log_dir, ignore_errors=True)
    main, terminal = pty.openpty()
    # 40 rows: a new pseudo-terminal has no size, and draws no bar.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", baked.answers["package_name"], *args],
        cwd=baked.path,
        env={**os.environ, **project_env(baked.path), "TERM": "xterm-256color"},
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0, output
    os.close(main)
    return output.decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_console_on_a_terminal(baked: Baked) -> None:
    output = on_a_terminal(baked, "--epochs", "3", columns=80)

    # What each line shows at the end: the text after its last carriage return.
    shown = [ANSI.sub("", line.rsplit("\r", 1)[-1]) for line in output.split("\n")]
    if "INFO" not in baked.levels_reaching("console"):
        assert "valid_loss" not in output
        return
    epochs = [line for line in shown if "valid_loss=" in line]
    assert len(epochs) == 3
    assert ("rich" in baked.options) == bool(ANSI.search(output))
    # The messages as logged, not coloured in pieces: styles are Rich's columns'.
    assert re.search(r"epoch 1/3 valid_loss=\d+\.\d{4}", output)
    assert re.search(r"Run \S+ started(; logs in |\n)", output)
    logs = str(baked.run_dir.relative_to(baked.path))
    assert any(logs in line.split() for line in shown), "the path is cut"
    if "rich" in baked.options:
        assert all(" INFO " in line for line in epochs), epochs
        time = r"\d\d:\d\d:\d\d INFO +"  # HH:MM:SS, no date
    else:
        assert all(line.startswith("epoch ") for line in epochs), epochs
        time = ""
    # Whole, even with a bar that starts as the line is written.
    assert re.match(rf"{time}Run \S+ started", shown[0]), shown[0]
    assert ("tqdm" in baked.options) == ("training" in output)
    assert not any("training" in line for line in epochs), "a bar broke a log line"


# Code as a user writes it first: no annotations, a library without types.
UNANNOTATED_MODULE = """\
import some_untyped_ml_library


def evaluate(model, data):
    scores = []
    for batch in data:
        scores.append(model(batch))
    return some_untyped_ml_library.mean(scores)
"""
UNANNOTATED_TEST = """\
from {package}.evaluate import evaluate


def test_evaluate_scores_every_batch():
    assert evaluate(lambda batch: batch, [1, 2]) is not None
"""
UNTYPED_HELPER = "\n\ndef helper(value):\n    return value\n"


def test_mypy_is_gentle_on_user_code_and_strict_on_the_machinery(
    bake: Bake, mypy_cache: Path
) -> None:
    """The user's unannotated code passes mypy; the same in the machinery does not."""
    project = bake()
    package = project / "src" / "my_ml_project"
    (package / "evaluate.py").write_text(UNANNOTATED_MODULE, encoding="utf-8")
    with (package / "train.py").open("a", encoding="utf-8") as train:
        train.write(UNTYPED_HELPER)
    test = UNANNOTATED_TEST.format(package="my_ml_project")
    (project / "tests" / "test_evaluate.py").write_text(test, encoding="utf-8")
    (project / "examples" / "sweep.py").write_text(UNANNOTATED_MODULE, "utf-8")
    # The same unannotated function in the machinery and config.py is refused.
    rejected = []
    for strict in (package / "config.py", package / "logging_infra" / "extra.py"):
        before = strict.read_text("utf-8") if strict.exists() else ""
        strict.write_text(before + UNTYPED_HELPER, encoding="utf-8")
        line = (before + UNTYPED_HELPER).count("\n") - 1
        where = strict.relative_to(project).as_posix()
        rejected.append(f"{where}:{line}: error: Function is missing a type annotation")

    result = run(tool("mypy"), "--cache-dir", mypy_cache, cwd=project, check=False)
    errors = result.stdout.splitlines()[:-1]  # all but "Found N errors ..."
    assert sorted(error.split("  [")[0] for error in errors) == sorted(rejected), (
        result.stdout
    )
    assert result.returncode == 1


def test_readme_fits_a_first_day(baked: Baked) -> None:
    readme = (baked.path / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines"
    assert (baked.path / "docs" / "logging.md").is_file()
    prose = re.sub(r"```.*?```", "", readme, flags=re.DOTALL)  # links, not code
    links = re.findall(r"\]\(([^)\s]+)\)", prose)
    relative = [link.split("#")[0] for link in links if "://" not in link]
    assert "docs/logging.md" in relative
    missing = [link for link in relative if not (baked.path / link).is_file()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_ci_checks_the_project_on_the_platforms_tested(bake: Bake) -> None:
    """CI runs the user's checks and fast suite; it claims Linux only, where the
    template's tests run (Windows and macOS take paths that are not all tested)."""
    project = bake()
    ci = yaml.safe_load((project / ".github/workflows/ci.yml").read_text("utf-8"))
    (job,) = ci["jobs"].values()
    assert job["strategy"]["matrix"] == {
        "os": ["ubuntu-latest"],
        "python-version": list(PYTHONS),
    }
    steps = [step["run"] for step in job["steps"] if "run" in step]
    assert steps == [
        'python -m pip install -e ".[dev]"',
        "ruff check .",
        "ruff format --check .",
        "mypy",  # with the project's settings: strict for the logging set-up
        "pytest",  # the user's suite: tests/ only
    ]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    assert pyproject["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    classifiers = pyproject["project"]["classifiers"]
    claimed = [c.rsplit(" ", 1)[1] for c in classifiers if c.count(".") == 1]
    assert claimed == list(PYTHONS)

    # pre-commit type-checks as CI does: the whole project with its own settings.
    hooks = yaml.safe_load((project / ".pre-commit-config.yaml").read_text("utf-8"))
    (mypy,) = (h for repo in hooks["repos"] for h in repo["hooks"] if h["id"] == "mypy")
    assert (mypy["entry"], mypy["pass_filenames"], mypy.get("args")) == (
        "mypy",
        False,
        None,
    )
