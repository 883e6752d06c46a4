"""Secrets never reach a log: a filter on every handler masks them.

Masked are the values of environment variables whose names look secret (read
when logging is set up), passwords in URLs, values of ``name=value`` pairs whose
name looks secret, Authorization headers and well-known shapes of keys. This
catches the usual accidents (logging a config, a URL, a request); it cannot tell
a secret that looks like ordinary text, so never log secrets on purpose.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import re
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

MASK = "***"
# Environment variables whose names end with one of these words (after the last
# "_") hold secrets: WANDB_API_KEY, HF_TOKEN, MYSQL_PWD, PROXY_AUTH; not
# GIT_AUTHOR_NAME, XAUTHORITY, TOKENIZERS_PARALLELISM nor KEY_FILE.
SECRET_VARIABLE = re.compile(
    r"(?:.*_)?[A-Z0-9]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|PWD"
    r"|CREDENTIALS?|AUTH)(?:_?[0-9]+)?"
)
NOT_SECRET_VARIABLES = ("PWD", "OLDPWD")  # the working directories
# Shorter values are too likely to be ordinary words to mask wherever they appear.
MIN_SECRET_LENGTH = 6
# Values that are no secret whatever their variable's name: numbers, booleans,
# paths and URLs without a password (a password in a URL is masked anyway).
_ORDINARY_VALUE = re.compile(
    r"[-+]?[0-9][0-9_.,]*(?:[eE][-+]?[0-9]+)?"
    r"|(?i:true|false|none|null|yes|no|on|off)"
    r"|(?:[/~.]|[A-Za-z]:[\\/]).*"
    r"|[A-Za-z][A-Za-z0-9+.-]*://[^@\s]*",
    re.DOTALL,
)
# What a password or key has and a word, a name, a model id or a metric seldom
# has: a character other than letters, digits, spaces and "_-.:/" (tok!en,
# p@ss, base64's "+" and "="), digits and letters alternating (9f8e, pr0xy: hex
# and random strings), or three words or more (a passphrase).
_SECRET_LOOKING = re.compile(
    r"[^\w .:/-]|[0-9][^\W0-9_]+[0-9]|[^\W0-9_][0-9]+[^\W0-9_]|\S \S+ \S"
)

# Well-known shapes of keys, as (prefix, body): the prefix stays, so that the log
# still tells which kind of key was there, and the body is masked.
KEY_SHAPES = (
    # AWS access key id, and the secret key when it follows ("AKIA...:secret")
    ("AKIA", "[0-9A-Z]{16}(?::[A-Za-z0-9/+=]{20,})?"),
    ("ASIA", "[0-9A-Z]{16}(?::[A-Za-z0-9/+=]{20,})?"),  # AWS, temporary
    ("hf_", "[A-Za-z0-9]{30,}"),  # Hugging Face
    ("sk-", "[A-Za-z0-9_-]{20,}"),  # OpenAI, Anthropic (sk-ant-...)
    *((f"gh{kind}_", "[A-Za-z0-9]{36,}") for kind in "pousr"),  # GitHub
    ("github_pat_", "[A-Za-z0-9_]{22,}"),  # GitHub, fine-grained
    ("glpat-", "[A-Za-z0-9_-]{20,}"),  # GitLab
    *((f"xox{kind}-", "[A-Za-z0-9-]{10,}") for kind in "abposr"),  # Slack
    ("AIza", "[A-Za-z0-9_-]{35}"),  # Google API key
    ("eyJ", r"[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),  # JWT
    # The body of a PEM private key, encrypted ones' headers (Proc-Type:,
    # DEK-Info:) included, up to its "-----END" line: at most 2,000 pieces, a
    # run without a dash or a dash each (a key's body has a few).
    ("PRIVATE KEY-----", "(?:[^-]+|-(?!----)){1,2000}"),
)
# Webhook URLs: the path is the secret, the host stays.
WEBHOOKS = (
    ("hooks.slack.com/", "(?:services|workflows|triggers)/([A-Za-z0-9_/-]+)"),
    ("discord.com/api/webhooks/", "([A-Za-z0-9_/-]+)"),
    ("discordapp.com/api/webhooks/", "([A-Za-z0-9_/-]+)"),
)
# The value after one of these names is masked: "name=value", "name: value",
# '"name": "value"', URL queries ("?token=...") and longer names that end with
# one of them ("HF_TOKEN=...", "wandb_key: ..."), in lower, upper and title case
# (apikey, APIKEY, Apikey). Names that end with "_key" or "Key" (api_key,
# API_KEY, Api_Key, apiKey) are in PATTERNS below.
SECRET_NAMES = (
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "api-key",
    "credential",
    "credentials",
    "passphrase",
    "auth",  # "author=" and "authority:" are not "auth" and a separator
)
# A value in quotes is masked whole, spaces and all ('correct horse battery
# staple'), up to a bound that keeps the cost of a missing quote linear;
# a value without quotes up to a space or a delimiter.
_VALUE_ITSELF = (
    r"""(?:'((?:[^'\\\n]|\\.){1,256})'|"((?:[^"\\\n]|\\.){1,256})"|"""
    r"""['"]?([^\s'",;&}]+))"""
)
_VALUE = rf"""['"]?\s*[:=]\s*{_VALUE_ITSELF}"""
# A signature's value is assigned (a URL's "Signature=...", a SAS "sig=...") or a
# quoted key's ('"signature": "..."'), not prose's ("forward signature: ...").
_ASSIGNED = rf"""(?:['"]\s*:|\s*=)\s*{_VALUE_ITSELF}"""
# An Authorization header's value may start with its scheme.
_AUTHORIZATION = (
    r"""['"]?\s*[:=]\s*['"]?(?:(?i:bearer|basic|token|digest)\s+)?([^\s'",;&}]+)"""
)
_BEARER = r"\s+([A-Za-z0-9._~+/=-]{8,})"
# "pwd=..." is a password unless it is a path: the working directory.
_NOT_A_PATH = r"""['"]?\s*[:=]\s*['"]?(?![/~.]|[A-Za-z]:\\)([^\s'",;&}]+)"""
# A command line's "--password VALUE", "--hf-token=VALUE", "--wandb-key VALUE",
# also as a list ('--api-key', 'VALUE'); "--max-tokens 512", "--key-column text"
# and "--key VALUE" are not one: the name's last word tells. The name is taken
# whole (a look-ahead, then the group it caught: Python 3.10 has no possessive
# quantifier) and its last word checked by look-behinds, one for each width, so
# that a "--" costs a few steps, never a retry at each letter of the name. An
# option starts the text or follows a space, a quote, a bracket, "," or "=":
# "a--b" and "-----" take one step at each "--".
_OPTION_ENDS = (
    "[_-](?i:auth)|[A-Za-z0-9][_-](?i:key)",
    "[_-](?i:token)",
    "[_-](?i:secret|passwd|apikey)",
    "[_-](?i:password)",
    "[_-](?i:passphrase|credential)",
    "[_-](?i:credentials)",
)
_OPTION = (
    r"""(?<![^\s'"\[(,=]--)(?=(?P<option>[A-Za-z0-9][A-Za-z0-9_-]{0,63}))(?P=option)"""
    f"(?:{'|'.join(f'(?<={end})' for end in _OPTION_ENDS)})"
    rf"""(?:=|[ ](?!-)|['"],[ ]?){_VALUE_ITSELF}"""
)
# Values of a secret name that hold no secret, left as they are: placeholders
# ("<HUB_TOKEN>", "$HF_TOKEN"), special tokens ("<s>", "[MASK]"), None and
# booleans, a lone punctuation mark ("--flag / --no-flag"), code that reads a
# secret ("AddedToken(", "os.environ[").
_NOT_SECRET = re.compile(
    r"<[^<>]*>|\[[^\[\]]*\]|\$\{?\w+\}?|\W"
    r"|None|null|nil|True|False|true|false|\*+"
    r"|[A-Za-z_][\w.]*[(\[][^()\[\]]*[)\]]?"
)
# A help text's placeholder for an option's value: "--hub_token HUB_TOKEN",
# "[--api-key API_KEY]", "--token TEXT    Help...".
_METAVAR = re.compile("[A-Z][A-Z0-9_]*")


