"""The FastAGI protocol, sans-IO: bytes in, events out; commands out as bytes.

Shaped after h11: :meth:`AgiConnection.receive_data` takes what the socket gave (``b""``
means EOF), :meth:`AgiConnection.next_event` returns the next event or :data:`NEED_DATA`,
and :meth:`AgiConnection.send` turns a command line into bytes after checking that the
protocol allows it now. No I/O, no clock, no asyncio: every case can be fed whole,
byte by byte or with trailing data, and gives the same events.

What Asterisk 22 sends (see ``res/res_agi.c`` and the wire captures in the repository's
tests):

* An environment block, ``agi_name: value`` lines ended by an empty line. Values may be
  any bytes (a caller-ID name from an old PBX is often Latin-1).
* One reply per command: ``200 result=<r> [(data)] [key=value ...] [text]``, possibly
  preceded by ``100 result=0 Trying...`` (``GOSUB``, ``apps/app_stack.c``);
  ``510 Invalid or unknown command``; ``511 Command Not Permitted on a dead channel or
  intercept routine``; ``520`` either on one line or as ``520-...`` usage lines closed
  by ``520 End of proper usage.``.
* ``HANGUP`` on its own line, unsolicited, whenever the caller hangs up: after the reply
  of the command in flight or before it, and again when the script closes.

Lines end in ``\\n`` (a ``\\r`` before it is tolerated). Lines longer than
:data:`MAX_LINE` bytes, environment blocks longer than :data:`MAX_ENV_LINES` lines and
usage blocks longer than :data:`MAX_USAGE_LINES` lines are protocol errors: a peer
that sends them is not a sane Asterisk, and the buffer must stay bounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

__all__ = [
    "MAX_ENV_LINES",
    "MAX_LINE",
    "MAX_USAGE_LINES",
    "NEED_DATA",
    "AgiConnection",
    "Closed",
    "Environment",
    "ErrorReply",
    "Event",
    "HangupLine",
    "LocalProtocolError",
    "ProtocolError",
    "Reply",
    "State",
    "Trying",
    "decode_value",
]

MAX_LINE: Final = 8192
MAX_ENV_LINES: Final = 256
MAX_USAGE_LINES: Final = 256


class ProtocolError(Exception):
    """The peer sent something that is not AGI; the connection cannot go on."""


class LocalProtocolError(Exception):
    """We tried something the protocol does not allow now (a bug on our side)."""


class _NeedData(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA


def decode_value(raw: bytes) -> str:
    """UTF-8 when valid, else Latin-1: every byte survives as some character."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Environment:
    """The ``agi_*`` block that opens a session (keys without the ``agi_`` prefix)."""

    values: Mapping[str, str]
    raw: Mapping[str, bytes] = field(repr=False)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1``, ``agi_arg_2``, ... in order."""
        out: list[str] = []
        while (value := self.values.get(f"arg_{len(out) + 1}")) is not None:
            out.append(value)
        return tuple(out)

    def known(self, name: str) -> str | None:
        """A caller field, or None where Asterisk says ``unknown`` or leaves it empty."""
        value = self.values.get(name, "")
        return None if value in {"", "unknown"} else value


@dataclass(frozen=True, slots=True)
class Reply:
    """A ``200`` reply: ``result``, the text in parentheses, and ``key=value`` extras."""

    result: str
    data: str | None = None
    extras: Mapping[str, str] = field(default_factory=dict)
    message: str = ""
    """Free text after the result, e.g. ``Gosub complete`` (GOSUB's replies)."""

    @property
    def code(self) -> int:
        return 200

    @property
    def number(self) -> int | None:
        """``result`` as an integer, or None when it is empty or not a number."""
        try:
            return int(self.result)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A final reply other than 200: 510, 511, 520 (with its usage lines), 503..."""

    code: int
    message: str
    usage: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Trying:
    """``100 result=0 Trying...``: a final reply for the same command follows."""

    message: str


@dataclass(frozen=True, slots=True)
class HangupLine:
    """The unsolicited ``HANGUP`` line: the caller is gone."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed the connection; ``clean`` is False when it cut a line or block."""

    clean: bool


Event = Environment | Reply | ErrorReply | Trying | HangupLine | Closed


class State(Enum):
    ENVIRONMENT = "environment"
    IDLE = "idle"
    WAITING = "waiting"  # a command is in flight
    CLOSED = "closed"
    ERROR = "error"


_REPLY_200: Final = re.compile(rb"200 result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?P<rest>.*)")
_EXTRA: Final = re.compile(rb" ([A-Za-z_]+)=(\S*)")
_CODE_LINE: Final = re.compile(rb"(?P<code>[1-5][0-9][0-9])(?P<sep>[ -])(?P<text>.*)")
_ENV_LINE: Final = re.compile(rb"agi_(?P<key>[A-Za-z0-9_]+):(?: (?P<value>.*))?")


class AgiConnection:
    """One FastAGI session as a state machine (the server side: we send commands)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._eof = False
        self._state = State.ENVIRONMENT
        self._env: dict[str, str] = {}
        self._env_raw: dict[str, bytes] = {}
        self._env_lines = 0
        self._usage: list[str] | None = None
        self._usage_head = ""
        self._in_flight: bytes | None = None
        self.hung_up = False

    # --- inspection -----------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def in_flight(self) -> bytes | None:
        """The command awaiting its final reply, if any."""
        return self._in_flight

    # --- input ----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the peer; ``b""`` means the peer closed its side."""
        if self._state is State.ERROR:
            return  # the connection is over; keep the buffer bounded
        if self._eof:
            if data:
                raise LocalProtocolError("data received after EOF")
            return
        if not data:
            self._eof = True
            return
        self._buffer += data

    def next_event(self) -> Event | _NeedData:
        """The next complete event, or :data:`NEED_DATA`."""
        if self._state is State.CLOSED or self._state is State.ERROR:
            raise LocalProtocolError(f"no events after the connection is {self._state.value}")
        while True:
            line = self._next_line()
            if line is None:
                if self._eof:
                    return self._close()
                return NEED_DATA
            event = self._on_line(line)
            if event is not None:
                return event

    def _fail(self, message: str) -> ProtocolError:
        self._state = State.ERROR
        return ProtocolError(message)

    def _next_line(self) -> bytes | None:
        end = self._buffer.find(b"\n")
        # The cap counts a "\r" before the "\n" too, so it never depends on how the
        # bytes were cut into reads.
        if end < 0:
            if len(self._buffer) > MAX_LINE:
                raise self._fail(f"line longer than {MAX_LINE} bytes")
            return None
        if end > MAX_LINE:
            raise self._fail(f"line longer than {MAX_LINE} bytes")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line.removesuffix(b"\r")

    def _close(self) -> Closed:
        clean = (
            not self._buffer
            and self._usage is None
            and self._state is not State.ENVIRONMENT
            and self._in_flight is None
        )
        self._state = State.CLOSED
        return Closed(clean=clean)

    def _on_line(self, line: bytes) -> Event | None:
        if self._state is State.ENVIRONMENT:
            return self._on_env_line(line)
        if self._usage is not None:
            return self._on_usage_line(line)
        if line == b"HANGUP":
            self.hung_up = True
            return HangupLine()
        match = _CODE_LINE.fullmatch(line)
        if match is None:
            raise self._fail(f"not an AGI reply: {line[:80]!r}")
        if self._in_flight is None:
            raise self._fail(f"reply with no command in flight: {line[:80]!r}")
        code = int(match["code"])
        if code == 200 and match["sep"] == b" ":  # the common case first: a final reply
            self._in_flight = None
            self._state = State.IDLE
            return self._parse_200(line)
        text = decode_value(match["text"])
        if match["sep"] == b"-":
            if code != 520:
                raise self._fail(f"unexpected continuation line: {line[:80]!r}")
            self._usage = []
            self._usage_head = text
            return None
        if code == 100:
            return Trying(text)
        self._in_flight = None
        self._state = State.IDLE
        return ErrorReply(code, text)

    def _on_usage_line(self, line: bytes) -> Event | None:
        usage_lines = self._usage
        if usage_lines is None:  # pragma: no cover - only called inside a usage block
            raise LocalProtocolError("not inside a usage block")
        if line.startswith(b"520 "):
            usage = tuple(usage_lines)
            self._usage = None
            self._in_flight = None
            self._state = State.IDLE
            return ErrorReply(520, self._usage_head, usage)
        if len(usage_lines) >= MAX_USAGE_LINES:
            raise self._fail(f"usage block longer than {MAX_USAGE_LINES} lines")
        usage_lines.append(decode_value(line))
        return None

    def _parse_200(self, line: bytes) -> Reply:
        match = _REPLY_200.fullmatch(line)
        if match is None:
            raise self._fail(f"malformed 200 reply: {line[:80]!r}")
        data, rest = match["data"], match["rest"]
        if data is None and rest.startswith(b" ("):
            # Asterisk writes "(" after the result only as a closed "(%s)": an open one is
            # a value cut by a newline, whose rest would pass for the next reply.
            raise self._fail(f"unclosed data in a 200 reply: {line[:80]!r}")
        if not rest:  # "200 result=N" or "200 result=N (data)": most replies
            return Reply(
                result=decode_value(match["result"]),
                data=None if data is None else decode_value(data),
                extras={},
                message="",
            )
        extras = {key.decode("ascii"): decode_value(value) for key, value in _EXTRA.findall(rest)}
        return Reply(
            result=decode_value(match["result"]),
            data=None if data is None else decode_value(data),
            extras=extras,
            message=decode_value(_EXTRA.sub(b"", rest).strip()),
        )

    def _on_env_line(self, line: bytes) -> Event | None:
        if not line:
            if not self._env_raw:
                raise self._fail("empty environment block")
            self._state = State.IDLE
            return Environment(values=dict(self._env), raw=dict(self._env_raw))
        self._env_lines += 1
        if self._env_lines > MAX_ENV_LINES:
            raise self._fail(f"environment longer than {MAX_ENV_LINES} lines")
        match = _ENV_LINE.fullmatch(line)
        if match is None:
            raise self._fail(f"not an environment line: {line[:80]!r}")
        key = match["key"].decode("ascii")
        raw = match["value"] or b""
        self._env_raw[key] = raw
        self._env[key] = decode_value(raw)
        return None

    # --- output ---------------------------------------------------------------

    def send(self, command: bytes) -> bytes:
        """Check that ``command`` (one line, ``\\n``-terminated) may be sent now; return it."""
        if self._state is not State.IDLE:
            raise LocalProtocolError(f"cannot send a command while {self._state.value}")
        if not command.endswith(b"\n") or command.count(b"\n") != 1 or b"\r" in command:
            raise LocalProtocolError("a command is exactly one line ending in a newline")
        if b"\x00" in command:
            raise LocalProtocolError("a command cannot hold a NUL byte")
        self._in_flight = command
        self._state = State.WAITING
        return command
