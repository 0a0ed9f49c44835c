"""Property: cumulative snapshots reach the same row whatever the order and batching.

This is what lets the recorder spool, replay and retry without ordering: the engine
submits cumulative snapshots numbered by revision, and whichever order and grouping
they reach PostgreSQL in, the row ends as the last snapshot says.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.records.model import CallRecord, QueueOutcome, Record
from ivr.records.recorder import write_records

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "vertiente": st.sampled_from(["programas", "servicios", "emergencias"]),
    "area": st.sampled_from(["reemplacamiento", "cea", "atencion-ciudadana"]),
    "outcome": st.sampled_from(["routed", "closed", "invalid", "abandoned_in_menu"]),
    "path": st.lists(st.sampled_from("123#*"), min_size=1, max_size=4).map(tuple),
    "hangup_step": st.sampled_from(["main_menu", "submenu", "closed_message"]),
    "ended_at": st.integers(1, 600).map(lambda s: T0 + timedelta(seconds=s)),
    "caller_number": st.sampled_from(["4421015205", "4425550000"]),
}


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[CallRecord], list[list[CallRecord]]]:
    """A call's cumulative snapshots, and the same snapshots shuffled into batches."""
    call_id = uuid4()
    known: dict[str, Any] = {"started_at": T0}
    snapshots: list[CallRecord] = []
    for rev in range(1, draw(st.integers(1, 6)) + 1):
        for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=3, unique=True)):
            known[name] = draw(FIELDS[name])
        snapshots.append(CallRecord(call_id=call_id, rev=rev, **known))
    # Replays and retries repeat snapshots; the spool may deliver any of them late.
    delivered = draw(st.permutations(snapshots + draw(st.lists(st.sampled_from(snapshots)))))
    cuts = sorted(draw(st.lists(st.integers(0, len(delivered)), max_size=3)))
    batches = [delivered[a:b] for a, b in zip([0, *cuts], [*cuts, len(delivered)], strict=True)]
    return snapshots, [batch for batch in batches if batch]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(histories())
def test_the_row_ends_as_the_last_snapshot_says(
    database_url: str, history: tuple[list[CallRecord], list[list[CallRecord]]]
) -> None:
    snapshots, batches = history

    async def play() -> asyncpg.Record | None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("TRUNCATE calls")
            for batch in batches:
                records: list[Record] = list(batch)
                await write_records(conn, records, b"k")
            return await conn.fetchrow("SELECT * FROM calls")
        finally:
            await conn.close()

    row = asyncio.run(play())
    assert row is not None
    last = snapshots[-1]
    assert row["rev"] == last.rev
    for name in ("started_at", *FIELDS):
        value = getattr(last, name)
        expected = " ".join(value) if name == "path" and value is not None else value
        assert row[name] == expected, name


@pytest.mark.parametrize(
    "batches",
    [
        [["answered"], ["unknown"]],  # an instance that missed the events writes later
        [["unknown"], ["answered"]],  # ... or earlier
        [["answered", "unknown"]],  # ... or in the same batch
        [["unknown", "answered"]],
    ],
)
async def test_unknown_never_overwrites_an_observed_queue_result(
    database_url: str, batches: list[list[str]]
) -> None:
    call_id = uuid4()
    conn = await asyncpg.connect(database_url)
    try:
        for batch in batches:
            records: list[Record] = [
                QueueOutcome(call_id, queue_result=result, queue_wait_seconds=12.0)
                if result == "answered"
                else QueueOutcome(call_id, queue_result=result)
                for result in batch
            ]
            await write_records(conn, records, b"k")
        row = await conn.fetchrow("SELECT * FROM calls WHERE call_id = $1", call_id)
    finally:
        await conn.close()
    assert row is not None
    assert (row["queue_result"], row["queue_wait_seconds"]) == ("answered", 12.0)


async def test_unknown_is_recorded_when_nothing_was_observed(database_url: str) -> None:
    call_id = uuid4()
    conn = await asyncpg.connect(database_url)
    try:
        await write_records(conn, [CallRecord(call_id=call_id, rev=1, outcome="routed")], b"k")
        await write_records(conn, [QueueOutcome(call_id, queue_result="unknown")], b"k")
        row = await conn.fetchrow("SELECT * FROM calls WHERE call_id = $1", call_id)
    finally:
        await conn.close()
    assert row is not None
    assert (row["outcome"], row["queue_result"]) == ("routed", "unknown")
