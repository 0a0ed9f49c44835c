"""Retention: clear the caller's number and name from calls older than the retention period.

The channel name goes too: trunks and endpoints are often named after a phone number.

A purged call keeps everything the reports use (the keyed ``caller_hash``, the path, the
outcome, the queue columns...) and gets ``purged_at``; the recorder never writes a
number back into a purged row (see :mod:`ivr.records.batch`).

The work is done in batches of :data:`BATCH_SIZE` rows, each its own short transaction,
so a first purge over years of calls never holds row locks on the whole table while the
service keeps writing. Running it again (or after an interruption) simply continues:
a purged row no longer matches.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg

__all__ = ["BATCH_SIZE", "count_purgeable", "cutoff", "purge"]

BATCH_SIZE: Final = 10_000

# Same predicate as the partial index calls_unpurged, so both statements use it.
_HOLDS_PERSONAL_DATA: Final = (
    "(caller_number IS NOT NULL OR caller_name IS NOT NULL OR channel IS NOT NULL)"
)

_COUNT: Final = f"SELECT count(*) FROM calls WHERE started_at < $1 AND {_HOLDS_PERSONAL_DATA}"  # noqa: S608

# The outer WHERE repeats the condition: a row changed by a concurrent write between the
# subquery and the update is checked again on its latest version.
_PURGE_BATCH: Final = f"""
UPDATE calls
SET caller_number = NULL, caller_name = NULL, channel = NULL, purged_at = now()
WHERE call_id IN (
        SELECT call_id FROM calls
        WHERE started_at < $1 AND {_HOLDS_PERSONAL_DATA}
        LIMIT $2
    )
    AND started_at < $1
    AND {_HOLDS_PERSONAL_DATA}
"""  # noqa: S608 - built from constants only; values travel as parameters


def cutoff(now: datetime, days: int) -> datetime:
    """The instant ``days`` days before ``now``: calls started before it are purged."""
    if now.tzinfo is None:
        raise ValueError("now must carry a UTC offset")
    if days < 1:
        raise ValueError(f"the retention period must be at least 1 day, got {days}")
    return (now - timedelta(days=days)).astimezone(UTC)


async def count_purgeable(conn: asyncpg.Connection, before: datetime) -> int:
    """How many calls started before ``before`` still hold a caller number or name."""
    return int(await conn.fetchval(_COUNT, before))


async def purge(conn: asyncpg.Connection, before: datetime, *, batch_size: int = BATCH_SIZE) -> int:
    """Clear number and name from calls started before ``before``; returns how many."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    total = 0
    while True:
        # Outside a transaction block each statement commits on its own.
        status = await conn.execute(_PURGE_BATCH, before, batch_size)
        updated = int(status.rsplit(" ", 1)[-1])  # "UPDATE 10000"
        if updated == 0:
            return total
        total += updated
