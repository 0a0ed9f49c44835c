"""A fake Asterisk Manager Interface over TCP, byte for byte as Asterisk 22 speaks it.

Built from the wire captures in ``tests/captures/ami-*`` (Asterisk 22.10.1):

* the banner ``Asterisk Call Manager/11.0.0\\r\\n``, with no blank line after it;
* every line ends in ``\\r\\n`` and every message in an empty line;
* before Login, any other action gets ``Response: Error`` / ``Message: Permission
  denied`` and the connection stays open;
* a wrong secret gets ``Message: Authentication failed`` after a 1 s delay, then the
  connection is closed at once;
* ``Ping`` answers ``Ping: Pong`` and a ``Timestamp`` (no ActionID line when the action
  had none); ``Logoff`` answers ``Goodbye`` and closes;
* ``QueueStatus`` answers ``EventList: start``, then ``QueueParams``, ``QueueMember``
  and ``QueueEntry`` events with the ActionID as their *last* header and no
  Privilege/Timestamp/SystemName, then ``QueueStatusComplete`` with ``ListItems``;
* an unknown action gets ``Invalid/unknown command``.

Tests push event bytes with :meth:`FakeAmi.emit` (for instance the captured queue
event streams, with the call's ids substituted), can split a write at any byte to
exercise decoding across TCP reads, stop answering pings, and drop every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

__all__ = ["BANNER", "FakeAmi", "QueueEntry", "QueueMember", "message"]

BANNER: Final = b"Asterisk Call Manager/11.0.0\r\n"
FULLY_BOOTED: Final = (
    b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 203\r\nLastReload: 203\r\n"
    b"Status: Fully Booted\r\n\r\n"
)
_PONG_TIMESTAMP: Final = "1796413298.600638"


def message(*headers: tuple[str, str]) -> bytes:
    """One AMI message: ``Key: value\\r\\n`` lines and the empty line."""
    return b"".join(f"{key}: {value}\r\n".encode() for key, value in headers) + b"\r\n"


@dataclass
class QueueMember:
    name: str
    location: str
    status: int = 1  # AST_DEVICE_NOT_INUSE
    paused: bool = False
    in_call: bool = False


@dataclass
class QueueEntry:
    uniqueid: str
    channel: str
    wait: int = 0


@dataclass
class _Queue:
    members: list[QueueMember] = field(default_factory=list)
    entries: list[QueueEntry] = field(default_factory=list)


@dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    authenticated: bool = False
    events: bool = False
    # Asterisk writes each message whole: a reply never lands inside an event.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FakeAmi:
    def __init__(
        self,
        *,
        username: str = "ivr",
        secret: str = "fake-ami-secret",  # noqa: S107 - a test server's, never a real one
        login_delay: float = 1.0,
    ) -> None:
        self.username = username
        self.secret = secret
        self.login_delay = login_delay
        self.answer_pings = True
        self.refuse_queue_status = False  # as Asterisk does for a user without privilege
        self.queues: dict[str, _Queue] = {}
        self.actions: list[dict[str, str]] = []
        self.logins = 0
        self.failed_logins = 0
        self.connections = 0
        self._conns: set[_Conn] = set()
        self._server: asyncio.Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._logged_in = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- server lifecycle ------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    async def start(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        """Listen (again, on the same port after :meth:`stop` when ``port`` is None)."""
        self._host = host
        self._server = await asyncio.start_server(
            self._handle, host, self._port if port is None else port
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every connection (Asterisk going away)."""
        if self._server is not None:
            self._server.close()
        await self.drop()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def drop(self) -> None:
        """Reset every open connection."""
        for conn in list(self._conns):
            conn.writer.transport.abort()
        self._conns.clear()
        await asyncio.sleep(0)

    async def wait_logins(self, count: int, within: float = 10.0) -> None:
        async with asyncio.timeout(within), self._logged_in:
            await self._logged_in.wait_for(lambda: self.logins >= count)

    # --- queue state for QueueStatus ---------------------------------------------------

    def queue(self, name: str) -> _Queue:
        return self.queues.setdefault(name, _Queue())

    # --- events --------------------------------------------------------------------------

    async def emit(self, data: bytes, *, split_at: Iterable[int] = ()) -> None:
        """Send event bytes to every logged-in connection that asked for events.

        ``split_at`` cuts the write at those byte offsets, with a pause between the
        pieces, so that the client reads them separately (as TCP may deliver them)."""
        cuts = [0, *sorted(split_at), len(data)]
        pieces = [data[a:b] for a, b in itertools.pairwise(cuts) if b > a]
        for conn in list(self._conns):
            if not (conn.authenticated and conn.events):
                continue
            async with conn.lock:
                for index, piece in enumerate(pieces):
                    conn.writer.write(piece)
                    with contextlib.suppress(ConnectionError):
                        await conn.writer.drain()
                    if index < len(pieces) - 1:
                        await asyncio.sleep(0.05)

    # --- one connection -----------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        conn = _Conn(writer)
        self._conns.add(conn)
        self.connections += 1
        try:
            writer.write(BANNER)
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                action = _parse(raw)
                self.actions.append(action)
                async with conn.lock:
                    if not await self._answer(conn, action):
                        return
                    await writer.drain()
        except ConnectionError:
            return
        finally:
            self._conns.discard(conn)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _answer(self, conn: _Conn, action: dict[str, str]) -> bool:
        """Write the reply; False when Asterisk would close the connection."""
        name = action.get("action", "").lower()
        action_id = action.get("actionid")
        ids = [("ActionID", action_id)] if action_id is not None else []
        write = conn.writer.write
        if name == "login":
            return await self._login(conn, action, ids)
        if not conn.authenticated:
            write(message(("Response", "Error"), *ids, ("Message", "Permission denied")))
            return True
        if name == "ping":
            if self.answer_pings:
                write(
                    message(
                        ("Response", "Success"),
                        *ids,
                        ("Ping", "Pong"),
                        ("Timestamp", _PONG_TIMESTAMP),
                    )
                )
            return True
        if name == "queuestatus":
            if self.refuse_queue_status:
                write(message(("Response", "Error"), *ids, ("Message", "Permission denied")))
            else:
                write(self._queue_status(action_id or "", action.get("queue")))
            return True
        if name == "logoff":
            write(message(("Response", "Goodbye"), *ids, ("Message", "Thanks for all the fish.")))
            await conn.writer.drain()
            return False
        write(
            message(
                ("Response", "Error"),
                *ids,
                (
                    "Message",
                    f"Invalid/unknown command: {action.get('action', '')}. "
                    "Use Action: ListCommands to show available commands.",
                ),
            )
        )
        return True

    async def _login(self, conn: _Conn, action: dict[str, str], ids: list[tuple[str, str]]) -> bool:
        if action.get("username") != self.username or action.get("secret") != self.secret:
            self.failed_logins += 1
            await asyncio.sleep(self.login_delay)
            conn.writer.write(
                message(("Response", "Error"), *ids, ("Message", "Authentication failed"))
            )
            await conn.writer.drain()
            return False
        conn.authenticated = True
        conn.events = action.get("events", "on").lower() != "off"
        conn.writer.write(
            message(("Response", "Success"), *ids, ("Message", "Authentication accepted"))
        )
        if conn.events:
            conn.writer.write(FULLY_BOOTED)
        await conn.writer.drain()
        async with self._logged_in:
            self.logins += 1
            self._logged_in.notify_all()
        return True

    def _queue_status(self, action_id: str, only: str | None) -> bytes:
        out = [
            message(
                ("Response", "Success"),
                ("ActionID", action_id),
                ("EventList", "start"),
                ("Message", "Queue status will follow"),
            )
        ]
        items = 0
        for name, queue in self.queues.items():
            if only and name != only:
                continue
            items += 1
            out.append(
                message(
                    ("Event", "QueueParams"), ("Queue", name), ("Max", "0"),
                    ("Strategy", "ringall"), ("Calls", str(len(queue.entries))),
                    ("Holdtime", "0"), ("TalkTime", "0"), ("Completed", "0"),
                    ("Abandoned", "0"), ("ServiceLevel", "0"), ("ServicelevelPerf", "0.0"),
                    ("ServicelevelPerf2", "0.0"), ("Weight", "0"), ("ActionID", action_id),
                )
            )  # fmt: skip
            for member in queue.members:
                items += 1
                out.append(
                    message(
                        ("Event", "QueueMember"), ("Queue", name), ("Name", member.name),
                        ("Location", member.location), ("StateInterface", member.location),
                        ("Membership", "static"), ("Penalty", "0"), ("CallsTaken", "0"),
                        ("LastCall", "0"), ("LastPause", "0"), ("LoginTime", "1796413031"),
                        ("InCall", "1" if member.in_call else "0"),
                        ("Status", str(member.status)),
                        ("Paused", "1" if member.paused else "0"), ("PausedReason", ""),
                        ("Wrapuptime", "0"), ("ActionID", action_id),
                    )
                )  # fmt: skip
            for position, entry in enumerate(queue.entries, 1):
                items += 1
                out.append(
                    message(
                        ("Event", "QueueEntry"), ("Queue", name), ("Position", str(position)),
                        ("Channel", entry.channel), ("Uniqueid", entry.uniqueid),
                        ("CallerIDNum", "unknown"), ("CallerIDName", "unknown"),
                        ("ConnectedLineNum", "unknown"), ("ConnectedLineName", "unknown"),
                        ("Wait", str(entry.wait)), ("Priority", "0"), ("ActionID", action_id),
                    )
                )  # fmt: skip
        out.append(
            message(
                ("Event", "QueueStatusComplete"),
                ("ActionID", action_id),
                ("EventList", "Complete"),
                ("ListItems", str(items)),
            )
        )
        return b"".join(out)


def _parse(raw: bytes) -> dict[str, str]:
    """An action's headers, keys lower-cased (Asterisk matches them without case)."""
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            headers.setdefault(key.lower(), value)
    return headers
