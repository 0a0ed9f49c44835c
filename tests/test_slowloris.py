"""Slowloris peers against the FastAGI server: they time out and never starve real calls.

A slowloris peer opens a FastAGI connection and then sends nothing, or the environment
a byte at a time. Asterisk writes the whole environment as soon as it connects, so the
server counts a connection as a call only once its environment has arrived; until then
it is a handshake, bounded by one total deadline (``env_timeout``) and by a cap on how
many may be in progress (``max_handshakes``). Real calls go through the real engine and
recorder, placed by :class:`ivr.testing.FakeAsterisk`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from engine_line import Line, open_line
from prometheus_client import CollectorRegistry
from waiting import eventually

from ivr.metrics import Metrics
from ivr.testing import CAPTURED_ENVIRONMENT, ScriptedCaller, environment_block

ENV = environment_block(CAPTURED_ENVIRONMENT)
HANG_GUARD = 15.0  # seconds before a wait is called a hang (never a speed goal)


@dataclass
class Peer:
    """One slowloris connection: sends ``drip`` bytes of the environment, one at a time
    every ``interval`` seconds, and records what the server said and when it closed."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    drip: bytes = b""
    interval: float = 0.05
    sent: int = 0
    received: bytearray = field(default_factory=bytearray)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, port: int, drip: bytes = b"", interval: float = 0.05) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = cls(reader, writer, drip, interval)
        peer.tasks.append(asyncio.create_task(peer._read()))
        if drip:
            peer.tasks.append(asyncio.create_task(peer._drip()))
        return peer

    async def _read(self) -> None:
        try:
            while data := await self.reader.read(4096):
                self.received += data
        except ConnectionError:
            pass
        finally:
            self.closed.set()

    async def _drip(self) -> None:
        with contextlib.suppress(ConnectionError):
            for byte in self.drip:
                if self.closed.is_set():
                    return
                self.writer.write(bytes([byte]))
                await self.writer.drain()
                self.sent += 1
                await asyncio.sleep(self.interval)

    async def wait_closed(self) -> None:
        async with asyncio.timeout(HANG_GUARD):
            await self.closed.wait()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.writer.transport.abort()


@dataclass
class Stage:
    line: Line
    metrics: Metrics
    peers: list[Peer] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.line.server.port

    def value(self, name: str, labels: dict[str, str]) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    async def slowloris(self, count: int, drip: bytes = b"", interval: float = 0.05) -> None:
        """Open ``count`` peers, one after another, each counted as a handshake before the
        next one connects (so "oldest" is well defined)."""
        server = self.line.server

        def seen() -> int:
            return server.stats.refused_handshakes + server.pending_handshakes

        for _ in range(count):
            before = seen()
            self.peers.append(await Peer.open(self.port, drip, interval))
            await eventually(lambda: seen() > before)  # noqa: B023 - awaited at once

    async def real_calls(self, count: int, concurrency: int) -> list[str]:
        """Place ``count`` calls pressing "2 1", at most ``concurrency`` at once; their
        ``IVR_OUTCOME`` values (``FAILURE`` when the server refused one)."""
        gate = asyncio.Semaphore(concurrency)

        async def one() -> str:
            async with gate:
                result = await self.line.fake().call(ScriptedCaller(answers=["2", "1"]))
            if result.agi_status == "FAILURE":
                return "FAILURE"
            return result.variables.get("IVR_OUTCOME", "")

        async with asyncio.timeout(60):
            return list(await asyncio.gather(*(one() for _ in range(count))))


@pytest.fixture
async def stage(database_url: str, tmp_path: Path) -> AsyncIterator[Stage]:
    metrics = Metrics(CollectorRegistry())
    line = await open_line(database_url, tmp_path, max_calls=4, metrics=metrics)
    staged = Stage(line, metrics)
    try:
        yield staged
    finally:
        for peer in staged.peers:
            await peer.close()
        await line.finish()


