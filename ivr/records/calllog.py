"""The call engine's handle on one call's record: cheap, synchronous, never waits.

A :class:`CallLog` keeps what is known about the call so far, and each
:meth:`~CallLog.update` submits a new cumulative snapshot with the next revision; each
:meth:`~CallLog.event` submits the next step of the trail. Numbering revisions and
steps here is what makes every write idempotent and order-free downstream (see
:mod:`ivr.records.model`), so the engine never deals with either.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from uuid import UUID, uuid4

from ivr.records.model import CallEvent, CallRecord, Record

__all__ = ["CallLog", "Sink"]

_UPDATABLE: Final = frozenset(CallRecord.__dataclass_fields__) - {"call_id", "rev"}


class Sink(Protocol):
    """Where records go: :class:`ivr.records.recorder.Recorder` (or a list in tests)."""

    def submit(self, record: Record) -> None: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CallLog:
    __slots__ = ("_clock", "_fields", "_rev", "_seq", "_sink", "call_id")

    def __init__(
        self,
        sink: Sink,
        *,
        call_id: UUID | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.call_id = call_id or uuid4()
        self._sink = sink
        self._clock = clock
        self._rev = 0
        self._seq = 0
        self._fields: dict[str, Any] = {}

    def update(self, **fields: Any) -> None:
        """Learned ``fields`` (CallRecord's names): submit the call as now known."""
        unknown = fields.keys() - _UPDATABLE
        if unknown:
            raise TypeError(f"not call record fields: {', '.join(sorted(unknown))}")
        if "path" in fields and fields["path"] is not None:
            fields["path"] = tuple(fields["path"])
        self._fields.update(fields)
        self._rev += 1
        self._sink.submit(CallRecord(call_id=self.call_id, rev=self._rev, **self._fields))

    def event(self, kind: str, **detail: Any) -> None:
        """The next step of the call's trail, stamped now."""
        self._sink.submit(CallEvent(self.call_id, self._seq, self._clock(), kind, detail))
        self._seq += 1

    def get(self, field: str) -> Any:
        """What is known of ``field`` so far (None if nothing)."""
        return self._fields.get(field)
