"""One FastAGI session on asyncio: the sans-IO protocol plus a socket and timeouts.

Like an asyncpg connection: one command in flight, enforced (a second concurrent
:meth:`AgiSession.command` raises instead of queueing, because Asterisk would abort
the first); every wait has a timeout; a lost connection fails the pending command
with its cause. ``HANGUP`` lines are remembered in :attr:`AgiSession.hung_up` and never
taken for a reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from ivr.agi.protocol import (
    NEED_DATA,
    AgiConnection,
    Closed,
    Environment,
    ErrorReply,
    Event,
    HangupLine,
    LocalProtocolError,
    ProtocolError,
    Reply,
)

__all__ = [
    "AgiError",
    "AgiSession",
    "AgiTimeoutError",
    "ChannelGoneError",
    "CommandError",
]

READ_SIZE: Final = 65536


class AgiError(Exception):
    """Base of everything a session raises about the peer."""


class ChannelGoneError(AgiError):
    """The call is over: the connection closed, or Asterisk refused a dead channel (511)."""


class CommandError(AgiError):
    """Asterisk refused the command: 510 (unknown), 520 (usage), 503... (a bug of ours)."""

    def __init__(self, reply: ErrorReply, command: bytes) -> None:
        shown = command.decode("utf-8", "replace").rstrip("\n")
        super().__init__(f"{reply.code} {reply.message} (command: {shown[:120]})")
        self.reply = reply


class AgiTimeoutError(AgiError):
    """No reply (or no environment) within the allowed time."""


class AgiSession:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        reply_timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = AgiConnection()
        self.reply_timeout = reply_timeout
        self._busy = False
        self._closed = False
        self._replied_at: float | None = None
        # The reply timeout: a deadline per command, but one timer per session, re-armed
        # only when it fires early (see _arm): arming asyncio.timeout() for every command
        # cost more than the rest of the command's bookkeeping.
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Task[object] | None = None
        self._timed_out = False
        self.commands = 0
        self.on_turnaround: Callable[[float], None] | None = None
        """Called with the seconds from a reply's arrival to the next command's sending:
        the time the engine took to decide, the figure the line's latency hangs on."""

    @property
    def hung_up(self) -> bool:
        """Asterisk said ``HANGUP`` (the caller is gone; commands may still be answered)."""
        return self._conn.hung_up

    async def _next(self) -> Event:
        """The next event, reading from the socket as needed (the caller bounds the wait)."""
        while True:
            event = self._conn.next_event()
            if event is not NEED_DATA:
                return event
            try:
                data = await self._reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                data = b""
            self._conn.receive_data(data)

    async def read_environment(self, timeout: float) -> Environment:  # noqa: ASYNC109 - per-call limits, as asyncpg
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await self._next()
                    if isinstance(event, Environment):
                        return event
                    if isinstance(event, Closed):
                        self._closed = True
                        raise ChannelGoneError("connection closed before the AGI environment ended")
        except TimeoutError:
            raise AgiTimeoutError("no AGI environment from Asterisk in time") from None

    async def command(self, line: bytes, timeout: float | None = None) -> Reply:  # noqa: ASYNC109
        """Send one command and return its ``200`` reply (one deadline for the whole wait)."""
        if self._busy:
            raise LocalProtocolError("another AGI command is in flight on this call")
        if self._closed:
            raise ChannelGoneError("the AGI connection is closed")
        self._busy = True
        try:
            self._writer.write(self._conn.send(line))
            self.commands += 1
            if self._replied_at is not None and self.on_turnaround is not None:
                self.on_turnaround(time.perf_counter() - self._replied_at)
            self._arm(self.reply_timeout if timeout is None else timeout)
            return await self._reply(line)
        except asyncio.CancelledError:
            if self._timed_out:
                self._timed_out = False
                task = asyncio.current_task()
                if task is not None and task.uncancel() == 0:
                    raise AgiTimeoutError("no answer from Asterisk in time") from None
            raise
        finally:
            self._waiting = None
            self._busy = False

    def _arm(self, timeout: float) -> None:
        """Give the command in flight ``timeout`` seconds from now."""
        self._deadline = self._loop.time() + timeout
        self._waiting = asyncio.current_task()
        timer = self._timer
        if timer is None or timer.when() > self._deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._waiting is None or self._waiting.done():
            return  # between commands: the next one arms its own deadline
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self._timed_out = True
        self._waiting.cancel()

    async def _reply(self, line: bytes) -> Reply:
        while True:
            event = await self._next()
            if isinstance(event, Reply):
                self._take_unsolicited()
                self._replied_at = time.perf_counter()
                return event
            if isinstance(event, ErrorReply):
                if event.code == 511:
                    raise ChannelGoneError(event.message)
                raise CommandError(event, line)
            if isinstance(event, Closed):
                self._closed = True
                raise ChannelGoneError("Asterisk closed the AGI connection")
            # HangupLine or Trying: the final reply is still to come.

    def _take_unsolicited(self) -> None:
        """Read what already arrived after a reply (a ``HANGUP``, EOF) without waiting.

        Asterisk often sends ``HANGUP`` in the same read as the reply of the command the
        hangup interrupted: noticing it now spares a command that would only get 511.
        """
        while True:
            event = self._conn.next_event()
            if event is NEED_DATA or isinstance(event, HangupLine):
                if event is NEED_DATA:
                    return
                continue
            if isinstance(event, Closed):
                self._closed = True
                return
            raise ProtocolError(f"unsolicited {type(event).__name__} after a reply")

    async def fail(self) -> None:
        """Tell Asterisk to end the AGI with ``AGISTATUS=FAILURE`` (the dialplan's fallback)."""
        if not self._closed and not self._writer.is_closing():
            self._writer.write(b"failure\n")

    async def close(self) -> None:
        """Half-close and release the socket; safe to call twice."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        writer = self._writer
        if writer.is_closing():
            return
        try:
            if writer.can_write_eof():
                writer.write_eof()
            writer.close()
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            writer.transport.abort()
