"""Secrets never reach a log: a filter on every handler masks them.

Masked are the values of environment variables whose names look secret (read
when logging is set up), passwords in URLs, values of ``name=value`` pairs whose
name looks secret, Authorization headers and well-known shapes of keys. This
catches the usual accidents (logging a config, a URL, a request); it cannot tell
a secret that looks like ordinary text, so never log secrets on purpose.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping

MASK = "***"
# Environment variables whose names contain one of these hold secrets; AUTH but
# not AUTHOR (GIT_AUTHOR_NAME), and not the working directories PWD and OLDPWD.
SECRET_VARIABLE = re.compile(
    "KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|PWD|CREDENTIAL|AUTH(?!OR)"
)
NOT_SECRET_VARIABLES = ("PWD", "OLDPWD")
# Shorter values, and numbers (MAX_TOKENS=100000), are too likely to be ordinary
# words or figures to mask wherever they appear, and too short to be real secrets.
MIN_SECRET_LENGTH = 6

# Well-known shapes of keys, as (prefix, body): the prefix stays, so that the log
# still tells which kind of key was there, and the body is masked.
KEY_SHAPES = (
    ("AKIA", "[0-9A-Z]{16}"),  # AWS access key id
    ("ASIA", "[0-9A-Z]{16}"),  # AWS temporary access key id
    ("hf_", "[A-Za-z0-9]{30,}"),  # Hugging Face
    ("sk-", "[A-Za-z0-9_-]{20,}"),  # OpenAI, Anthropic (sk-ant-...)
    *((f"gh{kind}_", "[A-Za-z0-9]{36,}") for kind in "pousr"),  # GitHub
    ("github_pat_", "[A-Za-z0-9_]{22,}"),  # GitHub, fine-grained
    ("glpat-", "[A-Za-z0-9_-]{20,}"),  # GitLab
    *((f"xox{kind}-", "[A-Za-z0-9-]{10,}") for kind in "abposr"),  # Slack
    ("AIza", "[A-Za-z0-9_-]{35}"),  # Google API key
    ("eyJ", r"[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),  # JWT
    ("PRIVATE KEY-----", "[^-]+"),  # the body of a PEM private key
)
# The value after one of these names is masked: "name=value", "name: value",
# '"name": "value"', URL queries ("?token=...") and longer names that end with
# one of them ("HF_TOKEN=..."). Lower, upper and title case are recognised.
SECRET_NAMES = (
    "token",
    "secret",
    "secret_key",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "private_key",
    "credential",
    "credentials",
    "signature",
    "sig",
    "passphrase",
    "auth",  # "author=" and "authority:" are not "auth" and a separator
)
_VALUE = r"""['"]?\s*[:=]\s*['"]?([^\s'",;&}]+)"""
# An Authorization header's value may start with its scheme.
_AUTHORIZATION = (
    r"""['"]?\s*[:=]\s*['"]?(?:(?i:bearer|basic|token|digest)\s+)?([^\s'",;&}]+)"""
)
_BEARER = r"\s+([A-Za-z0-9._~+/=-]{8,})"
# "pwd=..." is a password unless it is a path: the working directory.
_NOT_A_PATH = r"""['"]?\s*[:=]\s*['"]?(?![/~.]|[A-Za-z]:\\)([^\s'",;&}]+)"""
# A command line's "--password VALUE", "--hf-token VALUE" ("--name=VALUE" is
# covered above); "--max-tokens 512" is not one.
_OPTION = (
    r"(?:[\w-]*[_-])?(?i:token|secret|password|passwd|passphrase|auth"
    r"|api[_-]?key|secret[_-]key|access[_-]key|private[_-]key|credentials?)"
    r"""\s+['"]?([^\s'"]+)"""
)


def _cases(word: str) -> list[str]:
    """The word in lower, upper, title and camel case: api_key, API_KEY, apiKey..."""
    head, *rest = word.split("_")
    camel = head + "".join(part.capitalize() for part in rest)
    cases = (word, word.upper(), word.title(), word.capitalize(), camel)
    return list(dict.fromkeys(cases))


# (literal, rest, whole word): what follows the literal holds one group, the
# part masked. "Whole word" keeps key shapes from matching inside longer words.
PATTERNS = (
    *((prefix, f"({body})", True) for prefix, body in KEY_SHAPES),
    *((name, _VALUE, False) for word in SECRET_NAMES for name in _cases(word)),
    *((name, _AUTHORIZATION, False) for name in _cases("authorization")),
    *((name, _BEARER, False) for name in _cases("bearer")),
    *((name, _NOT_A_PATH, False) for name in _cases("pwd")),
    ("://", r"[^\s/?#@:]*:([^\s/?#@]+)@", False),  # scheme://user:password@host
    ("--", _OPTION, False),
)
# Characters from the rarest in log messages to the most common (roughly).
_BY_RARITY = "zqxjkJKQXZwWvVyYfFbBgGpPmMuUcCdDhHlLrRsSnNiIoOaAtTeE-_:/. "
# Every match holds one of these: a text without them needs no pattern.
LITERALS = tuple(dict.fromkeys(literal for literal, _, _ in PATTERNS))


