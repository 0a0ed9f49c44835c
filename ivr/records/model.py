"""What the recorder stores: call snapshots, call events and queue outcomes.

These are plain immutable values; building one does no I/O and no validation beyond
types, so the caller's hot path stays cheap. The writer checks them against the
database's constraints and sets aside (never drops) the rare record that fails.

A :class:`CallRecord` is a *cumulative snapshot* of what the engine knows about a call,
numbered by ``rev`` (1, 2, ...). Writes merge: for each column the highest revision that
knows a value wins, so snapshots can arrive in any order, twice, or after a replay, and
the row ends up the same. :class:`QueueOutcome` fills the columns that only the queue
(AMI) observes; its values win when known and never erase what was known.

Each value has a JSON form for the on-disk spool (:func:`to_json`, :func:`from_json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Final
from uuid import UUID, uuid5

__all__ = [
    "OUTCOMES",
    "CallEvent",
    "CallRecord",
    "QueueOutcome",
    "Record",
    "RecordDecodeError",
    "call_id_for",
    "from_json",
    "to_json",
]

OUTCOMES: Final = frozenset(
    {"routed", "closed", "invalid", "no_input", "fallback", "abandoned_in_menu", "error"}
)


# Fixed forever: changing it would split the records of calls in flight in two.
_CALL_ID_NAMESPACE: Final = UUID("5b1f4c2e-9d0a-4c61-8f0e-2f6f1d7a3c90")


def call_id_for(uniqueid: str) -> UUID:
    """The record id of the call whose channel has Asterisk ``uniqueid``.

    The AGI session (``agi_uniqueid``) and the AMI queue events (``Uniqueid``) name the
    caller's channel the same way, so both sides find the same row without talking to
    each other, in any order, on any instance. Uniqueids are unique per Asterisk
    system; several Asterisk servers sharing one database need distinct
    ``systemname`` settings in ``asterisk.conf`` (which prefixes every uniqueid)."""
    return uuid5(_CALL_ID_NAMESPACE, uniqueid)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call as the engine knows it at revision ``rev``; None means "not known yet"."""

    call_id: UUID
    rev: int
    uniqueid: str | None = None
    linkedid: str | None = None
    line_number: str | None = None
    channel: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    path: tuple[str, ...] | None = None
    vertiente: str | None = None
    area: str | None = None
    queue: str | None = None
    outcome: str | None = None
    hangup_step: str | None = None
    privacy_notice_version: str | None = None
    menu_version: str | None = None


@dataclass(frozen=True, slots=True)
class CallEvent:
    """Step ``seq`` (0, 1, ...) of a call's trail. (call_id, seq) identifies it.

    ``detail`` describes the menu walk (step, keys, prompt, queue) and must never hold
    personal data: retention clears the ``calls`` row, not the trail."""

    call_id: UUID
    seq: int
    at: datetime
    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueOutcome:
    """What the operator queue observed for a call; None means "not observed"."""

    call_id: UUID
    queue_result: str | None = None
    queue_wait_seconds: float | None = None
    agent: str | None = None
    talk_seconds: float | None = None
    hangup_cause: str | None = None


Record = CallRecord | CallEvent | QueueOutcome

_TAGS: Final[dict[type[Any], str]] = {CallRecord: "call", CallEvent: "event", QueueOutcome: "queue"}
_TYPES: Final[dict[str, type[Any]]] = {tag: kind for kind, tag in _TAGS.items()}
_DATETIMES: Final = frozenset({"started_at", "answered_at", "ended_at", "at"})
_FIELDS: Final = {kind: tuple(f.name for f in fields(kind)) for kind in _TAGS}


class RecordDecodeError(ValueError):
    """A spool line that is not a record this release understands."""


def _encode(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "call_id":
        return str(value)
    if name in _DATETIMES:
        return value.isoformat()
    if name == "path":
        return list(value)
    if name == "detail":
        return dict(value)
    return value


def _decode(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "call_id":
        return UUID(value)
    if name in _DATETIMES:
        instant = datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise RecordDecodeError(f"{name} has no UTC offset: {value!r}")
        return instant
    if name == "path":
        return tuple(str(key) for key in value)
    return value


def to_json(record: Record) -> str:
    """One line of JSON (no newline) that :func:`from_json` turns back into ``record``."""
    kind = type(record)
    body: dict[str, Any] = {"t": _TAGS[kind]}
    for name in _FIELDS[kind]:
        value = getattr(record, name)
        if value is not None:
            body[name] = _encode(name, value)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)


def from_json(line: str | bytes) -> Record:
    """Parse one spool line; :class:`RecordDecodeError` says what is wrong with it."""
    try:
        body = json.loads(line)
    except ValueError as exc:
        raise RecordDecodeError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RecordDecodeError("not a JSON object")
    kind = _TYPES.get(body.pop("t", None))
    if kind is None:
        raise RecordDecodeError("unknown record type")
    known = _FIELDS[kind]
    unknown = set(body) - set(known)
    if unknown:
        raise RecordDecodeError(f"unknown fields: {', '.join(sorted(unknown))}")
    try:
        return kind(**{name: _decode(name, value) for name, value in body.items()})  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise RecordDecodeError(str(exc)) from None