def _cases(word: str) -> list[str]:
    """The word in lower, upper, title and camel case: api_key, API_KEY, apiKey..."""
    head, *rest = word.split("_")
    camel = head + "".join(part.capitalize() for part in rest)
    cases = (word, word.upper(), word.title(), word.capitalize(), camel)
    return list(dict.fromkeys(cases))


OPTION = "--"  # a command line's option, searched for apart (_compile())
# (literal, rest, whole word): what follows the literal holds one group, the
# part masked. "Whole word" keeps key shapes from matching inside longer words.
PATTERNS = (
    *((prefix, f"({body})", True) for prefix, body in KEY_SHAPES),
    *((host, path, False) for host, path in WEBHOOKS),
    *((name, _VALUE, False) for word in SECRET_NAMES for name in _cases(word)),
    *((name, _ASSIGNED, False) for name in [*_cases("signature"), *_cases("sig")]),
    # Names that end with "key": api_key, SECRET_KEY, Access_Key, wandbKey, and
    # Azure's AccountKey=, SharedAccessKey= (in connection strings).
    ("_key", _VALUE, False),
    ("_KEY", _VALUE, False),
    ("_Key", _VALUE, False),
    ("Key", f"(?<=[a-z]Key){_VALUE}", False),
    *((name, _AUTHORIZATION, False) for name in _cases("authorization")),
    *((name, _BEARER, False) for name in _cases("bearer")),
    *((name, _NOT_A_PATH, False) for name in _cases("pwd")),
    # scheme://user:password@host, and scheme://token@host when the user name
    # looks like a key ("bare"): git@, alice@ stay. The look-ahead first makes
    # sure of the "@": most "://" have none, and are left after one step.
    ("://", r"(?=[^\s/?#@]*@)(?:[^\s/?#@:]*:|(?P<bare>))([^\s/?#@]+)@", False),
    (OPTION, _OPTION, False),
)
# Masking a match costs a few us: in a text that holds more than this many (no
# log message does), the rest is masked whole, in bounded time.
MATCHES_READ = 1000
# Characters from the rarest in log messages to the most common (roughly).
_BY_RARITY = "zqxjkJKQXZwWvVyYfFbBgGpPmMuUcCdDhHlLrRsSnNiIoOaAtTeE-_:/. "
# Every match holds one of these: a text without them needs no pattern.
LITERALS = tuple(dict.fromkeys(literal for literal, _, _ in PATTERNS))


