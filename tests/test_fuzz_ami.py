"""Byte-level fuzzing of the AMI side: the protocol under panoramisk, the tracker, QueueStatus.

What it proves:

* :class:`~ivr.ami.client.Utf8Protocol` never lets an exception out of
  ``data_received``, whatever bytes arrive and however they are cut (panoramisk alone
  raises on a repeated ``Event`` header); events cut anywhere, UTF-8 included, come out
  as from one read; memory stays bounded (a message without its blank line is cut off
  at ``MAX_MESSAGE``, an endless answer to an action at ``MAX_PENDING``) and the link is
  dropped, and a real :class:`~ivr.ami.client.AmiClient` reconnects and reads on;
* :meth:`QueueTracker.on_event <ivr.ami.outcomes.QueueTracker.on_event>` never raises
  on arbitrary event dicts and the number of callers it follows stays bounded;
* :func:`~ivr.ami.queues.parse_queue_status` never raises on arbitrary messages and
  its gauges stay consistent.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeVar
from unittest import mock
from uuid import UUID, uuid4

import pytest
from ami_replay import captured_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from prometheus_client import CollectorRegistry
from waiting import eventually

from ivr.ami import client as ami_client
from ivr.ami.client import MAX_MESSAGE, AmiConfig, Utf8Protocol, _Manager
from ivr.ami.monitor import QueueMonitor
from ivr.ami.outcomes import RESULTS, AmiEvent, Observation, QueueTracker, header
from ivr.ami.queues import parse_queue_status
from ivr.ami.testing import BANNER, FULLY_BOOTED, FakeAmi, message
from ivr.metrics import Metrics
from ivr.records.model import CallRecord, QueueOutcome

T = TypeVar("T")
FUZZ: Final = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SECRET: Final = "fake-ami-secret"  # noqa: S105 - the fake server's, never a real secret
QUEUES: Final = ("q1", "q2")
UNIQUEIDS: Final = ("u1", "u2", "u3", "u4", "u5", "u6")
CALL_ID_VARIABLE: Final = f"IVR_CALL_ID={uuid4()}"


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make()

    return asyncio.run(main())


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


class Transport(asyncio.Transport):
    """Records what the protocol writes and whether it dropped the link."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.aborted = False
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.aborted or self.closed


