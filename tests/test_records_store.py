"""Records written to a real PostgreSQL: round trip, merge rules, idempotence."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from records_data import synthetic_call, synthetic_stream

from ivr.records.batch import CALL_COLUMNS, build_batch
from ivr.records.model import (
    CallEvent,
    CallRecord,
    QueueOutcome,
    Record,
    RecordDecodeError,
    from_json,
    to_json,
)
from ivr.records.recorder import write_records

KEY = b"test-key"
T0 = datetime(2026, 12, 4, 14, 30, 5, 123456, tzinfo=UTC)


async def fetch_call(conn: asyncpg.Connection, call_id: object) -> dict[str, object]:
    row = await conn.fetchrow("SELECT * FROM calls WHERE call_id = $1", call_id)
    assert row is not None
    return dict(row)


async def test_a_recorded_call_round_trips_with_every_field(database_url: str) -> None:
    cid = uuid4()
    first = CallRecord(
        call_id=cid,
        rev=1,
        uniqueid="1733322605.42",
        linkedid="1733322605.41",
        line_number="4421015205",
        channel="PJSIP/telmex-0000002a",
        caller_number="+52 442 123 4567",
        caller_name="José Núñez",
        started_at=T0,
        answered_at=T0 + timedelta(seconds=1),
    )
    last = CallRecord(
        call_id=cid,
        rev=2,
        ended_at=T0 + timedelta(seconds=95),
        path=("1", "2", "*", "2"),
        vertiente="programas",
        area="refrendo-vehicular",
        queue="finanzas-vehicular",
        outcome="routed",
        hangup_step="submenu",
        privacy_notice_version="2026-01",
        menu_version="2026.12.1",
    )
    queue = QueueOutcome(
        call_id=cid,
        queue_result="completed",
        queue_wait_seconds=42.5,
        agent="PJSIP/operador-07",
        talk_seconds=180.25,
        hangup_cause="16",
    )
    events = [
        CallEvent(cid, 0, T0, "answer", {}),
        CallEvent(cid, 1, T0 + timedelta(seconds=2), "digits", {"menu": "main", "keys": "1"}),
        CallEvent(cid, 2, T0 + timedelta(seconds=5), "route", {"queue": "finanzas-vehicular"}),
    ]
    conn = await asyncpg.connect(database_url)
    try:
        await write_records(conn, [first, *events, last, queue], KEY)
        row = await fetch_call(conn, cid)
        expected_hash = hmac.new(KEY, b"+524421234567", hashlib.sha256).hexdigest()
        assert row == {
            "call_id": cid,
            "rev": 2,
            "uniqueid": "1733322605.42",
            "linkedid": "1733322605.41",
            "line_number": "4421015205",
            "channel": "PJSIP/telmex-0000002a",
            "caller_number": "+52 442 123 4567",
            "caller_hash": expected_hash,
            "caller_name": "José Núñez",
            "started_at": T0,
            "answered_at": T0 + timedelta(seconds=1),
            "ended_at": T0 + timedelta(seconds=95),
            "path": "1 2 * 2",
            "vertiente": "programas",
            "area": "refrendo-vehicular",
            "queue": "finanzas-vehicular",
            "outcome": "routed",
            "hangup_step": "submenu",
            "privacy_notice_version": "2026-01",
            "menu_version": "2026.12.1",
            "queue_result": "completed",
            "queue_wait_seconds": 42.5,
            "agent": "PJSIP/operador-07",
            "talk_seconds": 180.25,
            "hangup_cause": "16",
            "purged_at": None,
        }
        trail = await conn.fetch(
            "SELECT seq, at, kind, detail::text FROM call_events WHERE call_id = $1 ORDER BY seq",
            cid,
        )
        assert [(r["seq"], r["at"], r["kind"]) for r in trail] == [
            (e.seq, e.at, e.kind) for e in events
        ]
        assert trail[1]["detail"] == '{"keys": "1", "menu": "main"}'
    finally:
        await conn.close()


async def test_writing_everything_twice_stores_it_once(database_url: str) -> None:
    stream = synthetic_stream(50)
    conn = await asyncpg.connect(database_url)
    try:
        await write_records(conn, stream, KEY)
        before = await conn.fetch("SELECT * FROM calls ORDER BY call_id")
        await write_records(conn, stream, KEY)
        await write_records(conn, list(reversed(stream)), KEY)
        assert await conn.fetch("SELECT * FROM calls ORDER BY call_id") == before
        assert await conn.fetchval("SELECT count(*) FROM calls") == 50
        assert await conn.fetchval("SELECT count(*) FROM call_events") == 50 * 8
    finally:
        await conn.close()


async def test_snapshots_in_any_order_and_any_batching_give_the_same_row(
    database_url: str,
) -> None:
    records = synthetic_call(7)
    conn = await asyncpg.connect(database_url)
    try:
        await write_records(conn, records, KEY)
        reference = await fetch_call(conn, records[0].call_id)
        for order in itertools.permutations([r for r in records if not isinstance(r, CallEvent)]):
            await conn.execute("TRUNCATE calls")
            for record in order:  # one transaction per record: the order reaches the database
                await write_records(conn, [record], KEY)
            assert await fetch_call(conn, records[0].call_id) == reference
    finally:
        await conn.close()


async def test_an_old_snapshot_replayed_after_purge_does_not_restore_the_number(
    database_url: str,
) -> None:
    records = synthetic_call(3)
    conn = await asyncpg.connect(database_url)
    try:
        await write_records(conn, records, KEY)
        await conn.execute(
            "UPDATE calls SET caller_number = NULL, caller_name = NULL, channel = NULL,"
            " purged_at = now()"
        )
        await write_records(conn, records, KEY)
        row = await fetch_call(conn, records[0].call_id)
        assert row["caller_number"] is None
        assert row["caller_name"] is None
        assert row["channel"] is None
        assert row["caller_hash"] is not None
    finally:
        await conn.close()


def test_the_batch_merges_snapshots_of_one_call_by_revision() -> None:
    cid = uuid4()
    older = CallRecord(call_id=cid, rev=1, outcome="routed", vertiente="programas")
    newer = CallRecord(call_id=cid, rev=2, outcome="closed")
    for order in ([older, newer], [newer, older]):
        batch = build_batch(order, KEY)
        assert batch.call_count == 1
        columns = dict(zip(("call_id", "rev"), (batch.calls[0][0], batch.calls[1][0]), strict=True))
        assert columns == {"call_id": cid, "rev": 2}
        row = {name: values[0] for name, values in zip(CALL_COLUMNS, batch.calls, strict=True)}
        assert (row["outcome"], row["vertiente"]) == ("closed", "programas")


def test_a_repeated_event_in_one_batch_is_written_once() -> None:
    cid = uuid4()
    event = CallEvent(cid, 0, T0, "answer", {})
    batch = build_batch([event, event, CallEvent(cid, 1, T0, "hangup", {})], KEY)
    assert batch.event_count == 2
    assert batch.records == 3


texts = st.text(max_size=20)
maybe = st.none() | texts
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
uuids = st.uuids()
records: st.SearchStrategy[Record] = st.one_of(
    st.builds(
        CallRecord,
        call_id=uuids,
        rev=st.integers(1, 1000),
        uniqueid=maybe,
        caller_number=maybe,
        caller_name=maybe,
        started_at=st.none() | instants,
        path=st.none() | st.lists(st.sampled_from("0123456789*#"), max_size=6).map(tuple),
        outcome=st.none() | st.sampled_from(["routed", "closed"]),
    ),
    st.builds(
        CallEvent,
        call_id=uuids,
        seq=st.integers(0, 10_000),
        at=instants,
        kind=texts,
        detail=st.dictionaries(texts, st.integers() | texts | st.booleans(), max_size=3),
    ),
    st.builds(
        QueueOutcome,
        call_id=uuids,
        queue_wait_seconds=st.none() | st.floats(0, 1e6),
        agent=maybe,
    ),
)


@settings(max_examples=200, deadline=None)
@given(records)
def test_every_record_survives_the_spool_encoding(record: Record) -> None:
    line = to_json(record)
    assert "\n" not in line
    assert from_json(line) == record


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"t":"nope"}', "unknown record type"),
        (b'{"t":"call","call_id":"00000000-0000-0000-0000-000000000001","rev":1,"x":1}', "x"),
        (b'{"t":"call","call_id":"not-a-uuid","rev":1}', "badly formed"),
        (
            b'{"t":"event","call_id":"00000000-0000-0000-0000-000000000001","seq":0,'
            b'"at":"2026-01-01T00:00:00","kind":"k"}',
            "no UTC offset",
        ),
    ],
)
def test_bad_spool_lines_say_what_is_wrong(line: bytes, message: str) -> None:
    with pytest.raises(RecordDecodeError, match=message):
        from_json(line)
