"""Benchmark: ``ivr report`` over one semester the size of the program's own (108,199 calls).

Run: .venv/bin/python bench/bench_report.py

Loads 108,199 synthetic calls for July–December 2022, split across the vertientes as the
program document reports them (Programas gubernamentales 64,652, Situaciones emergentes
39,697, Servicios estatales 3,850), into a throw-away embedded PostgreSQL (or
IVR_BENCH_DATABASE_URL), then times each report layout and prints the vertiente table,
whose per-vertiente totals must read as the document's. Asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg

from ivr.menu.loader import load_menu
from ivr.records.embedded import start_embedded
from ivr.records.migrate import migrate
from ivr.records.model import CallRecord, QueueOutcome, Record
from ivr.records.recorder import write_records
from ivr.records.report import DIMENSIONS, Period, render_table, run_report

CONFIG = Path(__file__).resolve().parent.parent / "config"
SEMESTER = {"programas": 64_652, "emergencias": 39_697, "servicios": 3_850}
OUTCOMES = ("routed",) * 7 + ("closed", "abandoned_in_menu", "invalid")
START = datetime(2022, 7, 1, 6, 0, tzinfo=UTC)  # 00:00 local time in Querétaro
SPAN = (datetime(2023, 1, 1, 6, 0, tzinfo=UTC) - START).total_seconds()


def semester(rng: random.Random) -> list[Record]:
    menu = load_menu(CONFIG).menu
    records: list[Record] = []
    number = 0
    for vertiente, count in SEMESTER.items():
        areas = list(menu.vertientes[vertiente].areas)
        for _ in range(count):
            number += 1
            call_id = UUID(int=number)
            outcome = rng.choice(OUTCOMES)
            started = START + timedelta(seconds=rng.uniform(0, SPAN - 1))
            records.append(
                CallRecord(
                    call_id=call_id,
                    rev=1,
                    caller_number=f"442{rng.randrange(60_000):07d}",
                    started_at=started,
                    ended_at=started + timedelta(seconds=rng.uniform(20, 600)),
                    vertiente=vertiente,
                    area=None if outcome == "abandoned_in_menu" else rng.choice(areas),
                    outcome=outcome,
                )
            )
            if outcome == "routed":
                wait = rng.expovariate(1 / 45)
                records.append(QueueOutcome(call_id=call_id, queue_wait_seconds=wait))
    return records


async def run(url: str) -> None:
    menu = load_menu(CONFIG).menu
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await conn.execute("TRUNCATE calls, call_events")
        records = semester(random.Random(2022))  # noqa: S311 - reproducible data
        began = time.perf_counter()
        for start in range(0, len(records), 5_000):
            await write_records(conn, records[start : start + 5_000], b"bench")
        loaded = time.perf_counter() - began
        await conn.execute("ANALYZE calls")
        stored = await conn.fetchval("SELECT count(*) FROM calls")
        print(f"loaded {stored:,} calls ({len(records):,} records) in {loaded:.1f} s")
        period = Period(date(2022, 7, 1), date(2022, 12, 31), menu.line.tz)
        for by in DIMENSIONS:
            timings = []
            for _ in range(5):
                began = time.perf_counter()
                await run_report(conn, menu, period, by)
                timings.append(time.perf_counter() - began)
            timings.sort()
            print(f"ivr report --by {by:<9}: median {timings[2] * 1000:7.1f} ms (5 runs)")
        print()
        print(render_table(await run_report(conn, menu, period, "vertiente")))
    finally:
        await conn.close()


def main() -> None:
    url = os.environ.get("IVR_BENCH_DATABASE_URL")
    if url:
        asyncio.run(run(url))
        return
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as scratch:
        server = start_embedded(Path(scratch) / "pgdata")
        try:
            asyncio.run(run(str(server.get_uri())))
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
