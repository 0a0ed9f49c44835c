"""A running citizen line for end-to-end tests: menu, engine, FastAGI server, recorder.

Everything is real except Asterisk, which :class:`ivr.testing.FakeAsterisk` plays over
TCP. Records go to the test's PostgreSQL through the real write-behind recorder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from ivr.agi.server import AgiServer
from ivr.engine import CallEngine, EngineSettings, RoutedHook
from ivr.menu.store import MenuStore
from ivr.metrics import Metrics
from ivr.records.recorder import Recorder
from ivr.records.spool import Spool
from ivr.testing import FakeAsterisk

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Mexico_City")
MONDAY_9 = datetime(2026, 12, 7, 9, 0, tzinfo=TZ)
MONDAY_21 = datetime(2026, 12, 7, 21, 0, tzinfo=TZ)
KEY = b"test-key"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Line:
    url: str
    menu_path: Path
    store: MenuStore
    recorder: Recorder
    engine: CallEngine
    server: AgiServer
    clock: Clock
    closed: bool = field(default=False)

    def fake(self, **options: Any) -> FakeAsterisk:
        return FakeAsterisk("127.0.0.1", self.server.port, **options)

    async def finish(self, grace: float = 5.0) -> None:
        """Stop the server (``grace`` for calls in progress) and flush every record."""
        if self.closed:
            return
        self.closed = True
        await self.server.shutdown(grace)
        await self.recorder.close()

    async def call_row(self, uniqueid: str) -> dict[str, Any]:
        await self.finish()
        conn = await asyncpg.connect(self.url)
        try:
            row = await conn.fetchrow("SELECT * FROM calls WHERE uniqueid = $1", uniqueid)
            assert row is not None, f"no record for {uniqueid}"
            events = await conn.fetch(
                "SELECT kind, detail FROM call_events WHERE call_id = $1 ORDER BY seq",
                row["call_id"],
            )
        finally:
            await conn.close()
        data = dict(row)
        data["events"] = [(event["kind"], json.loads(event["detail"])) for event in events]
        return data


async def open_line(
    url: str,
    tmp_path: Path,
    *,
    at: datetime = MONDAY_9,
    max_calls: int = 100,
    peer_allowed: Any = None,
    reply_timeout: float = 5.0,
    metrics: Metrics | None = None,
    on_routed: RoutedHook | None = None,
) -> Line:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    store = MenuStore(config)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(url, timeout=2)

    recorder = Recorder(connect=connect, spool=Spool(tmp_path / "spool"), key=KEY)
    await recorder.start()
    clock = Clock(at)
    engine = CallEngine(
        store,
        recorder,
        EngineSettings(reply_timeout=reply_timeout, media_timeout=reply_timeout),
        clock=clock,
        metrics=metrics,
        on_routed=on_routed,
    )
    server = AgiServer(
        engine,
        host="127.0.0.1",
        port=0,
        peer_allowed=peer_allowed or (lambda _address: True),
        max_calls=max_calls,
        env_timeout=reply_timeout,
        reply_timeout=reply_timeout,
        on_turnaround=metrics.command_turnaround if metrics is not None else None,
    )
    if metrics is not None:
        metrics.watch_server(server)
        metrics.watch_recorder(recorder)
    await server.start()
    return Line(url, config / "menu.yaml", store, recorder, engine, server, clock)