class Wired:
    """A Utf8Protocol wired to a real (supervised) Manager, as AmiClient wires it."""

    def __init__(self) -> None:
        self.events: list[Message] = []
        self.lost = 0
        self.manager = _Manager(self._lost, loop=asyncio.get_running_loop(), host="x", port=0)
        self.manager.register_event("*", lambda _m, event: self.events.append(event))
        self.transport = Transport()
        self.protocol = Utf8Protocol()
        self.protocol.connection_made(self.transport)
        self.protocol.factory = self.manager
        self.protocol.log = self.manager.log
        self.manager.protocol = self.protocol
        self.manager.responses = self.protocol.responses

    def _lost(self) -> None:
        self.lost += 1

    def feed(self, pieces: Iterable[bytes]) -> None:
        for piece in pieces:
            self.protocol.data_received(piece)
            if self.transport.aborted:
                assert self.protocol.broken
            else:  # nothing unread beyond one message and one read
                assert not self.protocol.queue or len(self.protocol.queue[-1]) <= MAX_MESSAGE

    def pending(self, action: str, action_id: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.manager.send_action(
            {"Action": action, "ActionID": action_id}
        )
        return future


# --- what Asterisk sends, and worse ---------------------------------------------------

CAPTURED: Final = [
    event
    for name in ("ami-queue-answered", "ami-queue-abandoned", "ami-ringnoanswer")
    for event in captured_events(name)
]
HEADER_NAMES: Final = st.sampled_from(
    ["Event", "Response", "ActionID", "CommandID", "Message", "EventList", "Queue", "Uniqueid",
     "ChanVariable", "HoldTime", "TalkTime", "Cause", "Cause-txt", "Wait", "Status", "Paused",
     "Linkedid", "Output", "SubEvent"]
)  # fmt: skip
HEADER_VALUES: Final = st.one_of(
    st.sampled_from(
        ["Shutdown", "FullyBooted", "QueueCallerJoin", "Hangup", "AgentConnect", "Success",
         "Follows", "Error", "start", "Complete", "poll-1", "q1", "u1", "nan", "-1", "1e400"]
    ),
    st.text(max_size=12),
)  # fmt: skip
RAW_HEADER: Final = st.builds(
    lambda k, v: k.encode() + b": " + v.encode("utf-8", "surrogatepass") + b"\r\n",
    HEADER_NAMES,
    HEADER_VALUES.filter(lambda v: not any(0xD800 <= ord(c) <= 0xDFFF for c in v)),
)
MESSAGES: Final = st.lists(RAW_HEADER, min_size=1, max_size=6).map(lambda h: b"".join(h) + b"\r\n")
NASTY: Final = st.sampled_from(
    [
        b"Event: A\r\nEvent: B\r\n\r\n",  # panoramisk: list.lower() -> AttributeError
        b"Response: Success\r\nActionID: poll-1\r\nActionID: poll-1\r\n\r\n",  # unhashable
        b"Response: Success\r\nActionID: poll-1\r\nMessage: a\r\nMessage: b\r\n\r\n",
        b"Event: QueueStatusComplete\r\nEvent: X\r\nActionID: poll-1\r\n\r\n",
        b"Event: Shutdown\r\nShutdown: Cleanly\r\n\r\n",
        b"Response: Follows\r\nActionID: poll-1\r\n--END COMMAND--\r\n\r\n",
        b"\xff\xfe\xc3\r\n\r\n", b"\r\n\r\n\r\n", b"Event:\r\n\r\n", b": \r\n\r\n",
        BANNER, FULLY_BOOTED,
    ]
)  # fmt: skip
STREAMS: Final = st.lists(
    st.one_of(st.sampled_from(CAPTURED), MESSAGES, NASTY, st.binary(max_size=30)), max_size=25
).map(b"".join)


@FUZZ
@given(STREAMS, st.lists(st.integers(1, 2000), max_size=12), st.booleans())
def test_arbitrary_bytes_never_raise_out_of_data_received(
    stream: bytes, cuts: list[int], pending: bool
) -> None:
    """Anything, cut anywhere, with or without a QueueStatus waiting for its answer:
    ``data_received`` returns normally every time, what is left unread is never more
    than one message, and a pending answer resolves or keeps waiting (never breaks)."""

    async def attempt() -> None:
        wired = Wired()
        future = wired.pending("QueueStatus", "poll-1") if pending else None
        wired.feed(split(stream, cuts))
        if future is not None and future.done() and not future.cancelled():
            future.result()  # a result, not an exception
        for event in wired.events:
            assert isinstance(event, Message)

    run(attempt)


@FUZZ
@given(st.lists(st.sampled_from(CAPTURED), min_size=1, max_size=8), st.data())
def test_events_cut_anywhere_arrive_as_from_one_read(
    events: list[bytes], data: st.DataObject
) -> None:
    """Captured events, with caller names in non-ASCII UTF-8, cut at arbitrary bytes
    (inside a character too): the events dispatched equal those of a single read."""
    name = data.draw(
        st.text(min_size=1, max_size=10).filter(lambda t: "\r" not in t and "\n" not in t)
    )
    stream = b"".join(e + message(("Event", "Newchannel"), ("CallerIDName", name)) for e in events)
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=30))

    async def dispatched(pieces: list[bytes]) -> list[list[tuple[str, Any]]]:
        wired = Wired()
        wired.feed(pieces)
        return [sorted(event.items()) for event in wired.events]

    whole = run(lambda: dispatched([stream]))
    assert len(whole) == 2 * len(events)
    assert run(lambda: dispatched(split(stream, cuts))) == whole


