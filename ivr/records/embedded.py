"""Which PostgreSQL to use: ``IVR_DATABASE_URL``, or a real one embedded under the data dir.

The embedded server is `pgserver <https://pypi.org/project/pgserver/>`_: PostgreSQL's own
binaries shipped in a wheel, started on a Unix socket inside ``data_dir/pgdata`` (no TCP
port). Several processes on one machine (``ivr serve`` and ``ivr report``) share it;
the last one to leave stops it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ivr.settings import Settings

__all__ = ["DatabaseUnavailableError", "database_url", "start_embedded"]

PGDATA = "pgdata"

# pgserver logs every pg_ctl command line and its output at INFO; its warnings and errors
# (a server that will not start, with its log) still come through.
logging.getLogger("pgserver").setLevel(logging.WARNING)


class DatabaseUnavailableError(Exception):
    """No database could be reached or started."""


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers, CI).
        warnings.simplefilter("ignore")
        try:
            import pgserver  # noqa: PLC0415 - only the embedded mode needs it
        except ImportError as exc:
            raise DatabaseUnavailableError(
                "the embedded PostgreSQL needs the pgserver package "
                "(pip install pgserver), or set IVR_DATABASE_URL"
            ) from exc
    return pgserver


def start_embedded(pgdata: Path) -> Any:
    """Start (or join) the embedded server in ``pgdata``; returns pgserver's handle."""
    pgserver = _pgserver()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise DatabaseUnavailableError(
            f"cannot start the embedded PostgreSQL in {pgdata}: {exc} (its log is {pgdata / 'log'})"
        ) from exc


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The URL to connect to, starting the embedded server for the block if needed."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    server = start_embedded((settings.data_dir / PGDATA).resolve())
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
