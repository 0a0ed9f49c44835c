"""What happened to each caller in the operator queues, from AMI events (pure).

:class:`QueueTracker` follows the caller's channel through app_queue's events and says
what to write on the call's record (:class:`~ivr.records.model.QueueOutcome`) and what
to count. It does no I/O: the AMI client feeds it events and link changes, the clock
is a parameter, and it returns :class:`Observation` values.

Facts from a real Asterisk 22 (``tests/captures/ami-*``) it relies on:

* Queue events name the caller's channel by its ``Uniqueid``, the same one the AGI
  session saw as ``agi_uniqueid``; so the call's record is found by
  :func:`~ivr.records.model.call_id_for`, whichever instance answered the call and
  whichever event comes first. ``ChanVariable: IVR_CALL_ID=...`` (manager.conf
  ``channelvars``) wins when present.
* On an answered call QueueCallerLeave comes *before* AgentConnect (HoldTime, whole
  seconds); AgentComplete brings TalkTime (seconds).
* A Queue() *timeout* also emits QueueCallerAbandon. What tells a real abandon is a
  ``HangupRequest`` (or ``SoftHangupRequest``) on the caller's channel before the
  QueueCallerAbandon: the caller hung up while waiting. Without one, the caller was
  still on the line: a timeout.
* Events are lost while the AMI link is down. A caller followed across a gap, or first
  seen in the middle of its queue stay, has a history with a hole in it: a result that
  depends on the missing part is recorded as ``unknown``, never guessed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final
from uuid import UUID

from ivr.records.model import CallRecord, QueueOutcome, call_id_for

__all__ = ["AmiEvent", "Observation", "QueueTracker", "call_variable", "header"]

RESULTS: Final = ("answered", "abandoned", "timeout", "left", "unknown")

AmiEvent = Mapping[str, "str | list[str]"]

ANSWERED: Final = "answered"
ABANDONED: Final = "abandoned"
TIMEOUT: Final = "timeout"
LEFT: Final = "left"  # the queue let the caller go (no agents): leavewhenempty
UNKNOWN: Final = "unknown"
CALL_ID_VARIABLE: Final = "IVR_CALL_ID"
# A caller nothing was heard of for this long is forgotten (memory stays bounded even
# if a Hangup is never seen). Longer than any queue wait plus conversation.
DEFAULT_TTL: Final = 6 * 3600.0
MAX_FOLLOWED: Final = 100_000


def header(event: AmiEvent, name: str) -> str:
    """One header's value ('' when absent; the first when repeated)."""
    value = event.get(name, "")
    if isinstance(value, list):
        return value[0] if value else ""
    return value


def call_variable(event: AmiEvent, name: str) -> str | None:
    """A ``ChanVariable: NAME=value`` header's value (manager.conf ``channelvars``)."""
    values = event.get("ChanVariable")
    if values is None:
        return None
    for item in values if isinstance(values, list) else [values]:
        key, sep, value = item.partition("=")
        if sep and key == name:
            return value
    return None


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


@dataclass(frozen=True, slots=True)
class Observation:
    """What one event taught: records to write and, when a queue stay ended, a result."""

    records: tuple[CallRecord | QueueOutcome, ...] = ()
    queue: str | None = None
    result: str | None = None  # set when a stay in a queue ended (for metrics)
    wait: float | None = None
    unobserved: bool = False  # the result is unknown because AMI missed events


@dataclass(slots=True)
class _Caller:
    call_id: UUID
    uniqueid: str
    seen: float
    queue: str | None = None
    in_queue: bool = False  # between QueueCallerJoin and the stay's end
    decided: bool = True  # the current stay's result is known (no stay yet: nothing to decide)
    expected: bool = False  # routed by the IVR, not seen in a queue yet
    left: bool = False  # QueueCallerLeave came and nothing has decided the stay yet
    hangup_requested: bool = False
    complete: bool = True  # every event since the stay began was observed
    result: str | None = None  # the call's queue result so far (answered sticks)
    wait: float | None = None  # seconds waited, summed over the stays
    agent: str | None = None
    talk: float | None = None
    reported_unknown: bool = False
    recorded: bool = False  # a CallRecord naming the channel was written


