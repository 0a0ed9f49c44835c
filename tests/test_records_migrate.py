"""Schema migrations against a real PostgreSQL (ivr.records.migrate)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ivr.records.migrate import Migration, MigrationError, available_migrations, migrate


async def tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


def test_migrations_are_numbered_and_found() -> None:
    found = available_migrations()
    assert found, "no migration files packaged"
    assert [m.version for m in found] == sorted({m.version for m in found})
    assert found[0].name == "calls"


async def test_first_migrate_creates_the_schema_and_the_second_is_a_no_op(
    empty_database_url: str,
) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        applied = await migrate(conn)
        assert [m.version for m in applied] == [m.version for m in available_migrations()]
        assert {"calls", "call_events", "ivr_schema_migrations"} <= await tables(conn)
        history = await conn.fetch("SELECT version, checksum FROM ivr_schema_migrations")
        again = await migrate(conn)
        assert again == []
        assert await conn.fetch("SELECT version, checksum FROM ivr_schema_migrations") == history
    finally:
        await conn.close()


async def test_two_migrators_at_once_apply_each_migration_once(empty_database_url: str) -> None:
    first = await asyncpg.connect(empty_database_url)
    second = await asyncpg.connect(empty_database_url)
    try:
        results = await asyncio.gather(migrate(first), migrate(second))
        applied = sorted(len(result) for result in results)
        assert applied == [0, len(available_migrations())]
        count = await first.fetchval("SELECT count(*) FROM ivr_schema_migrations")
        assert count == len(available_migrations())
    finally:
        await first.close()
        await second.close()


async def test_an_edited_applied_migration_is_refused(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn)
        edited = tuple(
            Migration(m.version, m.name, m.sql + "\n-- edited") for m in available_migrations()
        )
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, edited)
    finally:
        await conn.close()


async def test_a_newer_database_is_refused(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO ivr_schema_migrations (version, name, checksum) "
            "VALUES (9999, 'future', 'x')"
        )
        with pytest.raises(MigrationError, match=r"9999_future.*newer version"):
            await migrate(conn)
    finally:
        await conn.close()
