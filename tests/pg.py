"""A real PostgreSQL for the tests: embedded (pgserver), or IVR_TEST_DATABASE_URL.

One server per test session. Each test that asks for a database gets a fresh one,
copied from a template that already holds the migrated schema (about 0.1 s), so tests
never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ivr.records.embedded import start_embedded
from ivr.records.migrate import migrate

TEST_URL_VARIABLE = "IVR_TEST_DATABASE_URL"
TEMPLATE = "ivr_test_template"


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class PgTestServer:
    """The session's PostgreSQL and the databases made on it."""

    def __init__(self, url: str, handle: Any = None) -> None:
        self.url = url
        self.handle = handle  # pgserver's, when embedded
        self._template_ready = False

    @classmethod
    def start(cls, scratch: Path) -> PgTestServer:
        external = os.environ.get(TEST_URL_VARIABLE)
        if external:
            return cls(external)
        handle = start_embedded(scratch / "pgdata")
        return cls(str(handle.get_uri()), handle)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cleanup()  # the embedded server goes with its data
        elif self._template_ready:  # leave an external server as it was found
            asyncio.run(self.drop(with_database(self.url, TEMPLATE)))

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url)

    async def create(self, *, migrated: bool = True) -> str:
        """A new database (schema migrated unless ``migrated=False``); returns its URL."""
        name = f"ivr_test_{secrets.token_hex(6)}"
        conn = await self._admin()
        try:
            if migrated and not self._template_ready:
                await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
                await conn.execute(f"CREATE DATABASE {TEMPLATE}")
                template = await asyncpg.connect(with_database(self.url, TEMPLATE))
                try:
                    await migrate(template)
                finally:
                    await template.close()
                self._template_ready = True
            source = TEMPLATE if migrated else "template1"
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {source}")
        finally:
            await conn.close()
        return with_database(self.url, name)

    async def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        conn = await self._admin()
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()

    def create_sync(self, *, migrated: bool = True) -> str:
        return asyncio.run(self.create(migrated=migrated))

    def drop_sync(self, url: str) -> None:
        asyncio.run(self.drop(url))


class PrivateServer:
    """An embedded PostgreSQL of a test's own, which the test may stop and start again."""

    def __init__(self, pgdata: Path) -> None:
        self.handle = start_embedded(pgdata)
        self.url = str(self.handle.get_uri())

    def kill(self) -> None:
        """Stop the server the hard way (``pg_ctl stop -m immediate``: like a crash)."""
        # pgserver's own pg_ctl wrapper (runs it as the server's system user)
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # noqa: PLC0415

        pg_ctl(
            ["-w", "-m", "immediate", "stop"],
            pgdata=self.handle.pgdata,
            user=self.handle.system_user,
        )

    def restart(self) -> None:
        self.handle.ensure_postgres_running()
        self.url = str(self.handle.get_uri())

    def cleanup(self) -> None:
        self.handle.cleanup()