@dataclass
class QueueTracker:
    """Follows callers through the queues named by ``queues()``.

    ``queues`` returns the queue names to follow (the menu's); a caller is followed
    from its first queue event in one of them until its Hangup."""

    queues: Callable[[], Iterable[str]]
    clock: Callable[[], float]
    ttl: float = DEFAULT_TTL
    _callers: dict[str, _Caller] = field(default_factory=dict)
    connected: bool = False

    @property
    def followed(self) -> int:
        return len(self._callers)

    # --- link state ---------------------------------------------------------------

    def link_up(self) -> None:
        self.connected = True

    def link_down(self) -> None:
        """Events from now on are lost: every caller followed has a hole in its history."""
        self.connected = False
        for caller in self._callers.values():
            caller.complete = False

    def resync(self, waiting: Iterable[str]) -> list[Observation]:
        """After a reconnect, ``waiting`` are the Uniqueids QueueStatus shows in a queue.

        A caller still waiting is followed again from here: what happens next is
        observed. Any other caller followed across the gap whose stay was undecided left
        its queue unseen: the result is recorded as unknown (a later AgentComplete can
        still prove it was answered, and then wins)."""
        still = set(waiting)
        out: list[Observation] = []
        for uniqueid, caller in list(self._callers.items()):
            if uniqueid in still:
                caller.in_queue = True
                caller.left = False
                caller.complete = True
                caller.hangup_requested = False
            elif not caller.complete and not caller.decided:
                out.append(self._unknown(caller))
        return out

    def expire(self) -> list[Observation]:
        """Forget callers silent for ``ttl``; an undecided stay is recorded unknown."""
        limit = self.clock() - self.ttl
        out: list[Observation] = []
        for uniqueid, caller in list(self._callers.items()):
            if caller.seen < limit:
                if not caller.decided:
                    out.append(self._unknown(caller))
                del self._callers[uniqueid]
        return out

    def routed(self, uniqueid: str, call_id: UUID, queue: str) -> None:
        """The IVR sent this caller to ``queue``: a stay is expected. If AMI is down now
        (or drops before the caller's queue events arrive) the stay cannot be observed,
        and :meth:`resync` records it as unknown instead of leaving it blank."""
        if not uniqueid or uniqueid in self._callers or len(self._callers) >= MAX_FOLLOWED:
            return
        caller = _Caller(call_id=call_id, uniqueid=uniqueid, seen=self.clock(), queue=queue)
        caller.decided = False
        caller.expected = True
        caller.complete = self.connected
        self._callers[uniqueid] = caller

    # --- events -------------------------------------------------------------------

    def on_event(self, event: AmiEvent) -> Observation | None:
        name = header(event, "Event")
        handler = _HANDLERS.get(name)
        if handler is None:
            return None
        uniqueid = header(event, "Uniqueid")
        if not uniqueid:
            return None
        caller = self._callers.get(uniqueid)
        if caller is None:
            if not name.startswith(("Queue", "Agent")):
                return None  # a channel no queue of ours has seen
            if header(event, "Queue") not in set(self.queues()):
                return None
            if len(self._callers) >= MAX_FOLLOWED:
                return None
            caller = self._follow(event, uniqueid)
            if name != "QueueCallerJoin":
                # First seen in the middle of a stay: its start was missed.
                caller.decided = False
                caller.in_queue = True
                caller.complete = False
        caller.seen = self.clock()
        return handler(self, caller, event)

    def _follow(self, event: AmiEvent, uniqueid: str) -> _Caller:
        named = call_variable(event, CALL_ID_VARIABLE)
        call_id = call_id_for(uniqueid)
        if named:
            with contextlib.suppress(ValueError):
                call_id = UUID(named)
        caller = _Caller(call_id=call_id, uniqueid=uniqueid, seen=self.clock())
        self._callers[uniqueid] = caller
        return caller

    def _identity(self, caller: _Caller, event: AmiEvent) -> tuple[CallRecord, ...]:
        """The first time: a revision-0 snapshot naming the channel and the queue, so a
        call the IVR never saw (the dialplan's FAILURE fallback) still has its row. Any
        snapshot of the engine's (revision 1 and up) wins over it."""
        if caller.recorded:
            return ()
        caller.recorded = True
        return (
            CallRecord(
                call_id=caller.call_id,
                rev=0,
                uniqueid=caller.uniqueid,
                linkedid=header(event, "Linkedid") or None,
                queue=caller.queue,
            ),
        )

    def _record(
        self, caller: _Caller, event: AmiEvent | None = None, **extra: object
    ) -> tuple[CallRecord | QueueOutcome, ...]:
        identity = self._identity(caller, event) if event is not None else ()
        outcome = QueueOutcome(
            call_id=caller.call_id,
            queue_result=caller.result,
            queue_wait_seconds=caller.wait,
            agent=caller.agent,
            talk_seconds=caller.talk,
            **extra,  # type: ignore[arg-type]
        )
        return (*identity, outcome)

    def _decide(self, caller: _Caller, result: str, wait: float | None) -> tuple[str | None, bool]:
        """End the current stay with ``result``: (the result to count, unobserved)."""
        caller.decided = True
        caller.in_queue = False
        caller.left = False
        if wait is not None:
            caller.wait = (caller.wait or 0.0) + wait
        if caller.result != ANSWERED:
            caller.result = result
        if result == UNKNOWN:
            if caller.reported_unknown:
                return None, False
            caller.reported_unknown = True
            return UNKNOWN, True
        if caller.reported_unknown:
            return None, False  # already counted as unknown: the record still learns
        return result, False

    def _unknown(self, caller: _Caller) -> Observation:
        counted, unobserved = self._decide(caller, UNKNOWN, None)
        return Observation(
            records=self._record(caller), queue=caller.queue, result=counted, unobserved=unobserved
        )

    def _join(self, caller: _Caller, event: AmiEvent) -> Observation:
        before: tuple[str | None, bool] = (None, False)
        if not caller.decided and not caller.expected:
            # The previous stay ended with QueueCallerLeave and no agent and no abandon:
            # the queue let the caller go (leavewhenempty) and the dialplan moved on.
            before = self._decide(caller, LEFT if caller.complete else UNKNOWN, None)
        previous = caller.queue
        caller.queue = header(event, "Queue") or caller.queue
        caller.in_queue = True
        caller.decided = False
        caller.expected = False
        caller.left = False
        caller.hangup_requested = False
        caller.complete = True
        return Observation(
            records=self._record(caller, event),
            queue=previous,
            result=before[0],
            unobserved=before[1],
        )

    def _hangup_request(self, caller: _Caller, event: AmiEvent) -> None:
        del event
        caller.hangup_requested = True

    def _leave(self, caller: _Caller, event: AmiEvent) -> None:
        del event
        # On an answered call QueueCallerLeave comes before AgentConnect; after an
        # abandon or a timeout it follows QueueCallerAbandon. Decided later.
        caller.in_queue = False
        caller.left = not caller.decided

    def _connect(self, caller: _Caller, event: AmiEvent) -> Observation:
        caller.queue = header(event, "Queue") or caller.queue
        caller.agent = header(event, "MemberName") or header(event, "Interface") or None
        counted: str | None = None
        hold = None
        if not caller.decided:
            hold = _seconds(header(event, "HoldTime"))
            counted, _ = self._decide(caller, ANSWERED, hold)
        caller.result = ANSWERED
        return Observation(
            records=self._record(caller, event), queue=caller.queue, result=counted, wait=hold
        )

    def _complete(self, caller: _Caller, event: AmiEvent) -> Observation:
        caller.queue = header(event, "Queue") or caller.queue
        caller.agent = header(event, "MemberName") or header(event, "Interface") or caller.agent
        counted: str | None = None
        hold = None
        if not caller.decided:  # AgentConnect was missed
            hold = _seconds(header(event, "HoldTime"))
            counted, _ = self._decide(caller, ANSWERED, hold)
        caller.result = ANSWERED
        talk = _seconds(header(event, "TalkTime"))
        if talk is not None:
            caller.talk = (caller.talk or 0.0) + talk
        return Observation(
            records=self._record(caller, event), queue=caller.queue, result=counted, wait=hold
        )

    def _abandon(self, caller: _Caller, event: AmiEvent) -> Observation | None:
        caller.queue = header(event, "Queue") or caller.queue
        if caller.decided:
            return None
        if caller.hangup_requested:
            result = ABANDONED
        elif caller.complete:
            result = TIMEOUT  # still on the line: Queue()'s timeout ended the stay
        else:
            result = UNKNOWN  # the hangup request may have been lost in the gap
        hold = _seconds(header(event, "HoldTime"))
        counted, unobserved = self._decide(caller, result, hold)
        return Observation(
            records=self._record(caller, event),
            queue=caller.queue,
            result=counted,
            wait=hold,
            unobserved=unobserved,
        )

    def _hangup(self, caller: _Caller, event: AmiEvent) -> Observation:
        del self._callers[caller.uniqueid]
        code = header(event, "Cause")
        text = header(event, "Cause-txt")
        cause = f"{code} {text}".strip() or None
        counted: str | None = None
        unobserved = False
        if caller.expected and caller.complete:
            caller.decided = True  # hung up on the way to the queue: no stay to judge
        if not caller.decided:
            if caller.left and caller.complete:
                result = LEFT
            elif caller.in_queue and caller.complete and caller.hangup_requested:
                result = ABANDONED  # the QueueCallerAbandon itself was not seen
            else:
                result = UNKNOWN
            counted, unobserved = self._decide(caller, result, None)
        return Observation(
            records=self._record(caller, hangup_cause=cause),
            queue=caller.queue,
            result=counted,
            unobserved=unobserved,
        )


_HANDLERS: Final[dict[str, Callable[[QueueTracker, _Caller, AmiEvent], Observation | None]]] = {
    "QueueCallerJoin": QueueTracker._join,
    "HangupRequest": QueueTracker._hangup_request,
    "SoftHangupRequest": QueueTracker._hangup_request,
    "AgentConnect": QueueTracker._connect,
    "AgentComplete": QueueTracker._complete,
    "QueueCallerAbandon": QueueTracker._abandon,
    "QueueCallerLeave": QueueTracker._leave,
    "Hangup": QueueTracker._hangup,
}
