"""The write-behind recorder: the call path enqueues, a background task writes.

:meth:`Recorder.submit` is what the call engine calls. It never waits: it appends to a
bounded in-memory queue, or, when the queue is full, to the on-disk spool. A single
writer task takes batches from the queue and writes each in one transaction with two
statements (see :mod:`ivr.records.batch`). When PostgreSQL is down or slow the batch
goes to the spool instead, fsynced, and so does everything after it until the database
answers again; then the spool is replayed oldest first before new records, and at the
next start if the service stopped meanwhile. :meth:`Recorder.close` writes what is
queued, or spools it if the database does not take it in time.

A batch the database refuses for its data (a constraint, an invalid value) is split in
halves until the offending records are found; they go to the spool's
``rejected.jsonl`` with the database's message and the rest is written. Other errors
(connection lost, timeout, server shutting down, disk full) mean "down": spool and retry
with capped exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from ivr.logging import get_logger
from ivr.records.batch import build_batch, insert_events_sql, upsert_calls_sql
from ivr.records.model import Record, to_json
from ivr.records.spool import Spool

__all__ = [
    "Connect",
    "InvalidRecordError",
    "Recorder",
    "RecorderClosedError",
    "RecorderStats",
    "write_records",
]

Connect = Callable[[], Awaitable[asyncpg.Connection]]

_UPSERT_CALLS: Final = upsert_calls_sql()
_INSERT_EVENTS: Final = insert_events_sql()
_SPOOL_CHUNK: Final = 256  # records encoded between two yields to the event loop


class RecorderClosedError(RuntimeError):
    """A record was submitted after :meth:`Recorder.close`."""


@dataclass
class RecorderStats:
    """Counters for metrics and tests. ``written`` counts records, not rows."""

    submitted: int = 0
    written: int = 0
    spooled: int = 0
    overflowed: int = 0
    replayed: int = 0
    rejected: int = 0
    write_errors: int = 0
    batches: int = 0
    spool_errors: int = 0
    lost: int = 0
    database_up: bool = False


class InvalidRecordError(ValueError):
    """A record that cannot be turned into column values (a wrong type in a field)."""


def _is_data_error(exc: BaseException) -> bool:
    return isinstance(
        exc, InvalidRecordError | asyncpg.DataError | asyncpg.IntegrityConstraintViolationError
    )


async def write_records(conn: asyncpg.Connection, records: Sequence[Record], key: bytes) -> None:
    """Write ``records`` in one transaction; idempotent."""
    try:
        batch = build_batch(records, key)
    except Exception as exc:  # whatever a malformed record trips, it is that record's fault
        raise InvalidRecordError(f"{type(exc).__name__}: {exc}") from exc
    async with conn.transaction():
        if batch.call_count:
            await conn.execute(_UPSERT_CALLS, *batch.calls)
        if batch.event_count:
            await conn.execute(_INSERT_EVENTS, *batch.events)


class Recorder:
    def __init__(  # noqa: PLR0913 - tuning knobs, all keyword-only
        self,
        *,
        connect: Connect,
        spool: Spool,
        key: bytes,
        max_queue: int = 50_000,
        batch_size: int = 2_000,
        flush_interval: float = 0.05,
        write_timeout: float = 10.0,
        retry_initial: float = 0.25,
        retry_max: float = 10.0,
    ) -> None:
        self._connect = connect
        self._spool = spool
        self._key = key
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._write_timeout = write_timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._queue: deque[Record] = deque()
        self._inflight: list[Record] = []  # taken from the queue, not yet written or spooled
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._closing = False
        self._closed = False
        self._retry_delay = retry_initial
        self._next_attempt = 0.0
        self._spool_failing = False  # the last attempt to spool a batch failed
        self._log = get_logger("ivr.records")
        self.stats = RecorderStats()

    # -- the hot path ----------------------------------------------------------------

    def submit(self, record: Record) -> None:
        """Record ``record`` later. Never blocks on the database and never drops."""
        if self._closed:
            raise RecorderClosedError("the recorder is closed")
        self.stats.submitted += 1
        if len(self._queue) < self._max_queue:
            self._queue.append(record)
            if len(self._queue) >= self._batch_size and not self._wake.is_set():
                self._wake.set()
            return
        try:
            self._spool.append(record)
        except OSError:
            # The disk refuses too (full, read-only): keep the record in memory, over
            # the bound, rather than lose it; the writer retries the spool.
            self.stats.spool_errors += 1
            self._queue.append(record)
            return
        self.stats.overflowed += 1
        self.stats.spooled += 1

    # -- observability -----------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def spool_bytes(self) -> int:
        return self._spool.size_bytes()

    @property
    def ready(self) -> bool:
        """Records are being kept: the writer runs, and the database or the spool takes
        them (a full disk while the database is down is not ready)."""
        running = self._task is not None and not self._task.done() and not self._closed
        return running and (self.stats.database_up or not self._spool_failing)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the spool and start the writer (which first replays any old spool)."""
        self._spool.open()
        if self._spool.pending():
            self._log.info("spool found from an earlier run; it will be replayed")
        self._task = asyncio.create_task(self._run(), name="ivr-recorder")

    async def close(self, grace: float = 10.0) -> None:
        """Write everything queued; what the database does not take in time is spooled."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
                self._log.warning("database too slow at shutdown; spooling the rest")
            except Exception:
                self._log.exception("recorder writer failed at shutdown; spooling the rest")
        self._closed = True
        if self._inflight:  # the writer was cancelled mid-write: that batch may be lost
            self._queue.extendleft(reversed(self._inflight))
            self._inflight = []
        if self._queue:
            try:
                self._spool_records(list(self._queue))
            except OSError as exc:
                self.stats.lost += len(self._queue)
                self._log.critical(
                    "records lost at shutdown: the database and the spool both refused them",
                    records=len(self._queue),
                    error=str(exc),
                )
            self._queue.clear()
        try:
            self._spool.close()
        except OSError as exc:
            self._log.critical("cannot close the spool", error=str(exc))
        await self._disconnect()
        self._log.info(
            "recorder closed",
            written=self.stats.written,
            spooled=self.stats.spooled,
            rejected=self.stats.rejected,
        )

    # -- the writer --------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            batch: list[Record] = []
            try:
                await self._maybe_reconnect()
                if self.stats.database_up and self._spool.pending():
                    await self._replay()
                batch = self._inflight = self._take()
                if batch:
                    await self._deliver(batch)
                self._inflight = []
                await self._sync_spool()
                self._spool_failing = False
            except Exception as exc:
                # Typically the spool's disk is full or read-only while the database is
                # down. Keep the batch in memory, at the front, and try again later.
                self.stats.spool_errors += 1
                self._spool_failing = True
                self._queue.extendleft(reversed(batch))
                self._inflight = []
                self._log.error(
                    "cannot spool records; keeping them in memory",
                    error=type(exc).__name__,
                    detail=str(exc),
                    in_memory=len(self._queue),
                )
                if self._closing:
                    return
                await asyncio.sleep(self._retry_delay)
                continue
            settled = not self.stats.database_up or not self._spool.pending()
            if self._closing and not self._queue and settled:
                return

    def _take(self) -> list[Record]:
        size = min(self._batch_size, len(self._queue))
        return [self._queue.popleft() for _ in range(size)]

    async def _deliver(self, batch: list[Record]) -> None:
        # While a spool is waiting to be replayed, new records queue behind it on disk.
        if not self.stats.database_up or self._spool.pending():
            await self._spool_async(batch)
            return
        if await self._write(batch):
            self.stats.written += len(batch)
        else:
            await self._spool_async(batch)

    async def _write(self, records: Sequence[Record]) -> bool:
        """Write ``records``; False when the database is down (nothing was written)."""
        conn = self._conn
        if conn is None:
            return False
        try:
            await asyncio.wait_for(write_records(conn, records, self._key), self._write_timeout)
        except Exception as exc:
            if _is_data_error(exc):
                return await self._isolate(records, exc)
            await self._went_down(exc)
            return False
        self.stats.batches += 1
        return True

    async def _isolate(self, records: Sequence[Record], exc: BaseException) -> bool:
        """Split a refused batch until the refused records are found and set aside."""
        if len(records) == 1:
            record = records[0]
            self._spool.reject("database", f"{type(exc).__name__}: {exc}", to_json(record))
            self.stats.rejected = self._spool.rejected
            self._log.error(
                "record refused by the database", error=type(exc).__name__, detail=str(exc)
            )
            return True
        middle = len(records) // 2
        # If the database goes down after the first half is in, the caller spools the
        # whole batch: harmless, since writes are idempotent.
        return await self._write(records[:middle]) and await self._write(records[middle:])

    async def _replay(self) -> None:
        self._spool.rotate()
        for segment in self._spool.closed_segments():
            # A segment is counted once, when all of it is in: if the database drops
            # halfway, the whole segment is replayed again later (writes are idempotent)
            # and its first chunks must not be counted twice.
            done = 0
            chunk: list[Record] = []
            for record in self._spool.read(segment):
                chunk.append(record)
                if len(chunk) >= self._batch_size:
                    if not await self._write(chunk):
                        return
                    done += len(chunk)
                    chunk = []
                    await asyncio.sleep(0)
            if chunk:
                if not await self._write(chunk):
                    return
                done += len(chunk)
            self._spool.remove(segment)
            self.stats.replayed += done
            self.stats.written += done
            self._log.info("spool segment replayed", segment=segment.path.name)
        self.stats.rejected = self._spool.rejected

    def _spool_records(self, records: Sequence[Record]) -> None:
        for record in records:
            self._spool.append(record)
        self.stats.spooled += len(records)
        self._spool.sync()

    async def _spool_async(self, records: Sequence[Record]) -> None:
        for start in range(0, len(records), _SPOOL_CHUNK):
            for record in records[start : start + _SPOOL_CHUNK]:
                self._spool.append(record)
            await asyncio.sleep(0)
        self.stats.spooled += len(records)

    async def _sync_spool(self) -> None:
        fd = self._spool.flush()
        if fd is not None:
            await asyncio.to_thread(_fsync, fd)

    # -- the connection -----------------------------------------------------------------

    async def _maybe_reconnect(self) -> None:
        if self.stats.database_up:
            return
        now = time.monotonic()
        if now < self._next_attempt:
            return
        try:
            self._conn = await asyncio.wait_for(self._connect(), self._write_timeout)
        except Exception as exc:
            await self._went_down(exc)
            return
        self.stats.database_up = True
        self._retry_delay = self._retry_initial
        self._log.info("database connected", spooled_pending=self._spool.pending())

    async def _went_down(self, exc: BaseException) -> None:
        was_up = self.stats.database_up
        self.stats.database_up = False
        self.stats.write_errors += 1
        await self._disconnect()
        delay = self._retry_delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
        self._next_attempt = time.monotonic() + delay
        self._retry_delay = min(self._retry_delay * 2, self._retry_max)
        if was_up:
            self._log.warning(
                "database unavailable; spooling records to disk",
                error=type(exc).__name__,
                detail=str(exc),
            )
        else:
            self._log.info(
                "database still unavailable", error=type(exc).__name__, retry_in=round(delay, 2)
            )

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), 2.0)
        except Exception:  # a broken connection cannot be closed politely
            conn.terminate()


def _fsync(fd: int) -> None:
    # OSError: the segment was rotated and closed meanwhile, and rotate() fsynced it.
    with contextlib.suppress(OSError):
        os.fsync(fd)
