"""Benchmark: call records sustained into the embedded PostgreSQL, and the hot-path cost.

Run: .venv/bin/python bench/bench_records.py [--calls N] [--concurrency C]

Starts a throw-away embedded PostgreSQL in a temporary directory (or uses
IVR_BENCH_DATABASE_URL), then C caller tasks on one event loop play N calls, each
submitting what the engine will: a first snapshot, 8 events, a last snapshot and, for a
third of them, a queue outcome. It prints calls and records per second from the first
submit until every record is committed, and the distribution of the time a caller's
task spends inside ``Recorder.submit``. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg

from ivr.logging import configure_logging
from ivr.records.embedded import start_embedded
from ivr.records.migrate import migrate
from ivr.records.model import CallEvent, CallRecord, QueueOutcome, Record
from ivr.records.recorder import Recorder
from ivr.records.spool import Spool

EVENTS_PER_CALL = 8


def call_records(number: int) -> list[Record]:
    cid = uuid4()
    now = time.time()
    start = datetime.fromtimestamp(now, UTC)
    records: list[Record] = [
        CallRecord(
            call_id=cid,
            rev=1,
            uniqueid=f"{int(now)}.{number}",
            linkedid=f"{int(now)}.{number}",
            line_number="4421015205",
            channel=f"PJSIP/trunk-{number:08x}",
            caller_number=f"442{number % 10_000_000:07d}",
            caller_name="CIUDADANO",
            started_at=start,
            answered_at=start,
        )
    ]
    records.extend(
        CallEvent(cid, seq, start + timedelta(seconds=seq), "step", {"step": f"s{seq}"})
        for seq in range(EVENTS_PER_CALL)
    )
    records.append(
        CallRecord(
            call_id=cid,
            rev=2,
            ended_at=start + timedelta(seconds=30),
            path=("1", "2"),
            vertiente="programas",
            area="reemplacamiento",
            queue="obra-publica",
            outcome="routed",
            privacy_notice_version="2026-01",
            menu_version="2026.12",
        )
    )
    if number % 3 == 0:
        records.append(QueueOutcome(call_id=cid, queue_result="answered", queue_wait_seconds=9.5))
    return records


async def fresh_recorder(url: str, spool_dir: Path, max_queue: int) -> Recorder:
    conn = await asyncpg.connect(url)
    await migrate(conn)
    await conn.execute("TRUNCATE calls, call_events")
    await conn.close()

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(url, timeout=5)

    recorder = Recorder(connect=connect, spool=Spool(spool_dir), key=b"bench", max_queue=max_queue)
    await recorder.start()
    return recorder


async def stored(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        calls = await conn.fetchval("SELECT count(*) FROM calls")
        events = await conn.fetchval("SELECT count(*) FROM call_events")
    finally:
        await conn.close()
    return int(calls), int(events)


def percentiles(samples_ns: list[int]) -> str:
    ordered = sorted(samples_ns)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000

    return (
        f"p50 {pct(0.50):.2f} µs, p99 {pct(0.99):.2f} µs, p99.9 {pct(0.999):.2f} µs, "
        f"max {ordered[-1] / 1000:.1f} µs"
    )


def writer_line(recorder: Recorder) -> str:
    stats = recorder.stats
    return (
        f"  writer: {stats.batches} batches, spooled {stats.spooled}, overflowed "
        f"{stats.overflowed}, rejected {stats.rejected}, write errors {stats.write_errors}"
    )


async def saturate(url: str, spool_dir: Path, calls: int, concurrency: int) -> None:
    """Everything submitted at once: how fast the writer drains it into PostgreSQL."""
    prepared = [call_records(n) for n in range(calls)]
    records = sum(len(r) for r in prepared)
    recorder = await fresh_recorder(url, spool_dir, max_queue=records)

    async def caller(worker: int) -> None:
        for number in range(worker, calls, concurrency):
            for record in prepared[number]:
                recorder.submit(record)
            await asyncio.sleep(0)

    gc.collect()
    began = time.perf_counter()
    await asyncio.gather(*(caller(w) for w in range(concurrency)))
    await recorder.close(grace=600)
    elapsed = time.perf_counter() - began
    stored_calls, stored_events = await stored(url)
    print(f"saturation: {calls:,} calls ({records:,} records) submitted at once")
    print(
        f"  drained into PostgreSQL at {calls / elapsed:,.0f} calls/s, "
        f"{records / elapsed:,.0f} records/s ({elapsed:.2f} s to the last commit)"
    )
    print(writer_line(recorder))
    print(f"  stored {stored_calls:,} calls, {stored_events:,} events")


async def paced(url: str, spool_dir: Path, rate: int, seconds: float, concurrency: int) -> None:
    """Calls arriving at ``rate`` per second, each spreading its records over its life."""
    calls = int(rate * seconds)
    prepared = [call_records(n) for n in range(calls)]
    records = sum(len(r) for r in prepared)
    recorder = await fresh_recorder(url, spool_dir, max_queue=50_000)
    timings: list[int] = []
    clock = time.perf_counter_ns
    deepest = 0
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def caller(worker: int) -> None:
        nonlocal deepest
        for number in range(worker, calls, concurrency):
            due = began + number / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            for record in prepared[number]:
                started = clock()
                recorder.submit(record)
                timings.append(clock() - started)
                await asyncio.sleep(0)  # other calls run between two steps of this one
            deepest = max(deepest, recorder.queue_depth)

    gc.collect()
    await asyncio.gather(*(caller(w) for w in range(concurrency)))
    offered = loop.time() - began
    await recorder.close(grace=600)
    elapsed = loop.time() - began
    stored_calls, stored_events = await stored(url)
    print(
        f"paced: {rate:,} calls/s offered for {seconds:.0f} s ({calls:,} calls, "
        f"{records:,} records, {concurrency} caller tasks)"
    )
    print(
        f"  committed {calls / elapsed:,.0f} calls/s ({offered:.2f} s offering, last commit "
        f"{elapsed - offered:.2f} s after the last submit); deepest queue {deepest:,} records"
    )
    print(f"  Recorder.submit(): {percentiles(timings)}")
    print(writer_line(recorder))
    print(f"  stored {stored_calls:,} calls, {stored_events:,} events")


async def run(url: str, scratch: Path, args: argparse.Namespace) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    await saturate(url, scratch / "spool-a", args.calls, args.concurrency)
    await paced(url, scratch / "spool-b", args.rate, args.seconds, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30_000, help="saturation phase")
    parser.add_argument("--rate", type=int, default=2_000, help="paced phase, calls/s")
    parser.add_argument("--seconds", type=float, default=15, help="paced phase length")
    parser.add_argument("--concurrency", type=int, default=500, help="caller tasks")
    args = parser.parse_args()
    configure_logging("console", "warning")  # the figures only
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as scratch:
        url = os.environ.get("IVR_BENCH_DATABASE_URL")
        server = None
        if not url:
            server = start_embedded(Path(scratch) / "pgdata")
            url = str(server.get_uri())
        try:
            asyncio.run(run(url, Path(scratch), args))
        finally:
            if server is not None:
                server.cleanup()


if __name__ == "__main__":
    main()
