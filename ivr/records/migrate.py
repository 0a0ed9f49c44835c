"""Versioned SQL migrations, applied once, safely from several instances at a time.

Migrations are the ``NNNN_name.sql`` files next to this module. :func:`migrate` runs
every pending one in a single transaction under a PostgreSQL advisory lock, so two
services starting together apply each file once: the second waits for the lock, then
finds nothing to do. An applied file whose text changed since is refused, as is a
database whose schema is newer than this release.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

__all__ = ["LOCK_KEY", "Migration", "MigrationError", "available_migrations", "migrate"]

# pg_advisory_xact_lock takes a bigint; this one is "ivr-migr" in ASCII.
LOCK_KEY = int.from_bytes(b"ivr-migr", "big") & 0x7FFF_FFFF_FFFF_FFFF
_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS ivr_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The database's schema history does not match this release's migrations."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def available_migrations() -> tuple[Migration, ...]:
    """This release's migrations, in version order."""
    found: list[Migration] = []
    for entry in resources.files("ivr.records.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        found.append(
            Migration(
                version=int(match["version"]),
                name=match["name"],
                sql=entry.read_text(encoding="utf-8"),
            )
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return tuple(found)


async def migrate(
    conn: asyncpg.Connection, migrations: tuple[Migration, ...] | None = None
) -> list[Migration]:
    """Apply the pending migrations; return those applied (empty when up to date)."""
    wanted = available_migrations() if migrations is None else migrations
    known = {m.version: m for m in wanted}
    applied_now: list[Migration] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM ivr_schema_migrations")
        done = {int(row["version"]): (str(row["name"]), str(row["checksum"])) for row in rows}
        for version, (name, checksum) in sorted(done.items()):
            migration = known.get(version)
            if migration is None:
                raise MigrationError(
                    f"the database has migration {version:04d}_{name}, which this release "
                    "does not know: it was migrated by a newer version of the service"
                )
            if migration.checksum != checksum:
                raise MigrationError(
                    f"migration {version:04d}_{name} changed after it was applied; "
                    "add a new migration instead of editing an applied one"
                )
        for migration in wanted:
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO ivr_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration)
    return applied_now
