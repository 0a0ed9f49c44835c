"""``ivr.records.purge`` against a real PostgreSQL: personal data goes, statistics stay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from ivr.records.model import CallRecord, QueueOutcome, Record
from ivr.records.purge import count_purgeable, cutoff, purge
from ivr.records.recorder import write_records

KEY = b"purge-test-key"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CUTOFF = cutoff(NOW, 365)
PERSONAL = ("caller_number", "caller_name", "channel", "purged_at")


def call(
    started: datetime,
    number: str | None,
    name: str | None = "CIUDADANO",
    channel: str | None = "PJSIP/troncal-00000001",
) -> CallRecord:
    return CallRecord(
        call_id=uuid4(),
        rev=2,
        uniqueid=f"{started.timestamp():.0f}.1",
        line_number="4421015205",
        channel=channel,
        caller_number=number,
        caller_name=name,
        started_at=started,
        ended_at=started + timedelta(minutes=3),
        path=("1", "2"),
        vertiente="programas",
        area="placas",
        queue="vehicular",
        outcome="routed",
        privacy_notice_version="2023-03",
        menu_version="test",
    )


def dataset() -> tuple[list[Record], set[UUID], set[UUID]]:
    """Records, the ids that must be purged, and the ids that must stay as they are."""
    old = [call(CUTOFF - timedelta(days=d, hours=d), f"442555{d:04d}") for d in range(1, 24)]
    old.append(call(CUTOFF - timedelta(microseconds=1), "4425550999"))  # just before
    old.append(call(CUTOFF - timedelta(days=3), None, "SOLO NOMBRE"))  # name only
    old.append(call(CUTOFF - timedelta(days=5), None, None, "PJSIP/4425550123-0000002a"))
    already_clean = call(CUTOFF - timedelta(days=40), None, None, None)  # nothing to purge
    recent = [call(CUTOFF + timedelta(days=d), f"442666{d:04d}") for d in range(0, 6)]
    recent.append(call(CUTOFF, "4426660999"))  # exactly at the cutoff: not older
    queue = [QueueOutcome(c.call_id, "ANSWERED", 12.5, "SIP/agente1", 95.0) for c in old[:5]]
    records: list[Record] = [*old, already_clean, *recent, *queue]
    return (
        records,
        {c.call_id for c in old},
        {c.call_id for c in [*recent, already_clean]},
    )


async def rows(conn: asyncpg.Connection) -> dict[UUID, dict[str, Any]]:
    found = await conn.fetch("SELECT * FROM calls")
    return {row["call_id"]: dict(row.items()) for row in found}


def without(row: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in columns}


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


async def test_old_calls_lose_number_and_name_and_keep_everything_else(
    conn: asyncpg.Connection,
) -> None:
    records, purged_ids, kept_ids = dataset()
    await write_records(conn, records, KEY)
    before = await rows(conn)
    assert await count_purgeable(conn, CUTOFF) == len(purged_ids)

    started = await conn.fetchval("SELECT now()")
    purged = await purge(conn, CUTOFF, batch_size=4)  # several batches, the last one short
    assert purged == len(purged_ids)

    after = await rows(conn)
    assert after.keys() == before.keys()
    for call_id in purged_ids:
        row = after[call_id]
        assert (row["caller_number"], row["caller_name"], row["channel"]) == (None, None, None)
        assert row["purged_at"] is not None
        assert row["purged_at"] >= started
        # The hash (repeat callers) and every statistical column are untouched.
        assert without(row, PERSONAL) == without(before[call_id], PERSONAL)
    assert any(after[i]["caller_hash"] is not None for i in purged_ids)
    assert any(after[i]["queue_wait_seconds"] == 12.5 for i in purged_ids)
    for call_id in kept_ids:
        assert after[call_id] == before[call_id]
    assert any(after[i]["caller_number"] is not None for i in kept_ids)


async def test_a_second_purge_finds_nothing_and_changes_nothing(conn: asyncpg.Connection) -> None:
    records, purged_ids, _ = dataset()
    await write_records(conn, records, KEY)
    assert await purge(conn, CUTOFF) == len(purged_ids)
    first = await rows(conn)
    assert await count_purgeable(conn, CUTOFF) == 0
    assert await purge(conn, CUTOFF) == 0
    assert await rows(conn) == first


async def test_counting_changes_nothing(conn: asyncpg.Connection) -> None:
    records, purged_ids, _ = dataset()
    await write_records(conn, records, KEY)
    before = await rows(conn)
    assert await count_purgeable(conn, CUTOFF) == len(purged_ids)
    assert await count_purgeable(conn, CUTOFF + timedelta(days=1)) == len(purged_ids) + 2
    assert await rows(conn) == before


async def test_a_replayed_snapshot_does_not_bring_the_number_back(
    conn: asyncpg.Connection,
) -> None:
    records, purged_ids, _ = dataset()
    await write_records(conn, records, KEY)
    await purge(conn, CUTOFF)
    purged = await rows(conn)
    await write_records(conn, records, KEY)  # e.g. an old spool segment replayed
    again = await rows(conn)
    for call_id in purged_ids:
        assert again[call_id]["caller_number"] is None
        assert again[call_id]["caller_name"] is None
        assert again[call_id] == purged[call_id]


def test_cutoff_is_days_before_now_in_utc() -> None:
    mexico = datetime(2026, 6, 1, 6, 0, tzinfo=UTC).astimezone(ZoneInfo("America/Mexico_City"))
    assert cutoff(mexico, 30) == datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
    assert cutoff(mexico, 30).tzinfo is UTC
    with pytest.raises(ValueError, match="at least 1 day"):
        cutoff(NOW, 0)
    with pytest.raises(ValueError, match="UTC offset"):
        cutoff(datetime(2026, 6, 1), 30)


async def test_purge_refuses_a_batch_size_below_one(conn: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await purge(conn, CUTOFF, batch_size=0)
