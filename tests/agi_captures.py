"""Load the FastAGI wire captures of a real Asterisk 22.10.1 (``tests/captures/``).

Each capture comes twice (see ``tests/captures/README.md``):

* ``NAME.json``: the raw TCP reads and writes in order (``chunks``), from which
  :class:`Capture` gives the exact byte stream Asterisk sent (:attr:`Capture.received`,
  also as the original chunks :attr:`Capture.received_chunks`) and what the capture
  script sent (:attr:`Capture.sent`, :attr:`Capture.commands`).
* ``NAME.txt``: one protocol line per text line, ``<< `` from Asterisk and ``>> `` to
  it, with ``\\n``, ``\\r``, ``\\t``, ``\\\\`` and ``\\xNN`` escapes, which
  :func:`unescape` undoes (:attr:`Capture.lines`). Lines without a final ``\\n``
  escape that read ``<...>`` are socket events (:attr:`Capture.socket_events`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Literal, cast

__all__ = [
    "AGI_SESSIONS",
    "CAPTURES",
    "FROM_ASTERISK",
    "TO_ASTERISK",
    "Capture",
    "Chunk",
    "Direction",
    "load_capture",
    "unescape",
]

CAPTURES: Final = Path(__file__).parent / "captures"
AGI_SESSIONS: Final = ("agi-local-session", "agi-sip-session", "agi-exit-on-hangup")

Direction = Literal["<<", ">>"]
FROM_ASTERISK: Final[Direction] = "<<"
TO_ASTERISK: Final[Direction] = ">>"

_ESCAPE: Final = re.compile(r"\\(?:x([0-9A-Fa-f]{2})|(.))", re.DOTALL)
_TXT_ESCAPES: Final = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}
_JSON_ESCAPES: Final = {"\\": b"\\"}  # the ``data_escaped`` rule: doubled backslash, \xNN


def unescape(text: str, escapes: dict[str, bytes] = _TXT_ESCAPES) -> bytes:
    """The bytes an escaped capture line stands for (UTF-8 for unescaped text)."""
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        out += text[position : match.start()].encode("utf-8")
        if match[1] is not None:
            out.append(int(match[1], 16))
        elif match[2] in escapes:
            out += escapes[match[2]]
        else:
            raise ValueError(f"unknown escape \\{match[2]} in {text!r}")
        position = match.end()
    out += text[position:].encode("utf-8")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One TCP read or write (``data``), or a socket event (``event``, ``data`` None)."""

    direction: Direction
    data: bytes | None
    event: str | None = None


@dataclass(frozen=True, slots=True)
class Capture:
    """One capture: the JSON chunks and the unescaped TXT lines."""

    name: str
    chunks: tuple[Chunk, ...]
    lines: tuple[tuple[Direction, bytes], ...]
    socket_events: tuple[tuple[Direction, str], ...]

    def chunks_from(self, direction: Direction) -> list[bytes]:
        return [c.data for c in self.chunks if c.direction == direction and c.data is not None]

    def lines_from(self, direction: Direction) -> list[bytes]:
        return [line for d, line in self.lines if d == direction]

    @property
    def received_chunks(self) -> list[bytes]:
        """What Asterisk sent, as the TCP reads of the capture run."""
        return self.chunks_from(FROM_ASTERISK)

    @property
    def received(self) -> bytes:
        """The exact byte stream Asterisk sent."""
        return b"".join(self.received_chunks)

    @property
    def sent(self) -> bytes:
        """The exact byte stream the capture script sent to Asterisk."""
        return b"".join(self.chunks_from(TO_ASTERISK))

    @property
    def commands(self) -> list[bytes]:
        """The command lines sent, in order, each with its ``\\n``."""
        return re.findall(rb"[^\n]*\n", self.sent)

    @property
    def closed_by_asterisk(self) -> bool:
        """Whether the capture ends with Asterisk closing the connection (EOF)."""
        return any(
            c.direction == FROM_ASTERISK and (c.event or "").startswith("EOF") for c in self.chunks
        )


def _chunk(raw: dict[str, object]) -> Chunk:
    direction = cast("Direction", raw["dir"])
    if direction not in {FROM_ASTERISK, TO_ASTERISK}:
        raise ValueError(f"bad direction {direction!r}")
    if "event" in raw:
        return Chunk(direction, None, str(raw["event"]))
    text = str(raw["data"])
    data = unescape(text, _JSON_ESCAPES) if raw.get("data_escaped") else text.encode("utf-8")
    if len(data) != raw["len"]:
        raise ValueError(f"chunk {raw['i']}: {len(data)} bytes, the capture says {raw['len']}")
    return Chunk(direction, data)


def _parse_txt(
    text: str,
) -> tuple[tuple[tuple[Direction, bytes], ...], tuple[tuple[Direction, str], ...]]:
    lines: list[tuple[Direction, bytes]] = []
    events: list[tuple[Direction, str]] = []
    for number, record in enumerate(text.split("\n"), 1):
        if not record:
            continue
        prefix, rest = record[:3], record[3:]
        if prefix not in {"<< ", ">> "}:
            raise ValueError(f"line {number}: no direction prefix: {record!r}")
        direction = cast("Direction", prefix[:2])
        data = unescape(rest)
        if data.endswith(b"\n"):
            lines.append((direction, data))
        elif rest.startswith("<") and rest.endswith(">"):
            events.append((direction, rest[1:-1]))
        else:
            raise ValueError(f"line {number}: neither a whole line nor a socket event")
    return tuple(lines), tuple(events)


@cache
def load_capture(name: str) -> Capture:
    """``tests/captures/NAME.json`` and ``NAME.txt``, parsed (cached: they never change)."""
    document = json.loads((CAPTURES / f"{name}.json").read_text(encoding="utf-8"))
    chunks = tuple(_chunk(raw) for raw in document["chunks"])
    lines, events = _parse_txt((CAPTURES / f"{name}.txt").read_text(encoding="utf-8"))
    return Capture(name=name, chunks=chunks, lines=lines, socket_events=events)
