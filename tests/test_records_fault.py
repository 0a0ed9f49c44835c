"""Faults: PostgreSQL stops in the middle of a stream; a recorder restarts with a spool.

Every record must end up in the database exactly once. These tests run a PostgreSQL of
their own (embedded, in a temporary directory) because they stop and start it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pg import PrivateServer
from records_data import synthetic_call, synthetic_stream

from ivr.records.migrate import migrate
from ivr.records.recorder import Recorder, write_records
from ivr.records.spool import Spool

KEY = b"fault-key"
EVENTS = 8
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServer]:
    private = PrivateServer(tmp_path_factory.mktemp("fault-pg") / "pgdata")
    yield private
    private.cleanup()


@pytest.fixture
def fresh(server: PrivateServer) -> PrivateServer:
    async def reset() -> None:
        conn = await asyncpg.connect(server.url)
        try:
            await migrate(conn)
            await conn.execute("TRUNCATE calls, call_events")
        finally:
            await conn.close()

    asyncio.run(reset())
    return server


async def stored(url: str) -> tuple[int, int, int, int]:
    """(calls, events, calls with their last snapshot, distinct event keys)."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM calls) AS calls,"
            " (SELECT count(*) FROM call_events) AS events,"
            " (SELECT count(*) FROM calls WHERE rev = 2 AND outcome IS NOT NULL"
            "   AND started_at IS NOT NULL) AS complete,"
            " (SELECT count(DISTINCT (call_id, seq)) FROM call_events) AS distinct_events"
        )
        assert row is not None
        return (
            int(row["calls"]),
            int(row["events"]),
            int(row["complete"]),
            int(row["distinct_events"]),
        )
    finally:
        await conn.close()


async def test_postgres_stopped_mid_stream_then_restarted_loses_and_doubles_nothing(
    fresh: PrivateServer, tmp_path: Path
) -> None:
    calls = 3000
    url = fresh.url

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(url, timeout=2)

    rec = Recorder(
        connect=connect,
        spool=Spool(tmp_path / "spool", segment_bytes=256 * 1024),
        key=KEY,
        max_queue=5_000,
        batch_size=500,
        retry_initial=0.05,
        retry_max=0.2,
        write_timeout=2.0,
    )
    await rec.start()
    for number in range(calls):
        if number == calls // 3:
            await asyncio.to_thread(fresh.kill)
        if number == 2 * calls // 3:
            await asyncio.to_thread(fresh.restart)
        for record in synthetic_call(number, events=EVENTS):
            rec.submit(record)
        if number % 25 == 0:
            await asyncio.sleep(0.002)  # calls arrive over time, as they would
    await rec.close(grace=60)
    assert rec.stats.write_errors > 0, "the stop should have been noticed"
    assert rec.stats.replayed > 0, "the spool should have been replayed"
    assert rec.stats.rejected == 0
    assert await stored(url) == (calls, calls * EVENTS, calls, calls * EVENTS)
    assert not Spool(tmp_path / "spool").segments()


RECORDER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    import asyncpg
    sys.path.insert(0, sys.argv[1])
    from records_data import synthetic_stream
    from ivr.records.recorder import Recorder
    from ivr.records.spool import Spool

    async def main() -> None:
        async def connect():
            return await asyncpg.connect(sys.argv[3], timeout=1)
        rec = Recorder(connect=connect, spool=Spool(Path(sys.argv[2])), key=b"fault-key",
                       retry_initial=0.05)
        await rec.start()
        for record in synthetic_stream(int(sys.argv[4])):
            rec.submit(record)
            await asyncio.sleep(0)
        await rec.close()
        print(rec.stats.spooled, rec.stats.written)

    asyncio.run(main())
    """
)


async def test_a_restarted_recorder_replays_the_spool_it_finds_exactly_once(
    fresh: PrivateServer, tmp_path: Path
) -> None:
    calls = 2000
    spool_dir = tmp_path / "spool"
    # Some calls reached the database before the outage (as when a process dies
    # between committing a replayed batch and deleting its segment).
    conn = await asyncpg.connect(fresh.url)
    try:
        for number in range(500):
            await write_records(conn, synthetic_call(number, events=EVENTS), KEY)
    finally:
        await conn.close()
    url = fresh.url
    await asyncio.to_thread(fresh.kill)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", RECORDER_SCRIPT, str(TESTS), str(spool_dir), url, str(calls)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    spooled, written = map(int, result.stdout.splitlines()[-1].split())
    assert (spooled, written) == (len(synthetic_stream(calls, events=EVENTS)), 0)
    assert Spool(spool_dir).size_bytes() > 0

    await asyncio.to_thread(fresh.restart)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(fresh.url, timeout=2)

    rec = Recorder(connect=connect, spool=Spool(spool_dir), key=KEY)
    await rec.start()
    await rec.close(grace=60)
    assert rec.stats.replayed == spooled
    assert await stored(fresh.url) == (calls, calls * EVENTS, calls, calls * EVENTS)
    assert not Spool(spool_dir).segments()