def _compile() -> re.Pattern[str]:
    """One regular expression for all PATTERNS, quick to search and to compile.

    Python's regex engine skips at C speed over characters that cannot start a
    match when every alternative starts with a literal character, and tries an
    alternative only if its first character is there. So each literal is matched
    from its rarest character on, then a look-behind checks the whole literal;
    the alternatives that start with one character share a branch, and those
    followed by the same pattern share it. Measured on the messages of
    tests/ordinary_log_lines.txt: a search takes 1/30 of the time these patterns
    take written plainly one after the other; compiling takes a few ms.
    """
    branches: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for literal, rest, whole_word in PATTERNS:
        at = min(range(len(literal)), key=lambda i: _BY_RARITY.find(literal[i]))
        whole = re.escape(literal)
        check = f"(?<={whole})" if at else ""
        if whole_word:
            check += rf"(?<![\w-]{whole})"
        branches[literal[at]][rest].append(re.escape(literal[at + 1 :]) + check)
    alternatives = []
    for first, by_rest in branches.items():
        shared = [f"(?:{'|'.join(heads)}){rest}" for rest, heads in by_rest.items()]
        alternatives.append(f"{re.escape(first)}(?:{'|'.join(shared)})")
    return re.compile("|".join(alternatives))


# Compiled on first use (a few ms, which start-up is spared), by the first record.
_compiled: re.Pattern[str] | None = None
_compiling = threading.local()


def _pattern() -> re.Pattern[str] | None:
    """The pattern, compiled on first use; None in a signal handler that logs
    while its thread compiles it: compiling there too would let the next signal
    nest another handler, and so on until the stack overflows."""
    global _compiled
    if _compiled is None:
        if getattr(_compiling, "now", False):
            return None
        _compiling.now = True
        try:
            _compiled = _compile()
        finally:
            _compiling.now = False
    return _compiled


def _has_literal(text: str) -> bool:
    return any(literal in text for literal in LITERALS)


def _mask_from_a_literal(text: str) -> str:
    """Without the pattern: the text is masked from its first literal on."""
    found = [at for at in map(text.find, LITERALS) if at >= 0]
    return text[: min(found)] + MASK if found else text


def _mask(match: re.Match[str]) -> str:
    start, end = match.span(match.lastindex or 0)
    return match.string[match.start() : start] + MASK + match.string[end : match.end()]


def secrets_in(environ: Mapping[str, str]) -> list[str]:
    """Values of the variables whose names look secret (HF_TOKEN, DB_PASSWORD, ...),
    also as they are written in URLs (percent-encoded)."""
    values = {
        value.strip()
        for name, value in environ.items()
        if SECRET_VARIABLE.search(name.upper())
        and name.upper() not in NOT_SECRET_VARIABLES
    }
    values = {v for v in values if len(v) >= MIN_SECRET_LENGTH and not v.isdigit()}
    if values:  # urllib.parse is slow to import (pathlib imports it up to 3.12)
        from urllib.parse import quote, quote_plus

        values |= {encode(v, safe="") for v in values for encode in (quote, quote_plus)}
    # The longest first, in case one contains another.
    return sorted(values, key=len, reverse=True)


class Redactor:
    """Masks the given secret values, then every pattern above, in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(secrets)

    def __call__(self, text: str, *, spare_compiling: bool = False) -> str:
        """The text masked. ``spare_compiling``: leave the pattern uncompiled if
        the text holds none of its literals (then it cannot match), so that the
        run record written at set-up does not slow start-up down."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if spare_compiling and _compiled is None and not _has_literal(text):
            return text
        pattern = _compiled or _pattern()
        if pattern is None:
            return _mask_from_a_literal(text)
        if pattern.search(text) is None:  # most text: one quick scan
            return text
        return pattern.sub(_mask, text)


# Used by RedactFilter and the JSON formatter; setup_logging() gives it the values
# of secret-looking environment variables.
redact = Redactor()


def use_secrets(secrets: Iterable[str]) -> None:
    """Mask these values too, from now on, wherever they appear."""
    redact.secrets = tuple(secrets)


class RedactFilter(logging.Filter):
    """Masks secrets in a record's message (its arguments merged in), exception
    and stack; changes the record in place and lets it through."""

    def __init__(self) -> None:
        super().__init__()
        self.last: logging.LogRecord | None = None  # the last record masked

    def filter(self, record: logging.LogRecord) -> bool:
        # One filter serves every handler: a record is masked once, by the first.
        if record is self.last:
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit: the handler reports it,
            mask_arguments(record)  # and prints them
            return True
        # Merged, so that no handler formats the arguments again, and so that
        # self.last holds text rather than the objects the arguments were.
        record.msg, record.args = redact(message), None
        if record.exc_info:
            # As text, so that it can be masked: no handler may render the
            # exception object itself after this (Rich's tracebacks would).
            text = record.exc_text or _FORMATTER.formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        self.last = record
        return True


_FORMATTER = logging.Formatter()


def mask_arguments(record: logging.LogRecord) -> None:
    """Mask a record's message and arguments, which do not fit together, for
    ``Handler.handleError()``, which prints both to stderr: strings masked, other
    values replaced by their masked repr()."""
    record.msg = _masked(record.msg)
    if isinstance(record.args, Mapping):
        record.args = {key: _masked(value) for key, value in record.args.items()}
    elif record.args:
        record.args = tuple(_masked(value) for value in record.args)


def _masked(value: object) -> str:
    if isinstance(value, str):
        return redact(value)
    try:
        return redact(repr(value))
    except Exception:  # a broken __repr__
        return f"<{type(value).__name__} object>"
