"""The AMI link against the fake AMI server, which speaks as the captures show."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog
from panoramisk.ami_protocol import AMIProtocol
from prometheus_client import CollectorRegistry
from waiting import eventually

from ivr.ami.client import AmiClient, AmiConfig, backoff_delay
from ivr.ami.monitor import QueueMonitor
from ivr.ami.outcomes import AmiEvent, header
from ivr.ami.queues import QueueSnapshot
from ivr.ami.testing import FakeAmi, QueueEntry, QueueMember, message
from ivr.metrics import Metrics, QueueGauges

SECRET = "fake-ami-secret"  # noqa: S105 - the fake server's, never a real secret
FAST = {
    "backoff_initial": 0.05,
    "backoff_max": 0.4,
    "refused_initial": 0.1,
    "ping_interval": 0.2,
    "ping_timeout": 0.2,
    "poll_interval": 0.1,
    "login_timeout": 2.0,
}


def config(fake: FakeAmi, **overrides: Any) -> AmiConfig:
    values: dict[str, Any] = {**FAST, **overrides}
    return AmiConfig(host="127.0.0.1", port=fake.port, username="ivr", secret=SECRET, **values)


class Recorded:
    def __init__(self) -> None:
        self.events: list[AmiEvent] = []
        self.links: list[bool] = []
        self.snapshots: list[QueueSnapshot] = []
        self.refused = 0
        self.reconnects = 0


@contextlib.asynccontextmanager
async def running(
    fake: FakeAmi, *, queues: Callable[[], list[str]] = lambda: ["q1"], **overrides: Any
) -> AsyncIterator[tuple[AmiClient, Recorded]]:
    seen = Recorded()

    def refused() -> None:
        seen.refused += 1

    def reconnected() -> None:
        seen.reconnects += 1

    client = AmiClient(
        config(fake, **overrides),
        on_event=seen.events.append,
        on_link=seen.links.append,
        on_snapshot=seen.snapshots.append,
        queues=queues,
        on_login_refused=refused,
        on_reconnect=reconnected,
        draw=lambda: 1.0,  # no jitter: the schedule is exact
    )
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        yield client, seen
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi(secret=SECRET, login_delay=0.05)
    await server.start()
    yield server
    await server.stop()


async def test_logs_in_and_receives_events(fake: FakeAmi) -> None:
    async with running(fake) as (client, seen):
        await fake.wait_logins(1)
        await eventually(lambda: client.connected)
        login = next(a for a in fake.actions if a["action"] == "Login")
        assert (login["username"], login["secret"], login["events"]) == ("ivr", SECRET, "on")
        await fake.emit(message(("Event", "QueueCallerJoin"), ("Queue", "q1"), ("Uniqueid", "u1")))
        await eventually(lambda: any(header(e, "Event") == "QueueCallerJoin" for e in seen.events))
    assert seen.links == [True, False]


async def test_utf8_split_across_reads_arrives_intact(fake: FakeAmi) -> None:
    name = "José Muñoz Peña"
    event = message(("Event", "Newchannel"), ("CallerIDName", name), ("Uniqueid", "u1"))
    split = event.index("ñ".encode()) + 1  # between the two bytes of "ñ"
    async with running(fake) as (_client, seen):
        await fake.wait_logins(1)
        await fake.emit(event, split_at=[split])
        await eventually(lambda: len(seen.events) >= 2)  # FullyBooted, then ours
    assert header(seen.events[-1], "CallerIDName") == name


def test_panoramisk_alone_loses_a_split_character() -> None:
    # Why Utf8Protocol exists: the library decodes each read on its own.
    got: list[Any] = []

    class Factory:
        save_stream = None

        def dispatch(self, message: Any) -> None:
            got.append(message)

    protocol = AMIProtocol()
    protocol.connection_made(None)
    protocol.factory = Factory()
    protocol.encoding = "utf-8"
    event = message(("Event", "Newchannel"), ("CallerIDName", "Muñoz"))
    split = event.index("ñ".encode()) + 1
    protocol.data_received(event[:split])
    protocol.data_received(event[split:])
    assert got[0]["CallerIDName"] == "Muoz"


async def test_wrong_secret_is_logged_once_per_backoff_step(fake: FakeAmi) -> None:
    fake.secret = "the-real-one"  # noqa: S105 - a fake server's
    with structlog.testing.capture_logs() as logs:
        async with running(fake) as (client, seen):
            await asyncio.sleep(1.5)
            assert not client.connected
    refusals = [entry for entry in logs if entry["event"].startswith("AMI login refused")]
    # Delays 0.1, 0.2, 0.4, 0.4...: with Asterisk's 0.05 s penalty, at most 6 tries in
    # 1.5 s; a hot loop would make dozens.
    assert 3 <= fake.failed_logins <= 6
    assert len(refusals) == fake.failed_logins == seen.refused
    assert [r["retry_in"] for r in refusals[:3]] == [0.1, 0.2, 0.4]
    assert all(entry["log_level"] == "error" for entry in refusals)
    assert "the-real-one" not in repr(logs)
    assert SECRET not in repr(logs)


async def test_reconnects_after_a_drop_with_backoff(fake: FakeAmi) -> None:
    async with running(fake) as (client, seen):
        await fake.wait_logins(1)
        await fake.drop()
        await fake.wait_logins(2)
        await eventually(lambda: client.connected)
        assert seen.reconnects == 1
        await fake.stop()  # Asterisk down: retries back off, the client keeps trying
        await eventually(lambda: not client.connected)
        await asyncio.sleep(0.3)
        await fake.start()
        await fake.wait_logins(3)
        await eventually(lambda: client.connected)
    assert seen.links == [True, False, True, False, True, False]
    assert seen.reconnects == 2


async def test_a_silent_link_is_dropped_by_the_keepalive(fake: FakeAmi) -> None:
    async with running(fake) as (client, seen):
        await fake.wait_logins(1)
        fake.answer_pings = False
        await eventually(lambda: seen.links[-1:] == [False])
        fake.answer_pings = True
        await fake.wait_logins(2)
        await eventually(lambda: client.connected)


async def test_queue_status_is_polled_into_gauges(fake: FakeAmi) -> None:
    q = fake.queue("q1")
    q.members = [
        QueueMember("Ana", "PJSIP/ana", status=1),
        QueueMember("Beto", "PJSIP/beto", status=2, in_call=True),
        QueueMember("Cata", "PJSIP/cata", status=1, paused=True),
        QueueMember("Dani", "PJSIP/dani", status=5),  # unavailable: logged out
    ]
    q.entries = [QueueEntry("u1", "PJSIP/trunk-1", wait=42), QueueEntry("u2", "PJSIP/trunk-2", 7)]
    fake.queue("not-ours").entries = [QueueEntry("u3", "PJSIP/trunk-3", wait=999)]
    async with running(fake, queues=lambda: ["q1", "q2"]) as (_client, seen):
        await eventually(lambda: bool(seen.snapshots))
    snapshot = seen.snapshots[0]
    assert snapshot.queues == {
        "q1": QueueGauges(callers=2, longest_wait_seconds=42.0, logged_in=3, available=1, paused=1),
        "q2": QueueGauges(callers=0, longest_wait_seconds=0.0, logged_in=0, available=0, paused=0),
    }
    assert snapshot.waiting == {"u1", "u2", "u3"}


async def test_the_monitor_exports_gauges_only_while_connected(fake: FakeAmi) -> None:
    fake.queue("q1").entries = [QueueEntry("u1", "PJSIP/trunk-1", wait=30)]
    metrics = Metrics(CollectorRegistry())
    records: list[Any] = []

    class Sink:
        def submit(self, record: Any) -> None:
            records.append(record)

    monitor = QueueMonitor(config(fake), sink=Sink(), metrics=metrics, queues=lambda: ["q1"])
    metrics.watch_queues(monitor.gauges)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    value = metrics.registry.get_sample_value
    try:
        await eventually(lambda: value("ivr_queue_longest_wait_seconds", {"queue": "q1"}) == 30.0)
        assert value("ivr_ami_connected") == 1.0
        await fake.stop()
        await eventually(lambda: value("ivr_ami_connected") == 0.0)
        assert value("ivr_queue_callers", {"queue": "q1"}) is None  # stale data is not shown
        await fake.start()
        await eventually(lambda: value("ivr_ami_reconnects_total") == 1.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def test_backoff_is_capped_and_jittered() -> None:
    assert [backoff_delay(n, 1.0, 60.0, lambda: 1.0) for n in range(8)] == [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0,
    ]  # fmt: skip
    assert backoff_delay(3, 1.0, 60.0, lambda: 0.0) == 4.0  # half of 8: never zero
    assert backoff_delay(10_000, 1.0, 60.0, lambda: 1.0) == 60.0


async def test_a_login_with_no_answer_is_counted_and_retried() -> None:
    # A peer that sends the banner and then nothing (a wedged Asterisk, a wrong port).
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    errors: list[int] = []
    client = AmiClient(
        AmiConfig("127.0.0.1", port, "ivr", SECRET, login_timeout=0.1, backoff_initial=0.05),
        on_event=lambda _event: None,
        on_link=lambda _up: None,
        on_snapshot=lambda _snapshot: None,
        queues=list,
        on_login_error=lambda: errors.append(1),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        await eventually(lambda: len(errors) >= 2)
        assert not client.connected
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        server.close()
        await server.wait_closed()


async def test_a_refused_queue_status_exports_no_gauges(fake: FakeAmi) -> None:
    fake.refuse_queue_status = True
    with structlog.testing.capture_logs() as logs:
        async with running(fake) as (_client, seen):
            await eventually(
                lambda: sum(a.get("action") == "QueueStatus" for a in fake.actions) >= 3
            )
    assert seen.snapshots == []  # not zeros, which would pass for empty queues
    refusals = [e for e in logs if e["event"].startswith("AMI refused QueueStatus")]
    assert len(refusals) == 1
    assert refusals[0]["reason"] == "Permission denied"
