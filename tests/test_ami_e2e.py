"""AMI end to end: calls over FastAGI, queue events over AMI, one row per call in PostgreSQL.

The fake Asterisk places the call through the real engine; the fake AMI then sends the
queue events a real Asterisk 22 sent for such a call (the captures, with this call's
ids); the real recorder writes both sides into the test's PostgreSQL. ``curl`` scrapes
the real metrics endpoint meanwhile.
"""

from __future__ import annotations

import asyncio
import shutil
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from ami_replay import for_call
from engine_line import Line, open_line
from prometheus_client import CollectorRegistry
from waiting import eventually

from ivr.ami.client import AmiConfig
from ivr.ami.monitor import QueueMonitor
from ivr.ami.testing import FakeAmi
from ivr.health import HealthServer
from ivr.metrics import Metrics
from ivr.testing import CallResult, ScriptedCaller

SECRET = "fake-ami-secret"  # noqa: S105 - the fake server's, never a real secret
QUEUE = "atencion-ciudadana"  # where "2 1" goes


@dataclass
class Stack:
    line: Line
    ami: FakeAmi
    monitor: QueueMonitor
    metrics: Metrics
    health: HealthServer

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.metrics.registry.get_sample_value(name, labels or {}) or 0.0

    async def scrape(self) -> str:
        """GET /metrics as an operator would: with curl when the machine has it (in a
        subprocess, since the endpoint runs on this test's event loop)."""
        url = f"http://127.0.0.1:{self.health.bound_port}/metrics"
        if shutil.which("curl"):
            curl = await asyncio.create_subprocess_exec(
                "curl", "-fsS", url, stdout=asyncio.subprocess.PIPE
            )
            out, _ = await asyncio.wait_for(curl.communicate(), 10)
            assert curl.returncode == 0
            return out.decode()
        return await asyncio.to_thread(_urlopen, url)

    async def call(self, answers: list[str], **options: Any) -> CallResult:
        return await self.line.fake().call(ScriptedCaller(answers=answers), **options)

    async def replay(self, kind: str, result: CallResult, *, until: str | None = None) -> None:
        """Send the captured ``kind`` events for this call (up to the event ``until``)."""
        for event in for_call(
            kind, uniqueid=result.uniqueid, linkedid=result.uniqueid, queue=QUEUE
        ):
            await self.ami.emit(event)
            if until is not None and event.startswith(f"Event: {until}\r\n".encode()):
                return


