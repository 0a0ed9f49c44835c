"""PostgreSQL crashes and comes back while ``ivr serve`` is under load.

The whole service runs as a process against a PostgreSQL of this test's own; the fake
Asterisk places a steady stream of concurrent calls of every kind. A third of the way
through, the database is stopped the hard way (``pg_ctl stop -m immediate``: what a
crash looks like to clients, connections reset mid-transaction); calls keep coming
while it is down; then it starts again. Every call placed must end up as exactly one
row with its final outcome and its whole trail, the spool must drain with nothing
rejected, and the ``ivr_records_*`` counters must account for every record.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from pg import PrivateServer
from records_data import synthetic_call
from service_proc import (
    MIX,
    Load,
    Placed,
    count_rows,
    place_calls,
    rejected_lines,
    running_service,
    segments,
    service_env,
    stored_calls,
    until,
)

from ivr.records.recorder import Recorder
from ivr.records.spool import Spool

CALLS = 300
CONCURRENT = 30
KILL_AT = CALLS // 3  # calls from this one on start only once the database is down
RESTART_AFTER = 2 * CALLS // 3 - 10  # finished calls before the database starts again


async def test_postgresql_killed_and_restarted_under_load_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    pg = await asyncio.to_thread(PrivateServer, tmp_path / "pgdata")
    try:
        url = pg.url
        data = tmp_path / "data"
        async with running_service(service_env(data, url)) as service:
            await service.wait_for("records ready")
            plans = [MIX[i % len(MIX)] for i in range(CALLS)]
            load = Load()
            killed = asyncio.Event()
            restarted = asyncio.Event()

            async def gate(index: int) -> None:
                if index >= KILL_AT:
                    await killed.wait()
                if index >= 2 * CALLS // 3:
                    await restarted.wait()

            async def faults() -> None:
                await load.reached(lambda s: s.launched >= KILL_AT)
                await asyncio.to_thread(pg.kill)  # ~30 calls are in flight right now
                killed.set()
                await load.reached(lambda s: s.finished >= RESTART_AFTER)
                await asyncio.to_thread(pg.restart)
                restarted.set()

            chaos = asyncio.create_task(faults())
            placed = await place_calls(
                service.agi_port,
                plans,
                concurrency=CONCURRENT,
                play_seconds=0.01,
                gate=gate,
                load=load,
            )
            await chaos
            assert pg.url == url  # the service keeps the URL it was given

            # The service noticed the outage and spooled meanwhile.
            await service.wait_for("database unavailable; spooling records to disk")

            async def settled() -> bool:
                calls, _ = await count_rows(url)
                metrics = await service.metrics()
                return (
                    calls == CALLS
                    and metrics["ivr_records_spool_bytes"] == 0
                    and metrics["ivr_records_queue_depth"] == 0
                    and metrics["ivr_records_database_up"] == 1
                )

            await until(settled, 45, "every call in PostgreSQL and the spool drained")
            metrics = await service.metrics()
            assert await service.stop() == 0

        assert_decided_as_planned(placed)
        rows = await stored_calls(url)
        assert_one_complete_row_per_call(placed, rows)
        assert_counters_account_for_every_record(metrics, rows)
        spool = data / "spool"
        assert segments(spool) == []
        assert rejected_lines(spool) == []
    finally:
        await asyncio.to_thread(pg.cleanup)


def assert_decided_as_planned(placed: list[Placed]) -> None:
    """Asterisk saw every call decided as planned, database or not."""
    for call in placed:
        assert call.result.agi_status == call.plan.agi_status, call
        if call.plan.agi_status == "SUCCESS":
            assert call.result.variables["IVR_OUTCOME"] == call.plan.outcome


def assert_one_complete_row_per_call(
    placed: list[Placed], rows: dict[UUID, dict[str, Any]]
) -> None:
    assert len({call.call_id for call in placed}) == CALLS
    assert set(rows) == {call.call_id for call in placed}  # one row per call, no stranger
    for call in placed:
        row = rows[call.call_id]
        assert row["uniqueid"] == call.result.uniqueid
        assert row["outcome"] == call.plan.outcome, row  # the final snapshot is there
        assert row["area"] == call.plan.area
        assert row["ended_at"] is not None
        # The whole trail, each step once: seq 0..n-1 with no gap.
        assert row["events"] > 0
        assert row["max_seq"] == row["events"] - 1


def assert_counters_account_for_every_record(
    metrics: dict[str, float], rows: dict[UUID, dict[str, Any]]
) -> None:
    """Each snapshot (rev 1..n of a call) and each step is one record, written once."""
    records = sum(row["rev"] + row["events"] for row in rows.values())
    assert metrics["ivr_records_write_errors_total"] > 0, "the crash went unnoticed"
    assert metrics["ivr_records_spooled_total"] > 0
    assert metrics["ivr_records_replayed_total"] == metrics["ivr_records_spooled_total"]
    assert metrics["ivr_records_written_total"] == records
    assert metrics["ivr_records_rejected_total"] == 0
    assert metrics["ivr_records_lost_total"] == 0
    assert metrics['ivr_agi_sessions_total{result="completed"}'] == CALLS
    assert metrics['ivr_agi_sessions_total{result="handler_error"}'] == 0


class _DiesOnSecondChunk(asyncpg.Connection):
    """A real connection whose server process is terminated (by a second connection,
    as ``pg_terminate_backend`` from an operator or a failover would) just before it
    upserts its second batch of calls."""

    url = ""
    upserts = 0

    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - asyncpg's own signature
    ) -> str:
        if query.startswith("INSERT INTO calls "):
            type(self).upserts += 1
            if type(self).upserts == 2:
                killer = await asyncpg.connect(self.url)
                try:
                    await killer.execute("SELECT pg_terminate_backend($1)", self.get_server_pid())
                finally:
                    await killer.close()
        return await super().execute(query, *args, timeout=timeout)


async def test_a_replay_cut_short_counts_each_spooled_record_once(
    tmp_path: Path, database_url: str
) -> None:
    """The database drops while a spool segment is being replayed, after its first
    batch is in. The segment is replayed again from its start (harmless: writes are
    idempotent), but ``ivr_records_replayed_total`` and ``ivr_records_written_total``
    must still count each spooled record once, or they stop agreeing with
    ``ivr_records_spooled_total`` and with the rows (the alert and the dashboard read
    them). Fails today: ivr/records/recorder.py ``Recorder._replay`` adds each chunk
    to the counters as it is written, and a retried segment adds its first chunks again.
    """
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    spool.open()
    spooled = 0
    for number in range(1000):
        for record in synthetic_call(number, events=3):
            spool.append(record)
            spooled += 1
    spool.close()
    assert spooled > 2 * 1000  # more than one replay batch of 1,000 records

    _DiesOnSecondChunk.url = database_url
    _DiesOnSecondChunk.upserts = 0
    dying = True

    async def connect() -> asyncpg.Connection:
        nonlocal dying
        if dying:
            dying = False
            return await asyncpg.connect(database_url, connection_class=_DiesOnSecondChunk)
        return await asyncpg.connect(database_url)

    recorder = Recorder(
        connect=connect,
        spool=Spool(spool_dir),
        key=b"replay-count",
        batch_size=1000,
        retry_initial=0.05,
        retry_max=0.1,
    )
    await recorder.start()

    async def drained() -> bool:
        return not Spool(spool_dir).segments()

    await until(drained, 30, "the spool replayed")
    await recorder.close()
    assert recorder.stats.write_errors == 1  # the cut happened
    calls, events = await count_rows(database_url)
    assert (calls, events) == (1000, 3000)  # the data is right either way
    assert recorder.stats.replayed == spooled
    assert recorder.stats.written == spooled
