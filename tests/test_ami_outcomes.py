"""The queue tracker on the event streams a real Asterisk 22 sent (tests/captures/ami-*)."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from ami_replay import CAPTURED_CALLS, captured_events, for_call, parse
from prometheus_client import CollectorRegistry

from ivr.ami.client import AmiConfig
from ivr.ami.monitor import EXPIRE_EVERY, QueueMonitor
from ivr.ami.outcomes import Observation, QueueTracker, call_variable
from ivr.metrics import Metrics
from ivr.records.model import CallRecord, QueueOutcome, call_id_for

QUEUE = "finanzas-vehicular"
UNIQUEID = "asterisk-lab-1796500000.42"
LINKEDID = "asterisk-lab-1796500000.41"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock | None = None) -> QueueTracker:
    t = QueueTracker(lambda: [QUEUE, "atencion-ciudadana"], clock or Clock())
    t.link_up()
    return t


def feed(t: QueueTracker, events: list[bytes]) -> list[Observation]:
    out = []
    for event in events:
        seen = t.on_event(parse(event))
        if seen is not None:
            out.append(seen)
    return out


def final(observations: list[Observation]) -> dict[str, object]:
    """What the record ends up with: the merge of every QueueOutcome, last known wins."""
    merged: dict[str, object] = {}
    for observation in observations:
        for record in observation.records:
            if isinstance(record, QueueOutcome):
                for name in (
                    "queue_result",
                    "queue_wait_seconds",
                    "agent",
                    "talk_seconds",
                    "hangup_cause",
                ):
                    value = getattr(record, name)
                    if value is not None and not (value == "unknown" and name in merged):
                        merged[name] = value
    return merged


def results(observations: list[Observation]) -> list[tuple[str | None, str, float | None]]:
    return [(o.queue, o.result, o.wait) for o in observations if o.result is not None]


def replay(kind: str) -> list[bytes]:
    return for_call(kind, uniqueid=UNIQUEID, linkedid=LINKEDID, queue=QUEUE)


@pytest.mark.parametrize(
    ("kind", "expected", "counted"),
    [
        (
            "answered",
            {"queue_result": "answered", "queue_wait_seconds": 1.0, "agent": "Agente Uno",
             "talk_seconds": 5.0, "hangup_cause": "16 Normal Clearing"},
            [(QUEUE, "answered", 1.0)],
        ),
        (
            "abandoned",
            {"queue_result": "abandoned", "queue_wait_seconds": 3.0, "hangup_cause": "0 Unknown"},
            [(QUEUE, "abandoned", 3.0)],
        ),
        (
            "abandoned-empty",
            {"queue_result": "abandoned", "queue_wait_seconds": 2.0, "hangup_cause": "0 Unknown"},
            [(QUEUE, "abandoned", 2.0)],
        ),
        (
            # QueueCallerAbandon comes on a timeout too: no hangup request before it.
            "timeout",
            {"queue_result": "timeout", "queue_wait_seconds": 6.0,
             "hangup_cause": "16 Normal Clearing"},
            [(QUEUE, "timeout", 6.0)],
        ),
    ],
)  # fmt: skip
def test_captured_calls_end_as_asterisk_saw_them(
    kind: str, expected: dict[str, object], counted: list[tuple[str, str, float]]
) -> None:
    t = tracker()
    observations = feed(t, replay(kind))
    assert final(observations) == expected
    assert results(observations) == counted
    # Every record names the call by its channel's uniqueid, as the AGI side does.
    ids = {r.call_id for o in observations for r in o.records}
    assert ids == {call_id_for(UNIQUEID)}
    assert t.followed == 0  # the Hangup ends the follow


def test_the_first_record_names_the_channel_for_calls_the_ivr_never_saw() -> None:
    observations = feed(tracker(), replay("answered"))
    snapshots = [r for o in observations for r in o.records if isinstance(r, CallRecord)]
    assert snapshots == [
        CallRecord(call_id=call_id_for(UNIQUEID), rev=0, uniqueid=UNIQUEID, linkedid=LINKEDID,
                   queue=QUEUE)
    ]  # fmt: skip


def test_queues_outside_the_menu_are_ignored() -> None:
    events = for_call("answered", uniqueid=UNIQUEID, linkedid=LINKEDID, queue="someone-elses")
    assert feed(tracker(), events) == []


def test_other_channels_of_the_call_are_not_taken_for_the_caller() -> None:
    # The member's channels share the Linkedid and hang up too; only the caller counts.
    observations = feed(tracker(), replay("answered"))
    hangups = [o for o in observations if any(
        isinstance(r, QueueOutcome) and r.hangup_cause for r in o.records)]  # fmt: skip
    assert len(hangups) == 1


def test_channel_variable_names_the_record_when_present() -> None:
    call_id = uuid4()
    events = [
        e.replace(b"Uniqueid: ", f"ChanVariable: IVR_CALL_ID={call_id}\r\nUniqueid: ".encode(), 1)
        for e in replay("abandoned")
    ]
    assert call_variable(parse(events[0]), "IVR_CALL_ID") == str(call_id)
    observations = feed(tracker(), events)
    assert {r.call_id for o in observations for r in o.records} == {call_id}


def _split(kind: str, event_name: str) -> tuple[list[bytes], list[bytes]]:
    events = replay(kind)
    index = next(
        i for i, e in enumerate(events) if e.startswith(f"Event: {event_name}\r\n".encode())
    )
    return events[: index + 1], events[index + 1 :]


def test_a_gap_while_waiting_is_recorded_unknown_and_counted_once() -> None:
    before, _after = _split("abandoned", "QueueCallerJoin")
    t = tracker()
    feed(t, before)
    t.link_down()
    # Reconnected: QueueStatus shows nobody waiting; the caller left unseen.
    t.link_up()
    observations = t.resync(waiting=[])
    assert final(observations) == {"queue_result": "unknown"}
    assert [o.unobserved for o in observations] == [True]
    assert t.resync(waiting=[]) == []  # asked again: nothing new, counted once


def test_a_caller_still_waiting_after_the_gap_is_followed_to_the_end() -> None:
    before, after = _split("answered", "QueueCallerJoin")
    t = tracker()
    feed(t, before)
    t.link_down()
    t.link_up()
    assert t.resync(waiting=[UNIQUEID]) == []
    assert final(feed(t, after))["queue_result"] == "answered"


def test_an_abandon_after_the_gap_is_not_guessed_a_timeout() -> None:
    # The hangup request fell in the gap: abandon and timeout look the same then.
    events = replay("abandoned")
    join = next(i for i, e in enumerate(events) if e.startswith(b"Event: QueueCallerJoin"))
    request = next(i for i, e in enumerate(events) if e.startswith(b"Event: HangupRequest")
                   and UNIQUEID.encode() in e)  # fmt: skip
    t = tracker()
    feed(t, events[: join + 1])
    t.link_down()
    t.link_up()
    abandon = [e for e in events[request + 1 :] if e.startswith(b"Event: QueueCallerAbandon")]
    observations = feed(t, abandon)
    assert final(observations) == {"queue_result": "unknown", "queue_wait_seconds": 3.0}
    assert observations[0].unobserved


def test_agent_complete_after_a_gap_proves_the_answer() -> None:
    before, after = _split("answered", "QueueCallerJoin")
    t = tracker()
    observations = feed(t, before)
    t.link_down()
    t.link_up()
    observations += t.resync(waiting=[])  # unknown for now
    complete = [e for e in after if not e.startswith(b"Event: AgentConnect")]
    observations += feed(t, complete)
    assert final(observations)["queue_result"] == "answered"
    assert final(observations)["talk_seconds"] == 5.0


def test_a_call_routed_while_ami_is_down_is_unknown_after_the_reconnect() -> None:
    t = QueueTracker(lambda: [QUEUE], Clock())
    call_id = uuid4()
    t.routed(UNIQUEID, call_id, QUEUE)  # never linked yet
    t.link_up()
    observations = t.resync(waiting=[])
    assert [(type(r), r.call_id, r.queue_result) for o in observations for r in o.records
            if isinstance(r, QueueOutcome)] == [(QueueOutcome, call_id, "unknown")]  # fmt: skip


def test_a_routed_call_that_hangs_up_before_the_queue_has_no_queue_result() -> None:
    t = tracker()
    t.routed(UNIQUEID, call_id_for(UNIQUEID), QUEUE)
    hangup = next(e for e in replay("answered") if e.startswith(b"Event: Hangup\r\n")
                  and f"Uniqueid: {UNIQUEID}".encode() in e)  # fmt: skip
    observations = feed(t, [hangup])
    assert final(observations) == {"hangup_cause": "16 Normal Clearing"}
    assert results(observations) == []


def test_silent_callers_are_forgotten_after_the_ttl() -> None:
    clock = Clock()
    t = tracker(clock)
    before, _ = _split("abandoned", "QueueCallerJoin")
    feed(t, before)
    clock.now += t.ttl + 1
    observations = t.expire()
    assert final(observations) == {"queue_result": "unknown"}
    assert t.followed == 0


def test_call_ids_are_stable_and_distinct() -> None:
    assert call_id_for("asterisk-lab-1.1") == call_id_for("asterisk-lab-1.1")
    assert call_id_for("asterisk-lab-1.1") != call_id_for("asterisk-lab-1.2")
    assert isinstance(call_id_for("x"), UUID)


def test_the_captures_hold_the_events_the_tracker_needs() -> None:
    for call in CAPTURED_CALLS.values():
        names = {parse(e)["Event"] for e in captured_events(call.capture)}
        assert {"QueueCallerJoin", "Hangup"} <= names


def test_the_monitor_forgets_routed_calls_while_ami_stays_down() -> None:
    records: list[object] = []

    class Sink:
        def submit(self, record: object) -> None:
            records.append(record)

    clock = Clock()
    metrics = Metrics(CollectorRegistry())
    monitor = QueueMonitor(
        AmiConfig("127.0.0.1", 1, "ivr", "x"), sink=Sink(), metrics=metrics,
        queues=lambda: [QUEUE], clock=clock,
    )  # fmt: skip
    monitor.routed("asterisk-lab-1.1", uuid4(), QUEUE)
    clock.now += monitor.tracker.ttl + 1  # hours with AMI down
    for n in range(2, EXPIRE_EVERY + 1):
        monitor.routed(f"asterisk-lab-1.{n}", uuid4(), QUEUE)
    assert monitor.tracker.followed == EXPIRE_EVERY - 1  # the first one is forgotten...
    assert [getattr(r, "queue_result", None) for r in records] == ["unknown"]  # ...as unknown
    assert metrics.registry.get_sample_value("ivr_ami_unobserved_calls_total") == 1.0
