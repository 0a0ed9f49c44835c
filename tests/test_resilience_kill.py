"""``ivr serve`` killed with SIGKILL mid-load, then started again on the same data dir.

The database is down from the start (a port where nothing listens), so every record
goes to the spool, one fsynced batch per writer cycle. Calls that ended before the
kill, and whose records reached the spool, must be in PostgreSQL exactly once after
the restart replays the spool. Calls in flight at the kill, and calls placed while the
service is down, must look to Asterisk exactly as ``res_agi`` reports them, and
``dialplan/extensions.conf`` must send each of them to the general queue.

What SIGKILL can lose, by design: records the service had submitted but not yet
handed to the spool (its in-memory queue, at most one writer cycle of 50 ms), and
everything a call in flight would still have recorded (its trail and final snapshot
are written when the call ends, and it never ends in that process). The test measures
that window from the spool on disk rather than assuming it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from service_proc import (
    MIX,
    Placed,
    dialplan_branch,
    events_by_call,
    final_snapshots,
    free_port,
    place_calls,
    rejected_lines,
    running_service,
    segments,
    service_env,
    spooled_records,
    stored_calls,
    until,
)

from ivr.records.model import Record, call_id_for
from ivr.testing import CallResult, FakeAsterisk, Heard, ScriptedCaller

ENDED = 70  # calls that end before the kill
IN_FLIGHT = 12  # calls mid-menu at the kill
REFUSED = 10  # calls placed while no service listens


@dataclass
class FirstRun:
    """What happened around the SIGKILL, as Asterisk saw it."""

    ended: list[Placed]  # before the kill
    in_flight: list[CallResult]  # mid-menu at the kill
    refused: list[Placed]  # while nothing listened


async def test_sigkill_mid_load_then_restart_replays_the_spool_and_asterisk_falls_back(
    tmp_path: Path, database_url: str
) -> None:
    data = tmp_path / "data"
    spool = data / "spool"
    nowhere = f"postgresql://ivr@127.0.0.1:{free_port()}/ivr"  # the database is down
    first = service_env(data, nowhere)
    port = int(first["IVR_AGI_PORT"])

    run = await load_then_sigkill(first, spool)

    # What a killed service left on disk: this is all a restart can replay.
    left = spooled_records(spool)
    assert left, "nothing was spooled"
    assert rejected_lines(spool) == []
    assert_asterisk_fell_back(run)

    # Restart on the same data dir, the database up: the spool found is replayed.
    second = service_env(data, database_url, IVR_AGI_PORT=str(port))
    async with running_service(second) as service:
        await service.wait_for("spool found from an earlier run; it will be replayed")

        async def replayed() -> bool:
            metrics = await service.metrics()
            return not segments(spool) and metrics["ivr_records_replayed_total"] == len(left)

        await until(replayed, 30, "the whole spool replayed")
        metrics = await service.metrics()
        assert metrics["ivr_records_written_total"] == len(left)  # each record once
        assert metrics["ivr_records_rejected_total"] == 0
        assert metrics["ivr_records_lost_total"] == 0

        # And it serves again.
        after = await place_calls(port, MIX, concurrency=len(MIX))
        assert [call.result.agi_status for call in after] == [p.agi_status for p in MIX]
        assert await service.stop() == 0

    rows = await stored_calls(database_url)
    started = assert_spool_replayed_exactly_once(run, left, rows)
    assert set(rows) == {c.call_id for c in run.ended} | started | {c.call_id for c in after}
    assert segments(spool) == []
    assert rejected_lines(spool) == []
    # The window, measured: how many in-flight calls had their start snapshot spooled.
    print(  # shown with -s; the final report quotes it
        f"in flight at SIGKILL: {len(run.in_flight)} calls, start spooled for "
        f"{len(started)}; records replayed {len(left)}"
    )


async def load_then_sigkill(env: dict[str, str], spool: Path) -> FirstRun:
    """Calls end (records spooled), more are mid-menu, SIGKILL, then calls are refused."""
    port = int(env["IVR_AGI_PORT"])
    async with running_service(env) as service:
        await service.wait_for(
            "database unreachable at start; records will be spooled until it answers"
        )
        plans = [MIX[i % len(MIX)] for i in range(ENDED)]
        ended = await place_calls(port, plans, concurrency=15)
        ended_ids = {call.call_id for call in ended}

        # The design's promise: a finished call's records are in the spool (written and
        # fsynced by the writer) within a writer cycle. Wait for it on disk.
        async def all_spooled() -> bool:
            finals = final_snapshots(spooled_records(spool))
            return all(i in finals and finals[i].outcome is not None for i in ended_ids)

        await until(all_spooled, 20, "the records of every ended call in the spool")

        # Calls mid-menu (1 s per prompt), then SIGKILL while they wait on the service.
        heard: list[list[Heard]] = [[] for _ in range(IN_FLIGHT)]
        slow = [
            FakeAsterisk("127.0.0.1", port, play_seconds=1.0, report_failures=True,
                         on_heard=heard[n].append)
            for n in range(IN_FLIGHT)
        ]  # fmt: skip
        tasks = [
            asyncio.create_task(fake.call(ScriptedCaller(["2", "1"]), query="at=2026-12-07T09:00"))
            for fake in slow
        ]

        async def all_in_menu() -> bool:
            return all(heard)

        await until(all_in_menu, 20, "every slow call hearing its first prompt")
        await asyncio.to_thread(service.kill)
        assert service.proc.returncode == -9
        in_flight: list[CallResult] = list(await asyncio.gather(*tasks))

        # While nothing listens: connection refused, as Asterisk would meet it.
        refused = await place_calls(port, plans[:REFUSED], concurrency=REFUSED)
    return FirstRun(ended, in_flight, refused)


def assert_asterisk_fell_back(run: FirstRun) -> None:
    """Ended calls: as planned. In flight: res_agi read end-of-file ("AGI Script ...
    completed"): AGISTATUS=SUCCESS without IVR_OUTCOME, so the route's last line sends
    the caller to the general queue. Refused: launch_netscript failed, AGISTATUS=FAILURE
    and no IVR_* at all, caught by the FAILURE line."""
    for call in run.ended:
        assert call.result.agi_status == call.plan.agi_status
    for result in run.in_flight:
        assert result.connected
        assert result.agi_status == "SUCCESS"
        assert "IVR_OUTCOME" not in result.variables
        assert dialplan_branch(result) == ("ivr-down", "route,14 Goto(ivr-down,1)")
    for call in run.refused:
        assert not call.result.connected
        assert call.result.agi_status == "FAILURE"
        assert not [name for name in call.result.variables if name.startswith("IVR_")]
        assert dialplan_branch(call.result) == (
            "ivr-down",
            'route,4 GotoIf($["${AGISTATUS}" = "FAILURE"]?ivr-down,1)',
        )


def assert_spool_replayed_exactly_once(
    run: FirstRun, left: list[Record], rows: dict[UUID, dict[str, Any]]
) -> set[UUID]:
    """Every ended call as spooled; in-flight calls as far as they were spooled.
    Returns the in-flight calls whose start snapshot was on disk."""
    left_final = final_snapshots(left)
    left_events = events_by_call(left)
    for call in run.ended:
        row = rows[call.call_id]
        assert row["outcome"] == call.plan.outcome
        assert row["ended_at"] is not None
        assert row["rev"] == left_final[call.call_id].rev
        # The trail as spooled, every step once.
        assert row["events"] == len(left_events[call.call_id])
        assert row["max_seq"] == row["events"] - 1
    in_flight = {call_id_for(result.uniqueid) for result in run.in_flight}
    started = {call_id for call_id in in_flight if call_id in left_final}
    # In flight: the start snapshot if it was spooled, and nothing made up after it.
    for call_id in in_flight:
        if call_id in started:
            assert rows[call_id]["outcome"] is None
            assert rows[call_id]["ended_at"] is None
        else:
            assert call_id not in rows
    # Refused calls never reached the IVR: no row from it (AMI would add one).
    assert not {call.call_id for call in run.refused} & set(rows)
    return started