def _compile() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """One regular expression for all PATTERNS but options, quick to search and
    to compile, and one for options.

    Python's regex engine skips at C speed over characters that cannot start a
    match when every alternative starts with a literal character, and tries an
    alternative only if its first character is there. So each literal is matched
    from its rarest character on, then a look-behind checks the whole literal;
    the alternatives that start with one character share a branch, and those
    followed by the same pattern share it. Measured on the messages of
    tests/ordinary_log_lines.txt: a search takes 1/30 of the time these patterns
    take written plainly one after the other; compiling takes a few ms. Options
    are searched for apart, in texts that hold "--": with them, each dash of a
    "-----" line would be a place to try every branch at (8 ms for 100 KB).
    """
    branches: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for literal, rest, whole_word in PATTERNS:
        if literal == OPTION:
            continue
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
    return re.compile("|".join(alternatives)), re.compile(OPTION + _OPTION)


# Compiled on first use (about 10 ms), by the first text that holds one of its
# literals, or else by the SPARED_TEXTS-th: a process that logs a few plain
# records (a pool's short-lived spawned worker; set-up's run record) never pays
# it, and one that logs many stops looking for literals (a few us a text).
SPARED_TEXTS = 32
_compiled: tuple[re.Pattern[str], re.Pattern[str]] | None = None
_compiling = threading.local()
_spared = 0


