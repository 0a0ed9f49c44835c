"""The AMI server dropped and restarted under load: calls keep flowing, each recorded once.

The whole line runs as in production (engine, FastAGI server, write-behind recorder into
the test's PostgreSQL, queue monitor on the AMI link); only Asterisk is faked, by
:class:`ivr.testing.FakeAsterisk` for the calls and :class:`ivr.ami.testing.FakeAmi` for
the manager interface. 200 calls are placed, 50 at a time, in four waves: during the
first and third the AMI connections are reset mid-wave; during the second and fourth
the AMI server is down altogether, then it comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from engine_line import Line, open_line
from prometheus_client import CollectorRegistry
from waiting import eventually

from ivr.ami.client import AmiConfig
from ivr.ami.monitor import QueueMonitor
from ivr.ami.testing import FakeAmi
from ivr.metrics import Metrics
from ivr.testing import CallResult, ScriptedCaller

SECRET = "fake-ami-secret"  # noqa: S105 - the fake server's, never a real secret
QUEUE = "atencion-ciudadana"  # where "2 1" goes
WAVE = 50  # calls per wave, all at once
HANG_GUARD = 60.0  # seconds: only a hang waits this long


@dataclass
class Stack:
    line: Line
    ami: FakeAmi
    monitor: QueueMonitor
    metrics: Metrics

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.metrics.registry.get_sample_value(name, labels or {}) or 0.0

    async def wave(self) -> list[CallResult]:
        """``WAVE`` calls at once, each pressing "2 1" (routed to ``QUEUE``)."""
        fake = self.line.fake(play_seconds=0.01)
        async with asyncio.timeout(HANG_GUARD):
            return list(
                await asyncio.gather(
                    *(fake.call(ScriptedCaller(answers=["2", "1"])) for _ in range(WAVE))
                )
            )

    async def relogin(self, logins: int) -> None:
        await self.ami.wait_logins(logins, within=HANG_GUARD)
        await eventually(lambda: self.monitor.connected, within=HANG_GUARD)


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    ami = FakeAmi(secret=SECRET, login_delay=0.01)
    await ami.start()
    metrics = Metrics(CollectorRegistry())
    holder: list[QueueMonitor] = []

    def routed(uniqueid: str, call_id: UUID, queue: str) -> None:
        holder[0].routed(uniqueid, call_id, queue)

    line = await open_line(database_url, tmp_path, metrics=metrics, on_routed=routed)
    menu = line.store.current.loaded.menu
    config = AmiConfig(
        host="127.0.0.1", port=ami.port, username="ivr", secret=SECRET,
        backoff_initial=0.05, backoff_max=0.2, poll_interval=0.05,
    )  # fmt: skip
    monitor = QueueMonitor(
        config, sink=line.recorder, metrics=metrics, queues=lambda: list(menu.queues)
    )
    holder.append(monitor)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    try:
        yield Stack(line, ami, monitor, metrics)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await ami.stop()
        await line.finish()


async def test_calls_flow_and_are_recorded_once_while_ami_drops_and_restarts(
    stack: Stack,
) -> None:
    """Every one of the 200 calls is routed and leaves exactly one row in PostgreSQL,
    whatever the AMI link was doing; the client reconnects after each of the four
    disruptions (``ivr_ami_reconnects_total`` is 4); the 100 calls routed while AMI was
    down have their queue result recorded as unknown (never guessed) and counted in
    ``ivr_ami_unobserved_calls_total``; nothing hangs."""
    await stack.relogin(1)
    results: list[CallResult] = []
    down_waves: list[list[CallResult]] = []
    logins = 1
    for wave in range(4):
        if wave % 2 == 0:  # connections reset while the calls are in flight
            placing = asyncio.create_task(stack.wave())
            await asyncio.sleep(0.02)
            await stack.ami.drop()
            results += await placing
        else:  # the AMI server is down for the whole wave
            await stack.ami.stop()
            await eventually(lambda: not stack.monitor.connected)
            calls = await stack.wave()
            assert not stack.monitor.connected
            down_waves.append(calls)
            results += calls
            await stack.ami.start()
        logins += 1
        await stack.relogin(logins)

    assert len(results) == 200
    assert [r.variables.get("IVR_OUTCOME") for r in results] == ["routed"] * 200
    assert {r.variables.get("IVR_QUEUE") for r in results} == {QUEUE}
    assert stack.value("ivr_ami_reconnects_total") == 4.0
    assert stack.value("ivr_ami_connected") == 1.0
    routed = {"vertiente": "servicios", "area": QUEUE, "outcome": "routed"}
    assert stack.value("ivr_calls_total", routed) == 200.0
    # After the last reconnect, QueueStatus shows nobody waiting: every stay that could
    # not be observed is settled as unknown.
    await eventually(lambda: stack.value("ivr_ami_unobserved_calls_total") >= 100.0)

    await stack.line.finish()
    rows = await _rows(stack.line.url)
    placed = {r.uniqueid for r in results}
    assert len(placed) == 200
    assert sorted(rows) == sorted(placed)  # one row per call: none lost, none doubled
    assert {row[0] for row in rows.values()} == {"routed"}
    assert {row[1] for row in rows.values()} <= {None, "unknown"}  # never a guess
    for calls in down_waves:
        assert {rows[r.uniqueid][1] for r in calls} == {"unknown"}


async def _rows(url: str) -> dict[str, tuple[str | None, str | None]]:
    """uniqueid -> (outcome, queue_result), after checking no uniqueid has two rows."""
    conn = await asyncpg.connect(url)
    try:
        records = await conn.fetch("SELECT uniqueid, outcome, queue_result FROM calls")
    finally:
        await conn.close()
    rows = {r["uniqueid"]: (r["outcome"], r["queue_result"]) for r in records}
    assert len(rows) == len(records)
    return rows
