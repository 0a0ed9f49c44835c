"""The records side of ``ivr serve``: database, migrations, key, spool and recorder.

:func:`open_recorder` is the one place that wires them together. It starts the embedded
PostgreSQL when no ``IVR_DATABASE_URL`` is set, applies migrations, and yields a running
:class:`~ivr.records.recorder.Recorder`. A database that cannot be reached at start does
not stop the service (records go to the spool until it answers); a schema newer than
this release does, since writing into it could corrupt it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import asyncpg

from ivr.logging import get_logger
from ivr.records.embedded import PGDATA, start_embedded
from ivr.records.hashing import KEY_FILE, load_or_create_key
from ivr.records.migrate import migrate
from ivr.records.recorder import Recorder
from ivr.records.spool import Spool
from ivr.settings import Settings

__all__ = ["SPOOL_DIR", "open_recorder"]

SPOOL_DIR: Final = "spool"
CONNECT_TIMEOUT: Final = 5.0


def _caller_key(settings: Settings) -> bytes:
    key = settings.caller_hash_key()
    if key is not None:
        return key
    if not settings.uses_embedded_database():
        get_logger("ivr.records").warning(
            "no IVR_CALLER_HASH_SECRET: using a key generated in the data dir; every "
            "instance sharing this database needs the same key to count repeat callers",
            key_file=str(settings.data_dir / KEY_FILE),
        )
    return load_or_create_key(settings.data_dir)


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[str]:
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    pgdata = (settings.data_dir / PGDATA).resolve()
    server = await asyncio.to_thread(start_embedded, pgdata)
    try:
        yield str(server.get_uri())
    finally:
        await asyncio.to_thread(server.cleanup)


async def _first_migration(url: str) -> None:
    """Migrate at start; raise MigrationError, log (and go on) if the database is down."""
    log = get_logger("ivr.records")
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning(
            "database unreachable at start; records will be spooled until it answers",
            error=type(exc).__name__,
            detail=str(exc),
        )
        return
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    if applied:
        log.info("database migrated", applied=[f"{m.version:04d}_{m.name}" for m in applied])


@asynccontextmanager
async def open_recorder(settings: Settings) -> AsyncIterator[Recorder]:
    """A started recorder for the service; closing flushes (or spools) every record."""
    async with _database(settings) as url:
        await _first_migration(url)

        async def connect() -> asyncpg.Connection:
            conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
            try:
                await migrate(conn)  # one locked query when up to date
            except BaseException:
                await conn.close()
                raise
            return conn

        recorder = Recorder(
            connect=connect,
            spool=Spool(settings.data_dir / SPOOL_DIR),
            key=_caller_key(settings),
            max_queue=settings.records_queue_size,
        )
        await recorder.start()
        get_logger("ivr.records").info(
            "records ready",
            database=settings.database_url_for_logs(),
            spool=str(settings.data_dir / SPOOL_DIR),
        )
        try:
            yield recorder
        finally:
            await recorder.close()