def test_panoramisk_alone_raises_on_a_repeated_event_header() -> None:
    """Why Utf8Protocol catches: the library's own protocol raises from
    ``data_received`` on ``Event`` given twice, and would take the link down."""

    class Factory:
        save_stream = None

        def dispatch(self, message: Any) -> None:
            del message

    protocol = AMIProtocol()
    protocol.connection_made(None)
    protocol.factory = Factory()
    with pytest.raises(AttributeError):
        protocol.data_received(b"Event: A\r\nEvent: B\r\n\r\n")


async def test_a_malformed_message_is_dropped_and_the_next_one_read() -> None:
    """A repeated ``Event`` header, a doubled ``ActionID``: each such message is dropped
    and logged, the link stays up, and the messages around it are delivered; a pending
    action still gets its answer."""
    wired = Wired()
    future = wired.pending("Ping", "ping-1")
    wired.feed(
        [
            b"Event: A\r\nEvent: B\r\n\r\n",
            b"Response: Success\r\nActionID: ping-1\r\nActionID: x\r\n\r\n",
            message(("Event", "Newchannel"), ("Uniqueid", "u1")),
            message(("Response", "Success"), ("ActionID", "ping-1"), ("Ping", "Pong")),
        ]
    )
    assert not wired.transport.aborted
    assert [event["Uniqueid"] for event in wired.events] == ["u1"]
    assert (await asyncio.wait_for(future, 1))["Ping"] == "Pong"


