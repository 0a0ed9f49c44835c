"""Structured logging with caller numbers masked before anything is written.

:func:`configure_logging` sets up structlog (JSON lines for production, a readable console
format for development). Every event passes through :func:`mask_personal_data`, which
keeps at most the last 4 digits of caller numbers and redacts caller-ID names. Records
from the standard library's :mod:`logging` (asyncpg, panoramisk, ...) are forwarded into
the same pipeline, so they are masked and formatted the same way.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Final, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from ivr.privacy import mask_digit_runs, mask_number

__all__ = [
    "CALLER_NAME_KEYS",
    "CALLER_NUMBER_KEYS",
    "REDACTED",
    "VERBATIM_KEYS",
    "StdlibForwardingHandler",
    "configure_logging",
    "get_logger",
    "mask_personal_data",
]

REDACTED: Final = "<redacted>"

CALLER_NUMBER_KEYS: Final = frozenset(
    {
        "caller",
        "caller_number",
        "callerid",
        "caller_id",
        "agi_callerid",
        "ani",
        "number",
        "from_number",
        "calleridnum",
        "connectedlinenum",
    }
)
"""Keys whose values are caller numbers: masked to their last 4 digits."""

CALLER_NAME_KEYS: Final = frozenset(
    {"callerid_name", "calleridname", "agi_calleridname", "caller_name"}
)
"""Keys whose values are caller-ID names: replaced by :data:`REDACTED`."""

VERBATIM_KEYS: Final = frozenset(
    {
        "uniqueid",
        "linkedid",
        "call_id",
        "timestamp",
        "threadid",
        "agi_uniqueid",
        "agi_threadid",
    }
)
"""Keys holding non-personal identifiers that must stay searchable: never masked."""

# What Asterisk puts in a caller-ID name when there is none; nothing to hide there.
_NON_NAMES: Final = frozenset({"", "unknown", "<unknown>", "anonymous"})

# A full caller ID as Asterisk prints it: "Name" <number>.
_FULL_CALLER_ID: Final = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<number>[^>]*)>\s*$')

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def _mask_name(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() in _NON_NAMES:
        return value
    if value is None:
        return None
    return REDACTED


def _mask_caller_number(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return mask_number(str(value))
    if not isinstance(value, str):
        return _mask_value(value)
    full = _FULL_CALLER_ID.match(value)
    if full is not None:
        name = _mask_name(full["name"])
        return f'"{name}" <{mask_number(full["number"])}>'
    return mask_number(value)


def _mask_value(value: object) -> object:
    """Mask digit runs in strings, recursing into mappings and sequences."""
    if isinstance(value, str):
        return mask_digit_runs(value)
    if isinstance(value, Mapping):
        return {key: _mask_item(key, item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        masked = [_mask_value(item) for item in value]
        return masked if isinstance(value, list) else type(value)(masked)
    return value


def _mask_item(key: object, value: object) -> object:
    name = key.lower() if isinstance(key, str) else ""
    if name in VERBATIM_KEYS:
        return value
    if name in CALLER_NUMBER_KEYS:
        return _mask_caller_number(value)
    if name in CALLER_NAME_KEYS:
        return _mask_name(value)
    return _mask_value(value)


def mask_personal_data(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask caller numbers and names anywhere in the event.

    - values under :data:`CALLER_NUMBER_KEYS` keep only their last 4 digits;
    - values under :data:`CALLER_NAME_KEYS` become :data:`REDACTED` unless empty/unknown;
    - values under :data:`VERBATIM_KEYS` (Asterisk unique IDs, timestamps) are kept;
    - every other string, including the event message, a rendered exception and strings
      nested in dicts and lists, has its runs of 7+ digits masked.

    Keys are compared case-insensitively, at any nesting depth.
    """
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask_item(key, value)
    return event_dict


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


class StdlibForwardingHandler(logging.Handler):
    """Send standard-library log records through the structlog pipeline (and its masking)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger = cast("FilteringBoundLogger", structlog.get_logger(logger_name=record.name))
            extra: dict[str, Any] = {}
            if record.exc_info:
                extra["exc_info"] = record.exc_info
            logger.log(record.levelno, record.getMessage(), **extra)
        except Exception:  # a logging failure must not break the call flow
            self.handleError(record)


def _install_stdlib_forwarding(level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, StdlibForwardingHandler):
            root.removeHandler(handler)
    root.addHandler(StdlibForwardingHandler())
    root.setLevel(level)


def configure_logging(
    fmt: Literal["json", "console"], level: str, stream: TextIO | None = None
) -> None:
    """Configure structlog to write ``fmt`` lines at ``level`` or above to ``stream``.

    ``level`` is one of debug, info, warning (or warn), error, in any case. ``stream``
    defaults to ``sys.stderr``. Calling this again replaces the previous configuration.
    """
    level_name = level.strip().lower()
    if level_name not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; use debug, info, warning or error")
    if fmt not in ("json", "console"):
        raise ValueError(f"unknown log format {fmt!r}; use json or console")
    numeric_level = _LEVELS[level_name]
    output = stream if stream is not None else sys.stderr

    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=_is_tty(output), exception_formatter=structlog.dev.plain_traceback
        )

    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
        # Render exceptions to text first so the masking below sees the traceback too.
        structlog.processors.format_exc_info,
        mask_personal_data,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=output),
        context_class=dict,
        # Loggers created before a reconfiguration must follow the new configuration.
        cache_logger_on_first_use=False,
    )
    _install_stdlib_forwarding(numeric_level)


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """A structlog logger; ``name`` (usually ``__name__``) is added as the ``logger_name`` key."""
    logger = structlog.get_logger() if name is None else structlog.get_logger(logger_name=name)
    return cast("FilteringBoundLogger", logger)