def _pattern() -> tuple[re.Pattern[str], re.Pattern[str]] | None:
    """The patterns, compiled on first use; None in a signal handler that logs
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


def _compile_before_fork() -> None:
    """Compile the pattern in a process about to fork, once: each forked
    process (a pool's worker, a DataLoader's) inherits it instead of compiling
    it again for its first record."""
    if _compiled is None:
        _pattern()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(before=_compile_before_fork)


def _has_literal(text: str) -> bool:
    return any(literal in text for literal in LITERALS)


def _mask_from_a_literal(text: str) -> str:
    """Without the pattern: the text is masked from its first literal on."""
    found = [at for at in map(text.find, LITERALS) if at >= 0]
    return text[: min(found)] + MASK if found else text


def _mask(match: re.Match[str]) -> str:
    """The match with its value masked, unless the value holds no secret (a
    URL's user name that does not look like a key included)."""
    start, end = match.span(match.lastindex or 0)
    text = match.string
    stays = match["bare"] is not None and not looks_secret(text[start:end])
    return _replaced(match, start, end, stays)


def _mask_option(match: re.Match[str]) -> str:
    """An option and its value masked, unless the value holds no secret or is
    a help text's placeholder."""
    start, end = match.span(match.lastindex or 0)
    text = match.string
    metavar = _is_metavar(text[start:end], match["option"], text[end : end + 2])
    return _replaced(match, start, end, metavar)


def _replaced(match: re.Match[str], start: int, end: int, stays: bool) -> str:
    """The match with its part from ``start`` to ``end`` masked, unless that
    stays or holds no secret."""
    text = match.string
    if stays or _NOT_SECRET.fullmatch(text, start, end):
        return match[0]
    return text[match.start() : start] + MASK + text[end : match.end()]


def _is_metavar(value: str, option: str, after: str) -> bool:
    """Whether an option's value is a help text's placeholder: the option's name
    in capitals (HUB_TOKEN), or capitals before a bracket, a comma or the help
    column's spaces (TEXT)."""
    name = value.rstrip("]")
    return _METAVAR.fullmatch(name) is not None and (
        name == option.upper().replace("-", "_")
        or name != value
        or after[:1] == ","
        or after == "  "
    )


def looks_secret(value: str) -> bool:
    """Whether a value could be a password or a key, not a word, a name, a
    figure or a path: "val_loss" and "bert-base-uncased" are no secret,
    "p@ss/w0rd", "9f8e1c2d", "correct horse battery staple" may be."""
    if len(value) < MIN_SECRET_LENGTH or _ORDINARY_VALUE.fullmatch(value):
        return False
    return _SECRET_LOOKING.search(value) is not None or _case_changes(value) >= 4


def _case_changes(value: str) -> int:
    # A random string of letters (base64 without digits) changes case often.
    return sum(a.islower() and b.isupper() for a, b in itertools.pairwise(value))


def secrets_in(environ: Mapping[str, str]) -> list[str]:
    """Values of the variables whose names look secret (HF_TOKEN, DB_PASSWORD, ...)
    and whose values look secret too (not MONITOR_KEY=val_loss), also as they are
    written in URLs (percent-encoded)."""
    values = {
        value.strip()
        for name, value in environ.items()
        if SECRET_VARIABLE.fullmatch(name.upper())
        and name.upper() not in NOT_SECRET_VARIABLES
    }
    values = {value for value in values if looks_secret(value)}
    if values:  # urllib.parse is slow to import (pathlib imports it up to 3.12)
        from urllib.parse import quote, quote_plus

        values |= {encode(v, safe="") for v in values for encode in (quote, quote_plus)}
    # The longest first, in case one contains another.
    return sorted(values, key=len, reverse=True)


# A field whose name ends with a secret word: api_key, apiKey, HF_TOKEN, password.
_SECRET_FIELD = re.compile(
    r"(?:.*[^A-Za-z]|.*[a-z](?=[A-Z]))?(?i:token|secret|password|passwd|passphrase"
    r"|pwd|auth|authorization|credentials?|signature|sig|apikey)"
    r"|.*(?:[^A-Za-z](?i:key)|[a-z]Key)",
    re.DOTALL,
)


def secret_field(name: str, value: object) -> object:
    """A named value, as in a mapping ({"cfg": {"api_key": ...}}), once masked
    as text: the whole of it if it is a string under a secret-looking name
    (unless it holds no secret, as a placeholder or a special token such as
    "<s>" does), else the value as it was."""
    if isinstance(value, str) and _is_secret_field(name):
        return value if _NOT_SECRET.fullmatch(value) else MASK
    return value


@functools.lru_cache(maxsize=1024)
def _is_secret_field(name: str) -> bool:
    return _SECRET_FIELD.fullmatch(name) is not None


class Redactor:
    """Masks the given secret values, then every pattern above, in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(secrets)

    def __call__(self, text: str) -> str:
        """The text masked."""
        global _spared
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        patterns = _compiled
        if patterns is None:
            if _spared < SPARED_TEXTS and not _has_literal(text):
                _spared += 1  # not compiled yet, and it cannot match
                return text
            patterns = _pattern()
            if patterns is None:
                return _mask_from_a_literal(text)
        others, options = patterns
        found = others.search(text)  # most text: one quick scan, and done
        if found is not None:
            text = _mask_all(others, text, found, _mask)
        if OPTION in text:
            found = options.search(text)
            if found is not None:
                text = _mask_all(options, text, found, _mask_option)
        return text


def _mask_all(
    pattern: re.Pattern[str],
    text: str,
    found: re.Match[str],
    mask: Callable[[re.Match[str]], str],
) -> str:
    """The text with each match masked, from the first, ``found``. From the
    match after MATCHES_READ on (a few ms of work), the rest is masked unread,
    and the text says how much."""
    pieces = [text[: found.start()], mask(found)]
    end = found.end()
    for count, match in enumerate(pattern.finditer(text, end), 2):
        if count > MATCHES_READ:
            unread = len(text) - end
            pieces.append(f"{MASK} (the last {unread} characters, masked unread: ")
            pieces.append(f"more than {MATCHES_READ} places to mask in one text)")
            return "".join(pieces)
        pieces += (text[end : match.start()], mask(match))
        end = match.end()
    pieces.append(text[end:])
    return "".join(pieces)


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


def report_error(record: logging.LogRecord) -> None:
    """What ``Handler.handleError()`` prints to stderr, masked: the error's
    traceback (whose text may quote an argument, as a failing ``__str__`` does),
    the calling lines, the message and its arguments. Call it in an ``except``
    block, after ``mask_arguments()``."""
    if not (logging.raiseExceptions and sys.stderr):
        return
    import traceback

    error = sys.exc_info()[1]
    if error is None:
        return
    lines = ["--- Logging error ---\n", *traceback.format_exception(error)]
    frame = error.__traceback__.tb_frame if error.__traceback__ else None
    logging_dir = os.path.dirname(logging.__file__)
    while frame and os.path.dirname(frame.f_code.co_filename) == logging_dir:
        frame = frame.f_back
    lines.append("Call stack:\n")
    lines.extend(traceback.format_stack(frame) if frame else ["(unknown)\n"])
    try:
        lines.append(f"Message: {record.msg!r}\nArguments: {record.args}\n")
    except Exception:  # a broken __repr__: the stdlib says the same
        lines.append("Unable to print the message and arguments\n")
    with contextlib.suppress(OSError):  # stderr closed: as the stdlib, say nothing
        sys.stderr.write(redact("".join(lines)))
