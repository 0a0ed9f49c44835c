"""Live queue state from the AMI ``QueueStatus`` action's event list (pure).

``QueueStatus`` answers with one ``QueueParams`` per queue, then its ``QueueMember``
and ``QueueEntry`` events, and ``QueueStatusComplete`` (``tests/captures/ami-actions``).
Members are counted the way app_queue's own ``QueueSummary`` counts them: logged in
unless the device is unavailable (5) or invalid (4); available when logged in, not
paused, and the device is not in use (1) or unknown (0); paused when logged in and
paused. ``QueueSummary`` alone has no paused count, hence ``QueueStatus``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ivr.ami.outcomes import AmiEvent, header
from ivr.metrics import QueueGauges

__all__ = ["QueueSnapshot", "parse_queue_status"]

_UNKNOWN, _NOT_INUSE, _INVALID, _UNAVAILABLE = "0", "1", "4", "5"
_LOGGED_OUT: Final = frozenset({_INVALID, _UNAVAILABLE})
_FREE: Final = frozenset({_UNKNOWN, _NOT_INUSE})


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """The queues named, and the Uniqueids of every caller waiting in any queue."""

    queues: dict[str, QueueGauges]
    waiting: frozenset[str]


def _number(text: str) -> float:
    """A count or a wait from AMI; 0 for what is not a finite number ("inf", "nan", junk)."""
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def parse_queue_status(events: Iterable[AmiEvent], names: Iterable[str]) -> QueueSnapshot:
    """Gauges for each queue in ``names`` (zeros for one Asterisk did not list)."""
    wanted = set(names)
    counts = {name: [0, 0.0, 0, 0, 0] for name in wanted}
    waiting: set[str] = set()
    for event in events:
        kind = header(event, "Event")
        queue = header(event, "Queue")
        if kind == "QueueEntry":
            uniqueid = header(event, "Uniqueid")
            if uniqueid:
                waiting.add(uniqueid)
        row = counts.get(queue)
        if row is None:
            continue
        if kind == "QueueEntry":
            row[0] += 1
            row[1] = max(row[1], _number(header(event, "Wait")))
        elif kind == "QueueMember":
            status = header(event, "Status")
            if status in _LOGGED_OUT:
                continue
            row[2] += 1
            paused = header(event, "Paused") == "1"
            if paused:
                row[4] += 1
            elif status in _FREE:
                row[3] += 1
    queues = {
        name: QueueGauges(
            callers=int(row[0]),
            longest_wait_seconds=float(row[1]),
            logged_in=int(row[2]),
            available=int(row[3]),
            paused=int(row[4]),
        )
        for name, row in counts.items()
    }
    return QueueSnapshot(queues=queues, waiting=frozenset(waiting))
