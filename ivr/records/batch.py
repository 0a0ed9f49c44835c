"""Turn a list of records into the column arrays of one idempotent write (pure).

Several snapshots of one call in a batch are merged first (PostgreSQL refuses to update
a row twice in one ``INSERT ... ON CONFLICT``), with the same rule the database applies
across batches: per column, the highest revision that knows a value wins. Events are
keyed by (call_id, seq); a repeat of an event already in the batch is dropped. Call rows
are sorted by call_id so that concurrent writers take row locks in one order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID

from ivr.records.hashing import caller_hash
from ivr.records.model import CallEvent, CallRecord, QueueOutcome, Record

__all__ = [
    "CALL_COLUMNS",
    "EVENT_COLUMNS",
    "Batch",
    "build_batch",
    "insert_events_sql",
    "upsert_calls_sql",
]

# The snapshot columns of `calls`, in the order of CallRecord after call_id and rev.
SNAPSHOT_COLUMNS: Final = (
    "uniqueid",
    "linkedid",
    "line_number",
    "channel",
    "caller_number",
    "caller_name",
    "started_at",
    "answered_at",
    "ended_at",
    "path",
    "vertiente",
    "area",
    "queue",
    "outcome",
    "hangup_step",
    "privacy_notice_version",
    "menu_version",
)
QUEUE_COLUMNS: Final = (
    "queue_result",
    "queue_wait_seconds",
    "agent",
    "talk_seconds",
    "hangup_cause",
)
CALL_COLUMNS: Final = ("call_id", "rev", *SNAPSHOT_COLUMNS, "caller_hash", *QUEUE_COLUMNS)
EVENT_COLUMNS: Final = ("call_id", "seq", "at", "kind", "detail")

_TYPES: Final = {
    "call_id": "uuid",
    "rev": "integer",
    "started_at": "timestamptz",
    "answered_at": "timestamptz",
    "ended_at": "timestamptz",
    "queue_wait_seconds": "double precision",
    "talk_seconds": "double precision",
    "seq": "integer",
    "at": "timestamptz",
}
UNKNOWN_RESULT: Final = "unknown"
_PATH_INDEX: Final = CALL_COLUMNS.index("path")
# One encoder for every event: json.dumps() with options builds a new one per call.
_encode_json: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=str
).encode
# Personal data that must stay cleared once `ivr purge` has cleared it, even if an old
# snapshot is replayed from the spool afterwards.
_PERSONAL: Final = frozenset({"caller_number", "caller_name", "channel"})


def _sql_type(column: str) -> str:
    return _TYPES.get(column, "text")


def _unnest(columns: tuple[str, ...]) -> str:
    # Built from the constant column names above, never from input: values travel as
    # $n parameters.
    arrays = ", ".join(f"${i}::{_sql_type(c)}[]" for i, c in enumerate(columns, start=1))
    return f"SELECT * FROM unnest({arrays}) AS u({', '.join(columns)})"  # noqa: S608


def _snapshot_update(column: str) -> str:
    merged = (
        f"CASE WHEN EXCLUDED.rev >= calls.rev THEN COALESCE(EXCLUDED.{column}, calls.{column}) "
        f"ELSE COALESCE(calls.{column}, EXCLUDED.{column}) END"
    )
    if column in _PERSONAL:
        merged = f"CASE WHEN calls.purged_at IS NULL THEN {merged} END"
    return f"{column} = {merged}"


def _queue_update(column: str) -> str:
    if column == "queue_result":
        # "unknown" (AMI missed the events) never replaces what another writer observed.
        return (
            f"{column} = CASE WHEN EXCLUDED.{column} = '{UNKNOWN_RESULT}' "
            f"THEN COALESCE(calls.{column}, EXCLUDED.{column}) "
            f"ELSE COALESCE(EXCLUDED.{column}, calls.{column}) END"
        )
    return f"{column} = COALESCE(EXCLUDED.{column}, calls.{column})"


def upsert_calls_sql() -> str:
    updates = [
        "rev = GREATEST(calls.rev, EXCLUDED.rev)",
        *(_snapshot_update(c) for c in (*SNAPSHOT_COLUMNS, "caller_hash")),
        *(_queue_update(c) for c in QUEUE_COLUMNS),
    ]
    return (
        f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) {_unnest(CALL_COLUMNS)} "
        f"ON CONFLICT (call_id) DO UPDATE SET {', '.join(updates)}"
    )


def insert_events_sql() -> str:
    select = _unnest(EVENT_COLUMNS).replace(
        "SELECT *", "SELECT call_id, seq, at, kind, detail::jsonb", 1
    )
    return f"INSERT INTO call_events ({', '.join(EVENT_COLUMNS)}) {select} ON CONFLICT DO NOTHING"


@dataclass
class _Row:
    rev: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    queue: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """Column arrays ready for :func:`upsert_calls_sql` and :func:`insert_events_sql`."""

    calls: tuple[list[Any], ...]
    events: tuple[list[Any], ...]
    records: int

    @property
    def call_count(self) -> int:
        return len(self.calls[0])

    @property
    def event_count(self) -> int:
        return len(self.events[0])


def _merge_snapshot(row: _Row, record: CallRecord) -> None:
    newer = record.rev >= row.rev
    for column in SNAPSHOT_COLUMNS:
        value = getattr(record, column)
        if value is None:
            continue
        if newer or row.values.get(column) is None:
            row.values[column] = value
    row.rev = max(row.rev, record.rev)


def _by_call_id(item: tuple[UUID, _Row]) -> int:
    return item[0].int


def build_batch(records: Iterable[Record], key: bytes) -> Batch:
    """Merge ``records`` into one write; ``key`` is the caller-number HMAC key."""
    rows: dict[UUID, _Row] = {}
    events: dict[tuple[UUID, int], CallEvent] = {}
    count = 0
    for record in records:
        count += 1
        if type(record) is CallEvent:
            events.setdefault((record.call_id, record.seq), record)
            continue
        row = rows.get(record.call_id)
        if row is None:
            row = rows[record.call_id] = _Row()
        if isinstance(record, CallRecord):
            _merge_snapshot(row, record)
        elif isinstance(record, QueueOutcome):
            for column in QUEUE_COLUMNS:
                value = getattr(record, column)
                if value is None or (value == UNKNOWN_RESULT and column in row.queue):
                    continue
                row.queue[column] = value
    # Rows go in call_id order: every writer then locks rows in the same order, so two
    # instances completing the same calls (the AGI side and the AMI side) never deadlock.
    # Events need no order: one instance writes a call's trail.
    call_columns: tuple[list[Any], ...] = tuple([] for _ in CALL_COLUMNS)
    for call_id, row in sorted(rows.items(), key=_by_call_id):
        values = row.values
        path = values.get("path")
        cells: list[Any] = [
            call_id,
            row.rev,
            *[values.get(c) for c in SNAPSHOT_COLUMNS],
            caller_hash(key, values.get("caller_number")),
            *[row.queue.get(c) for c in QUEUE_COLUMNS],
        ]
        cells[_PATH_INDEX] = None if path is None else " ".join(path)
        for values_of, cell in zip(call_columns, cells, strict=True):
            values_of.append(cell)
    ids: list[UUID] = []
    seqs: list[int] = []
    instants: list[Any] = []
    kinds: list[str] = []
    details: list[str] = []
    for event in events.values():
        ids.append(event.call_id)
        seqs.append(event.seq)
        instants.append(event.at)
        kinds.append(event.kind)
        details.append(_encode_json(event.detail))
    return Batch(calls=call_columns, events=(ids, seqs, instants, kinds, details), records=count)
