"""The engine's per-call handle (ivr.records.calllog) and its records in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from ivr.records.calllog import CallLog
from ivr.records.model import CallEvent, CallRecord, Record
from ivr.records.recorder import Recorder
from ivr.records.spool import Spool

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class ListSink:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def submit(self, record: Record) -> None:
        self.records.append(record)


def test_each_update_is_a_cumulative_snapshot_with_the_next_revision() -> None:
    sink = ListSink()
    submitted = sink.records
    log = CallLog(sink, clock=Clock())
    log.update(uniqueid="1.1", caller_number="4421234567", started_at=T0)
    log.event("answer")
    log.event("digits", menu="main", keys="1")
    log.update(vertiente="programas", path=["1"])
    log.update(outcome="routed", path=["1", "2"])
    snapshots = [r for r in submitted if isinstance(r, CallRecord)]
    assert [s.rev for s in snapshots] == [1, 2, 3]
    assert snapshots[-1] == CallRecord(
        call_id=log.call_id,
        rev=3,
        uniqueid="1.1",
        caller_number="4421234567",
        started_at=T0,
        vertiente="programas",
        path=("1", "2"),
        outcome="routed",
    )
    events = [r for r in submitted if isinstance(r, CallEvent)]
    assert [(e.seq, e.kind, dict(e.detail)) for e in events] == [
        (0, "answer", {}),
        (1, "digits", {"menu": "main", "keys": "1"}),
    ]
    assert events[1].at - events[0].at == timedelta(seconds=1)
    assert log.get("vertiente") == "programas"


def test_an_unknown_field_is_a_programming_error() -> None:
    sink = ListSink()
    log = CallLog(sink)
    with pytest.raises(TypeError, match="not call record fields: colour"):
        log.update(colour="blue")
    with pytest.raises(TypeError, match="rev"):
        log.update(rev=7)
    assert sink.records == []


async def test_a_call_logged_through_the_recorder_reads_back_complete(
    database_url: str, tmp_path: Path
) -> None:
    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(database_url)

    recorder = Recorder(connect=connect, spool=Spool(tmp_path), key=b"k")
    await recorder.start()
    log = CallLog(recorder, clock=Clock())
    log.update(uniqueid="1733.9", started_at=T0, caller_number="4421015205")
    for step in ("greeting", "privacy_notice", "main_menu"):
        log.event("play", step=step)
    log.update(vertiente="servicios", area="atencion-ciudadana", outcome="routed", path=["2", "1"])
    await recorder.close()
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT rev, uniqueid, path, outcome, caller_hash IS NOT NULL AS hashed "
            "FROM calls WHERE call_id = $1",
            log.call_id,
        )
        steps = await conn.fetch(
            "SELECT detail->>'step' AS step FROM call_events WHERE call_id = $1 ORDER BY seq",
            log.call_id,
        )
    finally:
        await conn.close()
    assert row is not None
    assert dict(row) == {
        "rev": 2,
        "uniqueid": "1733.9",
        "path": "2 1",
        "outcome": "routed",
        "hashed": True,
    }
    assert [r["step"] for r in steps] == ["greeting", "privacy_notice", "main_menu"]
