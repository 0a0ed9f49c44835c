"""Masking of caller numbers before they reach logs.

Pure functions, no I/O. A caller's phone number is personal data; logs keep at most its
last 4 digits, which is enough to correlate a complaint with a call without exposing who
called.
"""

from __future__ import annotations

import re

__all__ = ["KEPT_DIGITS", "MIN_MASKED_RUN", "mask_digit_runs", "mask_number"]

KEPT_DIGITS = 4
"""How many trailing digits of a number stay visible."""

MIN_MASKED_RUN = 7
"""Shortest run of consecutive digits in free text that is treated as a phone number."""

MASK_CHAR = "*"

# One pass over free text finds either an Asterisk channel name such as
# "PJSIP/4421015205-00000001" or "Local/5205@ivr-0000002a;1" (group "channel" holds
# everything up to the final dash, group "seq" the 8 hex digit sequence number Asterisk
# appends), or a plain run of digits. The channel's sequence number is not personal
# data and is kept so a log line can still be matched to the channel; digit runs inside
# the channel's resource part are masked like any other.
_TEXT_PATTERN = re.compile(
    rf"(?P<channel>\b[A-Za-z][A-Za-z0-9_]*/[^\s/]+?-)(?P<seq>[0-9A-Fa-f]{{8}})(?![0-9A-Za-z])"
    rf"|(?P<run>\+?\d{{{MIN_MASKED_RUN},}})"
)
_RUN_PATTERN = re.compile(rf"\+?\d{{{MIN_MASKED_RUN},}}")


def mask_number(value: str) -> str:
    """Mask every digit of ``value`` except the last 4.

    A leading ``+`` and any separators (spaces, dashes, parentheses) are kept as they
    are, so the masked value still reads like the original. A value with 4 digits or
    fewer is masked completely: its last 4 digits would be the whole number. A value
    without digits ("", "unknown", "anonymous") is returned unchanged.

    >>> mask_number("+524421015205")
    '+********5205'
    >>> mask_number("5205")
    '****'
    """
    total = sum(1 for char in value if char.isdecimal())
    if total == 0:
        return value
    visible_from = total - KEPT_DIGITS if total > KEPT_DIGITS else total
    masked: list[str] = []
    seen = 0
    for char in value:
        if char.isdecimal():
            masked.append(char if seen >= visible_from else MASK_CHAR)
            seen += 1
        else:
            masked.append(char)
    return "".join(masked)


def _mask_run(match: re.Match[str]) -> str:
    return mask_number(match[0])


def _mask_text_match(match: re.Match[str]) -> str:
    run = match["run"]
    if run is not None:
        return mask_number(run)
    return _RUN_PATTERN.sub(_mask_run, match["channel"]) + match["seq"]


def mask_digit_runs(text: str) -> str:
    """Mask every run of 7 or more consecutive digits (optionally after ``+``) in ``text``.

    Each run is masked like :func:`mask_number`. Shorter runs are left alone, so dates,
    times, menu options and durations survive ("2026-12-04 08:00"). The 8 hex digit
    sequence number Asterisk appends to channel names is not a phone number and is kept.

    >>> mask_digit_runs("PJSIP/4421015205-00000001 on 2026-12-04")
    'PJSIP/******5205-00000001 on 2026-12-04'
    """
    return _TEXT_PATTERN.sub(_mask_text_match, text)