def _urlopen(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - test URL
        return str(response.read().decode())


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    ami = FakeAmi(secret=SECRET, login_delay=0.05)
    await ami.start()
    metrics = Metrics(CollectorRegistry())
    holder: list[QueueMonitor] = []

    def routed(uniqueid: str, call_id: UUID, queue: str) -> None:
        holder[0].routed(uniqueid, call_id, queue)  # the monitor is built after the line

    line = await open_line(database_url, tmp_path, metrics=metrics, on_routed=routed)
    menu = line.store.current.loaded.menu
    metrics.prepare(
        [(v, a) for v, vertiente in menu.vertientes.items() for a in vertiente.areas], menu.queues
    )
    config = AmiConfig(
        host="127.0.0.1", port=ami.port, username="ivr", secret=SECRET,
        backoff_initial=0.05, backoff_max=0.2, poll_interval=0.1,
    )  # fmt: skip
    monitor = QueueMonitor(
        config, sink=line.recorder, metrics=metrics, queues=lambda: list(menu.queues)
    )
    holder.append(monitor)
    metrics.watch_queues(monitor.gauges)
    health = HealthServer(
        metrics.registry, lambda: {"records": line.recorder.ready}, host="127.0.0.1", port=0
    )
    await health.start()
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    await ami.wait_logins(1)
    await eventually(lambda: monitor.connected)
    try:
        yield Stack(line, ami, monitor, metrics, health)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await health.close()
        await ami.stop()
        await line.finish()


async def test_an_answered_call_gets_wait_agent_and_talk_time(stack: Stack) -> None:
    before = await stack.scrape()
    routed = {"vertiente": "servicios", "area": QUEUE, "outcome": "routed"}
    answered = {"queue": QUEUE, "result": "answered"}
    assert stack.value("ivr_calls_total", routed) == 0.0

    result = await stack.call(["2", "1"])
    assert result.variables["IVR_QUEUE"] == QUEUE
    await stack.replay("answered", result)
    await eventually(lambda: stack.value("ivr_queue_calls_total", answered) == 1.0)
    await eventually(lambda: stack.monitor.tracker.followed == 0)  # the Hangup came

    after = await stack.scrape()
    line = 'ivr_calls_total{area="atencion-ciudadana",outcome="routed",vertiente="servicios"}'
    assert f"{line} 0.0" in before
    assert f"{line} 1.0" in after
    queue_line = 'ivr_queue_calls_total{queue="atencion-ciudadana",result="answered"}'
    assert f"{queue_line} 0.0" in before
    assert f"{queue_line} 1.0" in after
    assert "ivr_agi_command_seconds_count 0.0" in before
    assert "ivr_agi_command_seconds_count 0.0" not in after
    assert "ivr_ami_connected 1.0" in after

    row = await stack.line.call_row(result.uniqueid)
    assert row["outcome"] == "routed"
    assert row["queue_result"] == "answered"
    assert row["queue_wait_seconds"] == 1.0
    assert row["agent"] == "Agente Uno"
    assert row["talk_seconds"] == 5.0
    assert row["hangup_cause"] == "16 Normal Clearing"
    assert row["caller_number"] == "4421234567"  # the engine's snapshot wins over rev 0


async def test_an_abandoned_call_is_marked_abandoned_with_its_wait(stack: Stack) -> None:
    result = await stack.call(["2", "1"])
    await stack.replay("abandoned", result)
    await eventually(lambda: stack.monitor.tracker.followed == 0)
    row = await stack.line.call_row(result.uniqueid)
    assert (row["outcome"], row["queue_result"], row["queue_wait_seconds"]) == (
        "routed",
        "abandoned",
        3.0,
    )
    assert row["agent"] is None
    assert row["talk_seconds"] is None


async def test_ami_dropped_mid_call_reconnects_and_marks_the_gap_unknown(stack: Stack) -> None:
    result = await stack.call(["2", "1"])
    await stack.replay("abandoned", result, until="QueueCallerJoin")
    await eventually(lambda: stack.monitor.tracker.followed == 1)
    await stack.ami.stop()  # Asterisk's AMI goes away; the caller gives up meanwhile
    await eventually(lambda: not stack.monitor.connected)
    assert stack.value("ivr_ami_connected") == 0.0

    # Calls keep flowing while AMI is down.
    during = await stack.call(["2", "1"])
    assert during.variables["IVR_OUTCOME"] == "routed"

    await stack.ami.start()
    await eventually(lambda: stack.value("ivr_ami_reconnects_total") == 1.0)
    await eventually(lambda: stack.value("ivr_ami_unobserved_calls_total") == 2.0)
    first = await stack.line.call_row(result.uniqueid)
    assert first["queue_result"] == "unknown"
    assert first["queue_wait_seconds"] is None  # not guessed
    conn_row = await _row(stack, during.uniqueid)
    assert conn_row["queue_result"] == "unknown"


async def test_queue_events_before_the_ivr_record_merge_into_one_row(stack: Stack) -> None:
    fake = stack.line.fake()
    env = fake.environment(b"4421234567", b"Ciudadano Prueba")
    uniqueid = "asterisk-lab-1796499999.77"
    env = [(k, uniqueid.encode() if k == "uniqueid" else v) for k, v in env]
    # The AMI side writes first (events can overtake the engine's write-behind).
    for event in for_call("answered", uniqueid=uniqueid, linkedid=uniqueid, queue=QUEUE):
        await stack.ami.emit(event)
    await eventually(lambda: stack.monitor.tracker.followed == 0)
    await asyncio.sleep(0.2)  # let the recorder write the AMI side first
    result = await fake.call(ScriptedCaller(answers=["2", "1"]), env=env)
    assert result.uniqueid == uniqueid
    row = await stack.line.call_row(uniqueid)
    assert (row["outcome"], row["queue"], row["queue_result"], row["talk_seconds"]) == (
        "routed",
        QUEUE,
        "answered",
        5.0,
    )
    assert row["caller_name"] == "Ciudadano Prueba"


async def test_a_call_the_ivr_never_saw_still_gets_a_row(stack: Stack) -> None:
    # AGISTATUS=FAILURE: the dialplan queued the caller without the IVR.
    uniqueid = "asterisk-lab-1796499999.88"
    for event in for_call("abandoned-empty", uniqueid=uniqueid, linkedid=uniqueid, queue=QUEUE):
        await stack.ami.emit(event)
    await eventually(
        lambda: stack.value("ivr_queue_calls_total", {"queue": QUEUE, "result": "abandoned"}) == 1.0
    )
    row = await stack.line.call_row(uniqueid)
    assert (row["outcome"], row["queue"], row["queue_result"], row["queue_wait_seconds"]) == (
        None,
        QUEUE,
        "abandoned",
        2.0,
    )


async def _row(stack: Stack, uniqueid: str) -> dict[str, Any]:
    return await stack.line.call_row(uniqueid)
