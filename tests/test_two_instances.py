"""Two ``ivr serve`` instances share one PostgreSQL and one Asterisk's AMI.

This is how the line scales (DESIGN.md): Asterisk spreads calls over instances
(``hagi://`` SRV balancing), each with its own data dir and spool, all writing to one
database. Both instances log in to the same AMI and both see every queue event, so
both write the queue outcome of every call, including the calls the other instance
answered. Ids are uuid5 of the channel's Uniqueid and writes merge by revision, so
each call must still be exactly one row, with the menu side from the instance that
served it and the queue side from AMI.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any
from uuid import UUID

from ami_replay import for_call
from service_proc import (
    MONDAY_0900,
    MONDAY_2100,
    Placed,
    Plan,
    place_calls,
    rejected_lines,
    running_service,
    service_env,
    stored_calls,
    until,
)

from ivr.ami.testing import FakeAmi

SECRET = "fake-ami-secret"  # noqa: S105 - the fake server's, never a real secret
CALLS = 120
CONCURRENT = 20

PLANS = (
    Plan(("2", "1"), MONDAY_0900, "routed", "atencion-ciudadana"),
    Plan(("1", "2"), MONDAY_0900, "routed", "reemplacamiento"),
    Plan(("1", "3"), MONDAY_0900, "routed", "refrendo-vehicular"),
    Plan(("1", "4"), MONDAY_0900, "routed", "qrobot"),
    Plan(("3", "1"), MONDAY_0900, "routed", "atencion-medica"),
    Plan(("3", "2"), MONDAY_0900, "routed", "entrega-resultados"),
    Plan(("2", "1"), MONDAY_2100, "closed", "atencion-ciudadana"),
    Plan(("-", "-", "-"), MONDAY_0900, "fallback", "atencion-ciudadana"),
)


async def test_two_instances_sharing_one_database_write_one_row_per_call(
    tmp_path: Path, database_url: str
) -> None:
    ami = FakeAmi(secret=SECRET, login_delay=0.05)
    await ami.start()
    try:
        envs = [
            service_env(
                tmp_path / name,
                database_url,
                IVR_AMI_HOST="127.0.0.1",
                IVR_AMI_PORT=str(ami.port),
                IVR_AMI_USER="ivr",
                IVR_AMI_SECRET=SECRET,
            )
            for name in ("a", "b")
        ]
        async with running_service(envs[0]) as first, running_service(envs[1]) as second:
            instances = (first, second)
            for service in instances:
                await service.wait_for("AMI connected")
            await ami.wait_logins(2, within=30)

            plans = [PLANS[i % len(PLANS)] for i in range(CALLS)]
            # Calls alternate between the instances, as SRV balancing would spread them.
            halves = await asyncio.gather(
                *(
                    place_calls(service.agi_port, plans[n::2], concurrency=CONCURRENT // 2)
                    for n, service in enumerate(instances)
                )
            )
            placed: list[Placed] = [call for half in halves for call in half]
            queued = [call for call in placed if call.plan.outcome in {"routed", "fallback"}]

            # Asterisk queues the routed calls; an operator answers each one. The same
            # events reach both instances.
            for call in queued:
                queue = call.result.variables["IVR_QUEUE"]
                uniqueid = call.result.uniqueid
                for event in for_call(
                    "answered", uniqueid=uniqueid, linkedid=uniqueid, queue=queue
                ):
                    await ami.emit(event)

            per_queue = collections.Counter(call.result.variables["IVR_QUEUE"] for call in queued)

            async def both_observed() -> bool:
                for service in instances:
                    metrics = await service.metrics()
                    for queue, count in per_queue.items():
                        key = f'ivr_queue_calls_total{{queue="{queue}",result="answered"}}'
                        if metrics.get(key) != count:
                            return False
                return True

            await until(both_observed, 30, "both instances counting every answered call")

            async def all_stored() -> bool:
                rows = await stored_calls(database_url)
                return len(rows) == CALLS and all(
                    rows.get(call.call_id, {}).get("queue_result") == "answered" for call in queued
                )

            await until(all_stored, 30, "one complete row per call")
            metrics = [await service.metrics() for service in instances]
            for service in instances:
                assert await service.stop() == 0
    finally:
        await ami.stop()

    for call in placed:
        assert call.result.agi_status == "SUCCESS"
        assert call.result.variables["IVR_OUTCOME"] == call.plan.outcome

    rows = await stored_calls(database_url)
    assert set(rows) == {call.call_id for call in placed}
    assert len(rows) == CALLS
    # Counts per área are what was placed.
    areas = collections.Counter(row["area"] for row in rows.values())
    assert areas == collections.Counter(call.plan.area for call in placed)
    outcomes = collections.Counter(row["outcome"] for row in rows.values())
    assert outcomes == collections.Counter(call.plan.outcome for call in placed)
    assert_merged_rows(placed, queued, rows)
    # Each instance served its half and wrote it; nothing was set aside.
    for index, sample in enumerate(metrics):
        assert sample['ivr_agi_sessions_total{result="completed"}'] == CALLS // 2
        assert sample["ivr_records_rejected_total"] == 0
        assert sample["ivr_records_lost_total"] == 0
        assert rejected_lines(Path(envs[index]["IVR_DATA_DIR"]) / "spool") == []


def assert_merged_rows(
    placed: list[Placed], queued: list[Placed], rows: dict[UUID, dict[str, Any]]
) -> None:
    for call in placed:
        row = rows[call.call_id]
        assert row["uniqueid"] == call.result.uniqueid
        assert row["caller_number"] == "4421234567"  # the engine's snapshot
        assert row["max_seq"] == row["events"] - 1  # the trail, once
        if call in queued:
            # The queue side, merged into the same row, from whichever instance wrote last.
            assert row["queue"] == call.result.variables["IVR_QUEUE"]
            assert (row["queue_result"], row["agent"], row["talk_seconds"]) == (
                "answered",
                "Agente Uno",
                5.0,
            )
            assert row["queue_wait_seconds"] == 1.0
        else:
            assert row["queue_result"] is None
