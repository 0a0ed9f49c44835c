"""One FastAGI session on asyncio: the sans-IO protocol plus a socket and timeouts.

Like an asyncpg connection: one command in flight, enforced (a second concurrent
:meth:`AgiSession.command` raises instead of queueing, because Asterisk would abort
the first); every wait has a timeout; a lost connection fails the pending command
with its cause. ``HANGUP`` lines are remembered in :attr:`AgiSession.hung_up` and never
taken for a reply.
"""

from __future__ import annotations

import asyncio
from typing import Final

from ivr.agi.protocol import (
    NEED_DATA,
    AgiConnection,
    Closed,
    Environment,
    ErrorReply,
    HangupLine,
    LocalProtocolError,
    ProtocolError,
    Reply,
    Trying,
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
        self.commands = 0

    @property
    def hung_up(self) -> bool:
        """Asterisk said ``HANGUP`` (the caller is gone; commands may still be answered)."""
        return self._conn.hung_up

    async def _next(self, deadline: float) -> object:
        loop = asyncio.get_running_loop()
        while True:
            event = self._conn.next_event()
            if event is not NEED_DATA:
                return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AgiTimeoutError("no answer from Asterisk in time")
            try:
                async with asyncio.timeout(remaining):
                    data = await self._reader.read(READ_SIZE)
            except TimeoutError:
                raise AgiTimeoutError("no answer from Asterisk in time") from None
            except (ConnectionError, OSError):
                data = b""
            self._conn.receive_data(data)

    async def read_environment(self, timeout: float) -> Environment:  # noqa: ASYNC109 - per-call limits, as asyncpg
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            event = await self._next(deadline)
            if isinstance(event, Environment):
                return event
            if isinstance(event, Closed):
                self._closed = True
                raise ChannelGoneError("connection closed before the AGI environment ended")

    async def command(self, line: bytes, timeout: float | None = None) -> Reply:  # noqa: ASYNC109
        """Send one command and return its ``200`` reply."""
        if self._busy:
            raise LocalProtocolError("another AGI command is in flight on this call")
        if self._closed:
            raise ChannelGoneError("the AGI connection is closed")
        self._busy = True
        try:
            self._writer.write(self._conn.send(line))
            self.commands += 1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + (self.reply_timeout if timeout is None else timeout)
            while True:
                event = await self._next(deadline)
                if isinstance(event, Reply):
                    self._take_unsolicited()
                    return event
                if isinstance(event, ErrorReply):
                    if event.code == 511:
                        raise ChannelGoneError(event.message)
                    raise CommandError(event, line)
                if isinstance(event, Closed):
                    self._closed = True
                    raise ChannelGoneError("Asterisk closed the AGI connection")
                if isinstance(event, HangupLine | Trying):
                    continue
        finally:
            self._busy = False

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
