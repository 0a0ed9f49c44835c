"""Synthetic call records shaped like the engine's: two snapshots and a trail each."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

from ivr.records.model import CallEvent, CallRecord, QueueOutcome, Record

BASE = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
OUTCOMES = ("routed", "closed", "invalid", "no_input", "fallback", "abandoned_in_menu")
CHOICES = (("programas", "reemplacamiento"), ("programas", "refrendo"), ("emergencias", "cea"))


def call_id(number: int) -> UUID:
    return UUID(int=number + 1)


def synthetic_call(number: int, *, events: int = 8, seed: int = 0) -> list[Record]:
    """The records one call produces, in the order the engine would submit them."""
    rng = random.Random(number * 7919 + seed)
    cid = call_id(number)
    started = BASE + timedelta(seconds=number * 3)
    caller = f"442{rng.randrange(10**7):07d}"
    vertiente, area = CHOICES[number % len(CHOICES)]
    outcome = OUTCOMES[number % len(OUTCOMES)]
    records: list[Record] = [
        CallRecord(
            call_id=cid,
            rev=1,
            uniqueid=f"{1_700_000_000 + number}.{number}",
            linkedid=f"{1_700_000_000 + number}.{number}",
            line_number="4421015205",
            channel=f"PJSIP/trunk-{number:08x}",
            caller_number=caller,
            caller_name="Ciudadana Pérez",
            started_at=started,
            answered_at=started + timedelta(milliseconds=40),
        )
    ]
    records.extend(
        CallEvent(
            call_id=cid,
            seq=seq,
            at=started + timedelta(seconds=seq),
            kind="play" if seq % 2 == 0 else "digits",
            detail={"step": f"step{seq}", "keys": str(seq % 10)},
        )
        for seq in range(events)
    )
    records.append(
        CallRecord(
            call_id=cid,
            rev=2,
            ended_at=started + timedelta(seconds=events + 1),
            path=("1", "2") if outcome != "abandoned_in_menu" else ("1",),
            vertiente=vertiente,
            area=area if outcome != "abandoned_in_menu" else None,
            queue=area if outcome == "routed" else None,
            outcome=outcome,
            hangup_step="submenu" if outcome == "abandoned_in_menu" else None,
            privacy_notice_version="2026-01",
            menu_version="2026.12",
        )
    )
    if outcome == "routed":
        records.append(QueueOutcome(call_id=cid, queue_result="answered", queue_wait_seconds=12.5))
    return records


def synthetic_stream(calls: int, *, events: int = 8, start: int = 0) -> list[Record]:
    stream: list[Record] = []
    for number in range(start, start + calls):
        stream.extend(synthetic_call(number, events=events))
    return stream
