"""The FastAGI server: accepts Asterisk's connections and runs one handler per call.

Lifecycle after uvicorn's: :meth:`AgiServer.start` binds and serves; on shutdown
:meth:`AgiServer.shutdown` stops accepting at once, lets calls in progress finish for
up to ``grace`` seconds, then ends the rest by writing ``failure`` (Asterisk ends the
AGI with ``AGISTATUS=FAILURE`` and the dialplan's fallback queues the caller) and
cancelling their handlers, which record the call before they go.

Connections from peers outside the allow-list are closed without a byte and counted.

A connection becomes a *call* only once its whole environment block has arrived
(Asterisk writes it in one go as soon as it connects). Until then it is a *handshake*:
handshakes do not count against ``max_calls``, so peers that connect and then send
nothing, or a byte now and then (slowloris), cannot starve real calls. Handshakes have
their own bounds: one total deadline, ``env_timeout``, for the whole environment (not
per read), and at most ``max_handshakes`` in progress, beyond which the oldest is closed
to make room. Both are counted (:attr:`ServerStats.env_timeouts`,
:attr:`ServerStats.refused_handshakes`). Calls beyond ``max_calls`` get ``failure`` as
soon as their environment is read (the dialplan's fallback queues them) and are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from ivr.agi.protocol import Environment, ProtocolError
from ivr.agi.session import AgiError, AgiSession, AgiTimeoutError
from ivr.logging import get_logger

__all__ = ["AgiServer", "Handler", "ServerStats"]

Handler = Callable[[AgiSession, Environment], Awaitable[None]]
PeerCheck = Callable[[str], bool]
_CLOSE_TIMEOUT: Final = 2.0
BACKLOG: Final = 4096
MAX_PEERS_TRACKED: Final = 1000
# Handshakes (connections whose environment has not arrived yet) in progress at once. A
# real Asterisk's handshake lasts well under a millisecond, so even a burst of a
# thousand calls rarely has more than a few in progress; only silent peers pile up.
MAX_HANDSHAKES: Final = 1000


@dataclass
class ServerStats:
    accepted: int = 0
    refused_peers: int = 0
    refused_busy: int = 0
    refused_shutdown: int = 0
    bad_sessions: int = 0
    env_timeouts: int = 0  # handshakes whose environment did not arrive within env_timeout
    refused_handshakes: int = 0  # handshakes closed because max_handshakes were in progress
    handler_errors: int = 0
    completed: int = 0
    ended_by_shutdown: int = 0
    peers_refused: dict[str, int] = field(default_factory=dict)


@dataclass(eq=False)
class _Active:
    session: AgiSession
    task: asyncio.Task[None]


@dataclass(eq=False)
class _Handshake:
    """A connection whose environment is still being read."""

    session: AgiSession
    writer: asyncio.StreamWriter
    closed_for: str | None = None  # "busy" (evicted) or "shutdown" once we closed it

    def close(self, reason: str) -> None:
        """Hand it back (``failure``) and close it; its reader then sees the EOF."""
        self.closed_for = reason
        if not self.writer.is_closing():
            self.writer.write(b"failure\n")
            self.writer.close()


class AgiServer:
    def __init__(  # noqa: PLR0913 - knobs, all keyword-only
        self,
        handler: Handler,
        *,
        host: str,
        port: int,
        peer_allowed: PeerCheck,
        max_calls: int,
        env_timeout: float,
        reply_timeout: float,
        on_turnaround: Callable[[float], None] | None = None,
        max_handshakes: int = MAX_HANDSHAKES,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.peer_allowed = peer_allowed
        self.max_calls = max_calls
        self.env_timeout = env_timeout
        self.reply_timeout = reply_timeout
        self.on_turnaround = on_turnaround
        self.max_handshakes = max_handshakes
        self.stats = ServerStats()
        self._active: set[_Active] = set()
        self._handshakes: dict[_Handshake, None] = {}  # insertion order: oldest first
        self._server: asyncio.Server | None = None
        self._stopping = False
        self._log = get_logger("ivr.agi")

    @property
    def active_calls(self) -> int:
        """Calls being served now (connections whose environment has arrived)."""
        return len(self._active)

    @property
    def pending_handshakes(self) -> int:
        """Connections still waiting for their environment."""
        return len(self._handshakes)

    @property
    def listening(self) -> bool:
        """Accepting new calls (bound, and not shutting down)."""
        return self._server is not None and self._server.is_serving() and not self._stopping

    async def start(self) -> None:
        # A burst of calls must not overflow the accept queue (asyncio defaults to 100):
        # a dropped SYN costs the caller a 1 s, then 3 s, retransmission.
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port, backlog=BACKLOG
        )
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._log.info("FastAGI listening", host=self.host, port=self.port)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not self.peer_allowed(address):
            self._refuse_peer(address)
            writer.transport.abort()
            return
        session = AgiSession(reader, writer, reply_timeout=self.reply_timeout)
        session.on_turnaround = self.on_turnaround
        try:
            if self._stopping:
                self.stats.refused_shutdown += 1
                await self._refuse(session)
                return
            env = await self._handshake(session, writer)
            if env is None:
                return
            if self._stopping:
                self.stats.refused_shutdown += 1
                await self._refuse(session)
                return
            if len(self._active) >= self.max_calls:
                self.stats.refused_busy += 1
                self._log.warning("FastAGI call refused: at capacity", max_calls=self.max_calls)
                await self._refuse(session)
                return
            task = asyncio.current_task()
            if task is None:  # pragma: no cover - start_server always runs us in a task
                raise RuntimeError("FastAGI connection handled outside a task")
            entry = _Active(session, task)
            self._active.add(entry)
            self.stats.accepted += 1
            try:
                await self._serve(session, env)
            finally:
                self._active.discard(entry)
        finally:
            await session.close()

    async def _handshake(
        self, session: AgiSession, writer: asyncio.StreamWriter
    ) -> Environment | None:
        """The environment, read within ``env_timeout`` in all; None if the connection
        was dropped instead (timed out, broken, evicted, or shutting down)."""
        if len(self._handshakes) >= self.max_handshakes:
            oldest = next(iter(self._handshakes))
            del self._handshakes[oldest]
            oldest.close("busy")
        entry = _Handshake(session, writer)
        self._handshakes[entry] = None
        structlog.contextvars.clear_contextvars()
        try:
            env = await session.read_environment(self.env_timeout)
        except AgiTimeoutError:
            self.stats.env_timeouts += 1
            count = self.stats.env_timeouts
            if count & (count - 1) == 0:  # 1st, 2nd, 4th...: a flood must not flood the log
                self._log.warning(
                    "FastAGI connection sent no environment in time: closed",
                    env_timeout=self.env_timeout,
                    timeouts=count,
                )
            return None
        except (AgiError, ProtocolError) as exc:
            if entry.closed_for is not None:
                self._count_closed(entry.closed_for)
                return None
            self.stats.bad_sessions += 1
            self._log.warning("FastAGI session dropped before the call", error=str(exc)[:200])
            return None
        finally:
            self._handshakes.pop(entry, None)
        if entry.closed_for is not None:  # the environment won the race with the close
            self._count_closed(entry.closed_for)
            return None
        return env

    def _count_closed(self, reason: str) -> None:
        if reason == "shutdown":
            self.stats.refused_shutdown += 1
            return
        self.stats.refused_handshakes += 1
        count = self.stats.refused_handshakes
        if count & (count - 1) == 0:
            self._log.warning(
                "FastAGI handshake closed: too many connections without an environment",
                max_handshakes=self.max_handshakes,
                closed=count,
            )

    def _refuse_peer(self, address: str) -> None:
        """Count a refused peer; log it at its 1st, 2nd, 4th, 8th... attempt (a scan or a
        misconfigured PBX must not flood the log, nor the table grow without bound)."""
        self.stats.refused_peers += 1
        refused = self.stats.peers_refused
        key = address if address in refused or len(refused) < MAX_PEERS_TRACKED else "other"
        count = refused[key] = refused.get(key, 0) + 1
        if count & (count - 1) == 0:
            self._log.warning(
                "FastAGI connection refused: peer not in IVR_AGI_ALLOWED_PEERS",
                peer=key,
                attempts=count,
            )

    async def _refuse(self, session: AgiSession) -> None:
        await session.fail()
        await session.close()

    async def _serve(self, session: AgiSession, env: Environment) -> None:
        try:
            await self.handler(session, env)
        except Exception:
            # A bug in the handler must not leave Asterisk waiting: hand the call back.
            self.stats.handler_errors += 1
            self._log.exception("FastAGI handler failed; call handed back to the dialplan")
            await session.fail()
            return
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # We cancelled it to end the call at shutdown: that is how it ends, not an error.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            self.stats.ended_by_shutdown += 1
            return
        self.stats.completed += 1

    async def shutdown(self, grace: float, force: asyncio.Event | None = None) -> None:
        """Stop accepting; give calls ``grace`` seconds (or until ``force`` is set); hand
        the rest to the dialplan."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        # Handshakes are not calls yet: hand them back at once.
        for handshake in list(self._handshakes):
            handshake.close("shutdown")
        self._handshakes.clear()
        pending = {entry.task for entry in self._active}
        if pending:
            self._log.info("waiting for calls in progress", calls=len(pending), grace=grace)
            pending = await _wait_until(pending, grace, force)
            if pending:
                self._log.warning(
                    "grace period over: handing calls back to the dialplan", calls=len(pending)
                )
                for entry in list(self._active):
                    await entry.session.fail()
                    entry.task.cancel()
                await asyncio.wait(pending, timeout=_CLOSE_TIMEOUT)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await self._server.wait_closed()
        self._log.info("FastAGI stopped", **_counts(self.stats))


async def _wait_until(
    tasks: set[asyncio.Task[None]], grace: float, force: asyncio.Event | None
) -> set[asyncio.Task[None]]:
    """Wait for ``tasks`` up to ``grace`` seconds or until ``force`` is set; the rest."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    forced = asyncio.ensure_future(force.wait()) if force is not None else None
    try:
        while tasks and loop.time() < deadline and not (force is not None and force.is_set()):
            waiting: set[asyncio.Future[Any]] = set(tasks)
            if forced is not None:
                waiting.add(forced)
            await asyncio.wait(
                waiting, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
            )
            tasks = {task for task in tasks if not task.done()}
    finally:
        if forced is not None:
            forced.cancel()
    return tasks


def _counts(stats: ServerStats) -> dict[str, int]:
    return {
        "accepted": stats.accepted,
        "completed": stats.completed,
        "ended_by_shutdown": stats.ended_by_shutdown,
        "refused_peers": stats.refused_peers,
        "refused_busy": stats.refused_busy,
        "refused_handshakes": stats.refused_handshakes,
        "env_timeouts": stats.env_timeouts,
        "bad_sessions": stats.bad_sessions,
    }
