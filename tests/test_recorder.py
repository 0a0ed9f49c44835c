"""The write-behind recorder against a real PostgreSQL (ivr.records.recorder)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from records_data import synthetic_call, synthetic_stream

from ivr.records.model import CallEvent, CallRecord, Record
from ivr.records.recorder import Recorder, RecorderClosedError
from ivr.records.spool import REJECTED, Spool

KEY = b"k"


def connector(url: str) -> Callable[[], Awaitable[asyncpg.Connection]]:
    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(url, timeout=2)

    return connect


async def counts(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        calls = await conn.fetchval("SELECT count(*) FROM calls")
        events = await conn.fetchval("SELECT count(*) FROM call_events")
        return int(calls), int(events)
    finally:
        await conn.close()


def recorder(url: str, spool_dir: Path, **options: float) -> Recorder:
    return Recorder(
        connect=connector(url),
        spool=Spool(spool_dir),
        key=KEY,
        **options,  # type: ignore[arg-type]
    )


async def test_everything_submitted_is_written_by_close(database_url: str, tmp_path: Path) -> None:
    rec = recorder(database_url, tmp_path)
    await rec.start()
    stream = synthetic_stream(300)
    for record in stream:
        rec.submit(record)
    await rec.close()
    assert await counts(database_url) == (300, 300 * 8)
    assert rec.stats.written == len(stream)
    assert rec.stats.spooled == 0
    assert not Spool(tmp_path).segments()


async def test_unreachable_database_spools_and_the_next_start_replays_once(
    database_url: str, tmp_path: Path
) -> None:
    nowhere = "postgresql://ivr@127.0.0.1:1/ivr"  # port 1: connection refused
    down = recorder(nowhere, tmp_path, retry_initial=0.01)
    await down.start()
    stream = synthetic_stream(120)
    for record in stream:
        down.submit(record)
    await down.close()
    assert down.stats.written == 0
    assert down.stats.spooled == len(stream)
    assert Spool(tmp_path).size_bytes() > 0

    up = recorder(database_url, tmp_path)
    await up.start()
    await up.close()
    assert up.stats.replayed == len(stream)
    assert await counts(database_url) == (120, 120 * 8)
    assert not Spool(tmp_path).segments()


async def test_a_slow_database_never_blocks_submit_and_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    blocker = await asyncpg.connect(database_url)
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
    rec = recorder(
        database_url, tmp_path, max_queue=200, batch_size=100, write_timeout=0.3, retry_initial=0.05
    )
    await rec.start()
    stream = synthetic_stream(200)
    try:
        for index, record in enumerate(stream):
            rec.submit(record)  # returns at once: it is not even a coroutine
            if index % 50 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        assert rec.stats.spooled > 0, "writes should have timed out into the spool"
        assert rec.stats.overflowed > 0, "a full queue should have overflowed to the spool"
    finally:
        await transaction.rollback()
        await blocker.close()
    await rec.close()
    assert await counts(database_url) == (200, 200 * 8)
    assert rec.stats.rejected == 0


async def test_a_record_the_database_refuses_is_set_aside_and_the_rest_written(
    database_url: str, tmp_path: Path
) -> None:
    bad = CallRecord(call_id=uuid4(), rev=1, outcome="transferred")  # not an allowed outcome
    stream = synthetic_stream(30)
    rec = recorder(database_url, tmp_path)
    await rec.start()
    for record in [*stream[:100], bad, *stream[100:]]:
        rec.submit(record)
    await rec.close()
    assert await counts(database_url) == (30, 30 * 8)
    assert rec.stats.rejected == 1
    (entry,) = [json.loads(line) for line in (tmp_path / REJECTED).read_text().splitlines()]
    assert entry["where"] == "database"
    assert "CheckViolationError" in entry["reason"]
    assert json.loads(entry["record"])["outcome"] == "transferred"


async def test_submit_after_close_is_an_error(database_url: str, tmp_path: Path) -> None:
    rec = recorder(database_url, tmp_path)
    await rec.start()
    await rec.close()
    with pytest.raises(RecorderClosedError):
        rec.submit(synthetic_call(1)[0])


async def test_events_may_arrive_before_their_call(database_url: str, tmp_path: Path) -> None:
    records = synthetic_call(5)
    events: list[Record] = [r for r in records if isinstance(r, CallEvent)]
    rest: list[Record] = [r for r in records if not isinstance(r, CallEvent)]
    rec = recorder(database_url, tmp_path)
    await rec.start()
    for record in events:
        rec.submit(record)
    await asyncio.sleep(0.2)  # a flush interval passes: the events are written alone
    for record in rest:
        rec.submit(record)
    await rec.close()
    assert await counts(database_url) == (1, len(events))
    assert rec.stats.batches >= 2


class FullDisk(Spool):
    """A spool whose disk refuses writes while ``full`` is set (ENOSPC)."""

    full = True

    def append(self, record: Record) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        super().append(record)


async def test_database_down_and_disk_full_keeps_records_in_memory_until_one_returns(
    database_url: str, tmp_path: Path
) -> None:
    target = {"url": "postgresql://ivr@127.0.0.1:1/ivr"}

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(target["url"], timeout=2)

    spool = FullDisk(tmp_path)
    rec = Recorder(
        connect=connect, spool=spool, key=KEY, max_queue=100, batch_size=50, retry_initial=0.02
    )
    await rec.start()
    stream = synthetic_stream(40)
    for record in stream:
        rec.submit(record)  # neither the database nor the disk takes it: no exception
    await asyncio.sleep(0.3)
    assert rec.stats.spool_errors > 0
    assert rec.queue_depth == len(stream)  # over the bound, but nothing dropped
    target["url"] = database_url
    await asyncio.sleep(0.5)
    await rec.close()
    assert await counts(database_url) == (40, 40 * 8)
    assert rec.stats.lost == 0


async def test_a_database_too_slow_at_shutdown_gets_everything_spooled(
    database_url: str, tmp_path: Path
) -> None:
    blocker = await asyncpg.connect(database_url)
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
    stream = synthetic_stream(50)
    try:
        rec = recorder(database_url, tmp_path, write_timeout=30)
        await rec.start()
        for record in stream:
            rec.submit(record)
        await asyncio.sleep(0.2)  # the writer is now stuck inside a write
        await rec.close(grace=0.2)
        assert rec.stats.written == 0
        assert rec.stats.spooled == len(stream)
    finally:
        await transaction.rollback()
        await blocker.close()
    again = recorder(database_url, tmp_path)
    await again.start()
    await again.close()
    assert again.stats.replayed == len(stream)
    assert await counts(database_url) == (50, 50 * 8)


async def test_two_instances_writing_the_same_calls_do_not_deadlock(
    database_url: str, tmp_path: Path
) -> None:
    # As when the AGI side and the AMI side of two instances complete the same calls:
    # overlapping batches, submitted in opposite orders.
    stream = synthetic_stream(400)
    first = recorder(database_url, tmp_path / "a", batch_size=5000)
    second = recorder(database_url, tmp_path / "b", batch_size=5000)
    await first.start()
    await second.start()
    for record in stream:
        first.submit(record)
    for record in reversed(stream):
        second.submit(record)
    await asyncio.gather(first.close(), second.close())
    assert (first.stats.write_errors, second.stats.write_errors) == (0, 0)
    assert (first.stats.spooled, second.stats.spooled) == (0, 0)
    assert await counts(database_url) == (400, 400 * 8)
