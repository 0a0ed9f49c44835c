"""Shared fixtures: the session's PostgreSQL and a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg import PgTestServer


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgTestServer]:
    server = PgTestServer.start(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture
def database_url(pg_server: PgTestServer) -> Iterator[str]:
    """A fresh database with the migrated schema."""
    url = pg_server.create_sync()
    yield url
    pg_server.drop_sync(url)


@pytest.fixture
def empty_database_url(pg_server: PgTestServer) -> Iterator[str]:
    """A fresh database with no schema at all."""
    url = pg_server.create_sync(migrated=False)
    yield url
    pg_server.drop_sync(url)
