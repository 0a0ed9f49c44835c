"""The queue event streams of the AMI captures, ready to replay for another call.

``tests/captures/ami-queue-*.json`` and ``ami-ringnoanswer.json`` hold what a real
Asterisk 22 sent while one caller went through a queue. :func:`captured_events` gives
those events as Asterisk sent them (the login response, FullyBooted, SuccessfulAuth
and replies to the capture's own actions left out), and :func:`for_call` rewrites the
caller's Uniqueid, the call's Linkedid and the queue name, so the same bytes can tell
the story of a call placed in a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from agi_captures import load_capture

__all__ = ["CAPTURED_CALLS", "CapturedCall", "captured_events", "for_call", "parse"]

_SKIP: Final = (b"Event: FullyBooted", b"Event: SuccessfulAuth")


@dataclass(frozen=True)
class CapturedCall:
    capture: str
    uniqueid: str  # the caller's channel (;2)
    linkedid: str
    queue: str


CAPTURED_CALLS: Final = {
    "answered": CapturedCall(
        "ami-queue-answered", "asterisk-lab-1796413234.10", "asterisk-lab-1796413234.9",
        "citizen-queue",
    ),
    "abandoned": CapturedCall(
        "ami-queue-abandoned", "asterisk-lab-1796413254.14", "asterisk-lab-1796413254.13",
        "capture-noanswer",
    ),
    "abandoned-empty": CapturedCall(
        "ami-queue-abandoned-empty", "asterisk-lab-1796413269.18", "asterisk-lab-1796413269.17",
        "capture-empty",
    ),
    "timeout": CapturedCall(
        "ami-ringnoanswer", "asterisk-lab-1796413275.20", "asterisk-lab-1796413275.19",
        "capture-rna",
    ),
}  # fmt: skip


def captured_events(name: str) -> list[bytes]:
    """The event messages of capture ``name`` (each with its ``\\r\\n\\r\\n``)."""
    stream = load_capture(name).received
    messages = [part + b"\r\n\r\n" for part in stream.split(b"\r\n\r\n") if part]
    return [
        m
        for m in messages
        if b"Event: " in m.split(b"\r\n", 1)[0] and not m.startswith(_SKIP)
        and b"\r\nActionID: " not in m
    ]  # fmt: skip


def for_call(kind: str, *, uniqueid: str, linkedid: str, queue: str) -> list[bytes]:
    """The captured events of ``kind`` as they would be for the given call."""
    call = CAPTURED_CALLS[kind]
    out = []
    for captured in captured_events(call.capture):
        event = captured.replace(
            f"Uniqueid: {call.uniqueid}\r\n".encode(), f"Uniqueid: {uniqueid}\r\n".encode()
        )
        event = event.replace(
            f"Linkedid: {call.linkedid}\r\n".encode(), f"Linkedid: {linkedid}\r\n".encode()
        )
        event = event.replace(f"Queue: {call.queue}\r\n".encode(), f"Queue: {queue}\r\n".encode())
        out.append(event)
    return out


def parse(event: bytes) -> dict[str, str | list[str]]:
    """Headers of one message; a repeated header becomes a list (as panoramisk does)."""
    headers: dict[str, str | list[str]] = {}
    for line in event.decode("utf-8").split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key in headers:
            previous = headers[key]
            headers[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            headers[key] = value
    return headers
