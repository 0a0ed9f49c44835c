"""Many random callers at once through the whole stack: every call is recorded, as it went.

Seeded random scripts (keys, silences, barge-in, hangups at any step in all three ways
Asterisk reports them, byte-by-byte replies) run concurrently against the engine; then
each call's row in PostgreSQL must say what the fake Asterisk saw: the keys pressed, the
outcome and the queue, and nothing may be missing or doubled.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import asyncpg
from engine_line import MONDAY_9, MONDAY_21, open_line

from ivr.testing import CallResult, HangupStyle, ScriptedCaller

CALLS = 240
CONCURRENCY = 60
KEYS = "0123456789*#"
FILES = ["bienvenida", "menu-principal", "menu-servicios", "menu-programas", "area-cerrada"]
STYLES: tuple[HangupStyle, ...] = ("after_reply", "before_reply", "exit")


def random_caller(rng: random.Random) -> ScriptedCaller:
    answers = [rng.choice([*KEYS, "-", "1", "2", "2"]) for _ in range(rng.randint(0, 6))]
    press = {rng.choice(FILES): rng.choice(KEYS)} if rng.random() < 0.2 else {}
    hangup = rng.choice([*FILES, "ANSWER", "EXEC", "datetime"]) if rng.random() < 0.3 else None
    return ScriptedCaller(answers=answers, press_during=press, hangup_on=hangup)


async def test_every_random_call_is_recorded_as_it_went(database_url: str, tmp_path: Path) -> None:
    rng = random.Random(20261204)  # reproducible test data
    line = await open_line(database_url, tmp_path)
    results: list[CallResult] = []
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        caller = random_caller(rng)
        fake = line.fake(hangup_style=STYLES[index % 3], chunk=1 if index % 7 == 0 else None)
        async with slots:
            results.append(await fake.call(caller))

    try:
        for batch_start in range(0, CALLS, CALLS // 2):
            # Half the calls in office hours, half at night (closed messages, spoken dates).
            line.clock.now = MONDAY_9 if batch_start == 0 else MONDAY_21
            await asyncio.gather(*(one(i) for i in range(batch_start, batch_start + CALLS // 2)))
    finally:
        await line.finish()

    conn = await asyncpg.connect(database_url)
    try:
        rows = {row["uniqueid"]: row for row in await conn.fetch("SELECT * FROM calls")}
        trails = {
            row["call_id"]: row["n"]
            for row in await conn.fetch("SELECT call_id, count(*) AS n FROM call_events GROUP BY 1")
        }
    finally:
        await conn.close()

    assert len(results) == CALLS
    assert len(rows) == CALLS  # one row per call, none lost, none doubled
    outcomes: set[str] = set()
    for result in results:
        row = rows[result.uniqueid]
        outcomes.add(row["outcome"])
        keys = [heard.value for heard in result.heard if heard.kind == "key"]
        assert (row["path"] or "").split() == [key[:1] for key in keys], result.commands
        assert trails[row["call_id"]] >= 1
        if result.agi_status == "HANGUP":
            assert row["outcome"] in {"abandoned_in_menu", "closed", "invalid", "no_input"}
            if row["outcome"] == "abandoned_in_menu":
                assert row["hangup_step"] is not None
        else:
            assert result.agi_status == "SUCCESS", result.commands
            assert row["outcome"] == result.variables["IVR_OUTCOME"]
            assert row["queue"] == result.variables.get("IVR_QUEUE")
            assert str(row["call_id"]) == result.variables["IVR_CALL_ID"]
    # The seed exercises every way a call can end.
    assert {"routed", "fallback", "closed", "abandoned_in_menu"} <= outcomes, outcomes
    assert sum(result.agi_status == "HANGUP" for result in results) >= CALLS // 10
