"""AGI command lines, with every argument quoted so no value can inject anything.

res_agi splits a command line with ``parse_args()``: blanks separate arguments, a
double quote toggles quoting, and a backslash takes the next character literally. A
line ends at the first newline whatever precedes it, so a newline can never be
escaped: :func:`quote` turns CR, LF and NUL into spaces and escapes backslash and
double quote. Every string argument is quoted, numbers are formatted by us.

``EXEC`` hands its one argument to the application, which splits it again with
``ast_app_separate_args()``: commas separate arguments, ``(``/``)`` and ``[``/``]``
nest, ``"`` quotes and ``\\`` escapes. :func:`exec_app` escapes each application
argument for that level before quoting the whole for the AGI level, so a value such
as ``a,b`` stays one application argument. Application names and variable names are
checked against a strict pattern instead, as they are never caller data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "ALL_KEYS",
    "MAX_COMMAND",
    "answer",
    "app_arg",
    "exec_app",
    "get_full_variable",
    "get_variable",
    "hangup",
    "quote",
    "say_datetime",
    "set_variable",
    "sound_file",
    "stream_file",
    "verbose",
    "wait_for_digit",
]

ALL_KEYS: Final = "0123456789*#"
MAX_COMMAND: Final = 2047  # bytes, newline included
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\([A-Za-z0-9_]*\))?")
_APP: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_FILE: Final = re.compile(r"[A-Za-z0-9_./-]+")
_CONTROL: Final = str.maketrans({"\r": " ", "\n": " ", "\x00": " "})
_NOT_SEPARATORS: Final = frozenset('${}\\"\r\n\x00 ')  # evaluated, quoted or splitting
_APP_SPECIAL: Final = re.compile(r'([\\,"()\[\]])')


def quote(value: str) -> str:
    """One AGI argument: ``"..."`` with backslash and double quote escaped."""
    # A printable string holds no CR, LF or NUL: the common case skips the translation.
    cleaned = value if value.isprintable() else value.translate(_CONTROL)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def app_arg(value: str) -> str:
    """One application argument inside ``EXEC``'s data, escaped for the application."""
    cleaned = value if value.isprintable() else value.translate(_CONTROL)
    return _APP_SPECIAL.sub(r"\\\1", cleaned)


def _line(*parts: str) -> bytes:
    line = (" ".join(parts) + "\n").encode("utf-8")
    if len(line) > MAX_COMMAND:
        # run_agi() reads a command with fgets() into 2048 bytes: the rest of a longer
        # line would run as a second command, outside our quotes.
        raise ValueError(f"AGI command of {len(line)} bytes; Asterisk reads {MAX_COMMAND}")
    return line


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def _keys(keys: str) -> str:
    if any(key not in ALL_KEYS for key in keys):
        raise ValueError(f"escape digits must be among {ALL_KEYS!r}: {keys!r}")
    return quote(keys)


def _millis(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a timeout cannot be negative or infinite: {seconds}")
    return str(round(seconds * 1000))


def sound_file(name: str) -> str:
    """A sound file name as played by Asterisk (no extension, no ``&``, no blanks)."""
    return _check(_FILE, name, "sound file name")


def answer() -> bytes:
    return b"ANSWER\n"


def hangup() -> bytes:
    return b"HANGUP\n"


def stream_file(name: str, escape: str = "") -> bytes:
    """Play ``name``; a key among ``escape`` stops it (result: the key's ASCII code)."""
    return _line("STREAM FILE", quote(sound_file(name)), _keys(escape))


def wait_for_digit(timeout: float) -> bytes:
    return _line("WAIT FOR DIGIT", _millis(timeout))


def say_datetime(
    epoch: int, escape: str = "", fmt: str | None = None, tz: str | None = None
) -> bytes:
    """Speak an instant in the channel's language (``fmt`` as in ``say.conf``)."""
    parts = ["SAY DATETIME", str(int(epoch)), _keys(escape)]
    if fmt is not None or tz is not None:
        parts.append(quote(fmt or ""))
    if tz is not None:
        parts.append(quote(tz))
    return _line(*parts)


def set_variable(name: str, value: str) -> bytes:
    return _line("SET VARIABLE", quote(_check(_NAME, name, "variable name")), quote(value))


def get_variable(name: str) -> bytes:
    return _line("GET VARIABLE", quote(_check(_NAME, name, "variable name")))


def get_full_variable(names: Iterable[str], separator: str = "|") -> bytes:
    """``${A}|${B}``: several variables in one round trip, split on ``separator``."""
    if len(separator) != 1 or separator in _NOT_SEPARATORS:
        raise ValueError(f"invalid separator: {separator!r}")
    expression = separator.join("${" + _check(_NAME, name, "variable name") + "}" for name in names)
    return _line("GET FULL VARIABLE", quote(expression))


def exec_app(app: str, *args: str) -> bytes:
    """``EXEC App arg1,arg2``: each argument stays one argument of the application."""
    data = ",".join(app_arg(arg) for arg in args)
    return _line("EXEC", _check(_APP, app, "application name"), quote(data))


def verbose(message: str, level: int = 1) -> bytes:
    return _line("VERBOSE", quote(message), str(int(level)))