async def test_more_silent_peers_than_max_calls_do_not_starve_real_calls(stage: Stage) -> None:
    """With ``max_calls=4``, eight silent peers and four that drip the environment are
    all still connected while 40 real calls (4 at a time) are placed: every real call
    is routed and none is refused for capacity. Before the fix the twelve handshakes
    took the four call slots and every real call got ``failure``."""
    server = stage.line.server
    server.env_timeout = 120.0  # they must outlive the real calls, on any machine
    await stage.slowloris(8)
    await stage.slowloris(4, drip=ENV, interval=0.5)
    assert server.pending_handshakes == 12
    assert server.active_calls == 0

    outcomes = await stage.real_calls(40, concurrency=4)

    assert outcomes == ["routed"] * 40
    assert server.pending_handshakes == 12  # present the whole time, never counted as calls
    assert not any(peer.closed.is_set() for peer in stage.peers)
    assert (server.stats.accepted, server.stats.completed, server.stats.refused_busy) == (40, 40, 0)

    await stage.line.server.shutdown(grace=1.0)  # handshakes are handed back at once
    for peer in stage.peers:
        await peer.wait_closed()
        assert bytes(peer.received) == b"failure\n"
    assert server.stats.refused_shutdown == 12
    assert server.pending_handshakes == 0


async def test_silent_and_dripping_peers_are_closed_after_the_total_env_timeout(
    stage: Stage,
) -> None:
    """``env_timeout`` bounds the whole environment, not each read: a peer that sends a
    byte every 50 ms (the 700-byte environment would take 35 s) is closed after 0.5 s
    like a silent one. Every timeout is counted, in the stats and in
    ``ivr_agi_sessions_total{result="env_timeout"}``; none is a call."""
    server = stage.line.server
    server.env_timeout = 0.5
    stage.peers.extend(
        await asyncio.gather(
            *(Peer.open(stage.port) for _ in range(3)),
            *(Peer.open(stage.port, drip=ENV, interval=0.05) for _ in range(3)),
        )
    )
    for peer in stage.peers:
        await peer.wait_closed()
        assert peer.sent < len(ENV)  # closed while it was still dripping
        assert bytes(peer.received) == b""  # a timed-out peer is closed without a word
    await eventually(lambda: server.stats.env_timeouts == 6)
    assert server.pending_handshakes == 0
    assert (server.stats.accepted, server.stats.bad_sessions) == (0, 0)
    assert stage.value("ivr_agi_sessions_total", {"result": "env_timeout"}) == 6.0
    assert stage.value("ivr_agi_sessions_total", {"result": "bad_session"}) == 0.0
    assert server.active_calls == 0

    # And the line still serves.
    assert await stage.real_calls(3, concurrency=3) == ["routed"] * 3


async def test_handshakes_beyond_the_cap_close_the_oldest(stage: Stage) -> None:
    """At most ``max_handshakes`` connections wait for their environment: the ninth
    silent peer against a cap of five closes the oldest ones (with ``failure``, as a
    refused call), counted in ``ivr_agi_refused_total{reason="handshakes"}``. A real
    call arriving at the cap is served; it evicts the oldest silent peer instead."""
    server = stage.line.server
    server.env_timeout = 120.0
    server.max_handshakes = 5
    await stage.slowloris(8)
    oldest, newest = stage.peers[:3], stage.peers[3:]
    for peer in oldest:
        await peer.wait_closed()
        assert bytes(peer.received) == b"failure\n"
    assert server.pending_handshakes == 5
    assert not any(peer.closed.is_set() for peer in newest)
    assert server.stats.refused_handshakes == 3

    assert await stage.real_calls(1, concurrency=1) == ["routed"]
    await newest[0].wait_closed()
    assert not any(peer.closed.is_set() for peer in newest[1:])
    assert server.stats.refused_handshakes == 4
    assert server.pending_handshakes == 4
    assert stage.value("ivr_agi_refused_total", {"reason": "handshakes"}) == 4.0
    assert stage.value("ivr_agi_refused_total", {"reason": "busy"}) == 0.0