async def test_megabytes_without_a_blank_line_drop_the_link_with_bounded_memory() -> None:
    """A peer that never ends a message: the link is dropped once it passes
    ``MAX_MESSAGE`` characters; what arrives after that is ignored. The protocol's
    memory peaks at a few times the cap, never at what the peer sent (16 MiB)."""
    wired = Wired()
    chunk = b"Event: x\r\nData: " + b"a" * 65536  # made before tracing starts
    tracemalloc.start()
    try:
        for _ in range(256):
            wired.protocol.data_received(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wired.transport.aborted
    assert wired.protocol.broken
    assert not wired.protocol.queue
    assert peak < 6 * MAX_MESSAGE, f"{peak} bytes traced"


async def test_an_endless_answer_to_an_action_drops_the_link() -> None:
    """A peer that answers a QueueStatus with an ``EventList`` that never completes:
    the messages held for it are capped (``MAX_PENDING``, lowered here) and the link is
    dropped; an answer that does complete resets the count."""
    with mock.patch.object(ami_client, "MAX_PENDING", 64 * 1024):
        wired = Wired()
        done = wired.pending("QueueStatus", "poll-ok")
        start = message(("Response", "Success"), ("ActionID", "poll-ok"), ("EventList", "start"))
        entry = message(("Event", "QueueEntry"), ("Queue", "q1"), ("ActionID", "poll-ok"))
        end = message(("Event", "QueueStatusComplete"), ("ActionID", "poll-ok"))
        wired.feed([start, entry * 500, end])  # ~30 kB: under the cap, completes
        assert len(await asyncio.wait_for(done, 1)) == 502
        assert not wired.transport.aborted

        wired.pending("QueueStatus", "poll-2")
        start = message(("Response", "Success"), ("ActionID", "poll-2"), ("EventList", "start"))
        entry = message(("Event", "QueueEntry"), ("Queue", "q1"), ("ActionID", "poll-2"))
        wired.feed([start])
        for _ in range(2000):
            wired.feed([entry])
            if wired.transport.aborted:
                break
        assert wired.transport.aborted
        assert wired.protocol.broken


async def test_a_real_client_survives_hostile_bytes_and_reconnects() -> None:
    """Over TCP against the fake AMI: malformed messages and invalid UTF-8 leave the
    link up; 2 MiB without a blank line makes the client drop it, count a reconnect
    (``ivr_ami_reconnects_total``), log in again, and follow the next caller."""
    ami = FakeAmi(secret=SECRET, login_delay=0.01)
    await ami.start()
    metrics = Metrics(CollectorRegistry())
    recorded: list[object] = []

    class Sink:
        def submit(self, record: object) -> None:
            recorded.append(record)

    config = AmiConfig(
        host="127.0.0.1", port=ami.port, username="ivr", secret=SECRET,
        backoff_initial=0.05, backoff_max=0.2, poll_interval=0.1,
    )  # fmt: skip
    monitor = QueueMonitor(config, sink=Sink(), metrics=metrics, queues=lambda: list(QUEUES))
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))

    try:
        await ami.wait_logins(1)
        await eventually(lambda: monitor.connected)
        await ami.emit(
            b"Event: A\r\nEvent: B\r\n\r\n\xff\xfe\r\n\r\nEvent: Shutdown\r\nEvent: x\r\n\r\n"
        )
        await ami.emit(message(("Event", "QueueCallerJoin"), ("Queue", "q1"), ("Uniqueid", "u1")))
        await eventually(lambda: monitor.tracker.followed == 1)
        assert ami.logins == 1  # the link stayed up

        await ami.emit(b"Event: Big\r\nData: " + b"z" * (2 * MAX_MESSAGE))
        await ami.wait_logins(2)
        await eventually(lambda: monitor.connected)
        assert metrics.registry.get_sample_value("ivr_ami_reconnects_total") == 1.0
        await ami.emit(message(("Event", "QueueCallerJoin"), ("Queue", "q2"), ("Uniqueid", "u2")))
        await eventually(lambda: monitor.tracker.followed == 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await ami.stop()
    assert metrics.registry.get_sample_value("ivr_ami_reconnects_total") == 1.0


# --- the queue tracker --------------------------------------------------------------

EVENT_NAMES: Final = st.sampled_from(
    ["QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentConnect",
     "AgentComplete", "HangupRequest", "SoftHangupRequest", "Hangup", "AgentCalled",
     "Newchannel", "QueueMemberStatus", ""]
)  # fmt: skip
FIELD: Final = st.one_of(
    st.sampled_from(["", "0", "3", "-2", "nan", "inf", "1e400", "1_0", "x", CALL_ID_VARIABLE,
                     "IVR_CALL_ID=not-a-uuid", *QUEUES, *UNIQUEIDS]),
    st.text(max_size=8),
)  # fmt: skip
VALUES: Final = st.one_of(FIELD, st.lists(FIELD, max_size=3))


@st.composite
def ami_events(draw: st.DrawFn) -> dict[str, str | list[str]]:
    event: dict[str, str | list[str]] = {
        "Event": draw(st.one_of(EVENT_NAMES, st.lists(EVENT_NAMES, max_size=2))),
        "Uniqueid": draw(st.one_of(st.sampled_from(UNIQUEIDS), VALUES)),
        "Queue": draw(st.one_of(st.sampled_from(QUEUES), VALUES)),
    }
    optional = ["HoldTime", "TalkTime", "ChanVariable", "Cause", "Cause-txt", "Linkedid",
                "MemberName", "Interface"]  # fmt: skip
    for name in draw(st.lists(st.sampled_from(optional), max_size=5)):
        event[name] = draw(VALUES)
    return event


ACTIONS: Final = st.lists(
    st.one_of(
        ami_events().map(lambda e: ("event", e)),
        st.tuples(st.just("routed"), st.sampled_from(UNIQUEIDS)),
        st.just(("down", None)),
        st.just(("up", None)),
        st.tuples(st.just("resync"), st.lists(st.sampled_from(UNIQUEIDS), max_size=3)),
        st.just(("tick", None)),
    ),
    max_size=60,
)


@FUZZ
@given(ACTIONS, st.integers(2, 8))
def test_the_tracker_never_raises_and_follows_a_bounded_number_of_callers(
    actions: list[tuple[str, Any]], cap: int
) -> None:
    """Arbitrary events (odd names, repeated headers, non-numbers where numbers go),
    link drops, resyncs, expiries and routed calls in any order: ``on_event`` never
    raises, observations are well formed, the callers followed never exceed the cap
    (``MAX_FOLLOWED``, lowered) nor the Uniqueids seen, and a Hangup for each one
    leaves nothing followed."""
    now = [0.0]
    tracker = QueueTracker(lambda: QUEUES, lambda: now[0], ttl=100.0)
    observations: list[Observation] = []
    seen: set[str] = set()
    with mock.patch("ivr.ami.outcomes.MAX_FOLLOWED", cap):
        for kind, arg in actions:
            if kind == "event":
                seen.add(header(arg, "Uniqueid"))
                got = tracker.on_event(arg)
                observations.extend([got] if got is not None else [])
            elif kind == "routed":
                seen.add(arg)
                tracker.routed(arg, uuid4(), "q1")
            elif kind == "down":
                tracker.link_down()
            elif kind == "up":
                tracker.link_up()
            elif kind == "resync":
                observations.extend(tracker.resync(arg))
            else:
                now[0] += 60.0
                observations.extend(tracker.expire())
            assert tracker.followed <= min(cap, len(seen - {""}))
        for uniqueid in seen:
            got = tracker.on_event({"Event": "Hangup", "Uniqueid": uniqueid})
            observations.extend([got] if got is not None else [])
    assert tracker.followed == 0
    for observation in observations:
        assert observation.result is None or observation.result in RESULTS
        for record in observation.records:
            assert isinstance(record, CallRecord | QueueOutcome)
            assert isinstance(record.call_id, UUID)


# --- QueueStatus ------------------------------------------------------------------------

STATUS_EVENT: Final = st.fixed_dictionaries(
    {
        "Event": st.one_of(
            st.sampled_from(["QueueParams", "QueueMember", "QueueEntry", "QueueStatusComplete"]),
            VALUES,
        ),
        "Queue": st.one_of(st.sampled_from(QUEUES), VALUES),
    },
    optional={"Status": VALUES, "Paused": VALUES, "Wait": VALUES, "Uniqueid": VALUES},
)


@FUZZ
@given(st.lists(STATUS_EVENT, max_size=30), st.lists(st.sampled_from([*QUEUES, "q3"]), max_size=3))
def test_queue_status_never_raises_and_its_gauges_are_consistent(
    events: list[AmiEvent], names: list[str]
) -> None:
    """Arbitrary QueueStatus lists: one gauge set per queue asked for, callers equal
    to that queue's QueueEntry events, no negative, NaN or infinite value, never more members
    available or paused than logged in, and only listed callers marked waiting."""
    snapshot = parse_queue_status(events, names)
    assert set(snapshot.queues) == set(names)

    def first(event: AmiEvent, name: str) -> str:
        value = event.get(name, "")
        return (value[0] if value else "") if isinstance(value, list) else value

    for name, gauges in snapshot.queues.items():
        entries = [
            e for e in events if first(e, "Event") == "QueueEntry" and first(e, "Queue") == name
        ]
        assert gauges.callers == len(entries)
        assert gauges.longest_wait_seconds >= 0.0  # NaN fails this too
        assert math.isfinite(gauges.longest_wait_seconds)  # "inf" from a broken peer too
        assert gauges.available + gauges.paused <= gauges.logged_in
    listed = {first(e, "Uniqueid") for e in events if first(e, "Event") == "QueueEntry"}
    assert snapshot.waiting <= listed


@pytest.mark.parametrize("wait", ["inf", "1e400", "nan", "-5", "junk"])
def test_a_wait_that_is_not_a_finite_number_reads_as_zero(wait: str) -> None:
    """A broken peer's ``Wait: inf`` must not turn the longest-wait gauge into +Inf."""
    entry: AmiEvent = {"Event": "QueueEntry", "Queue": QUEUES[0], "Uniqueid": "u1", "Wait": wait}
    snapshot = parse_queue_status([entry], [QUEUES[0]])
    assert snapshot.queues[QUEUES[0]].longest_wait_seconds == 0.0
    assert snapshot.queues[QUEUES[0]].callers == 1
