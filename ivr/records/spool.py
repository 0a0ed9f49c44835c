"""An append-only spool of records on disk, for when PostgreSQL is down or slow.

The spool is a directory of numbered segment files, one JSON record per line. New lines
go to the open segment; :meth:`Spool.sync` flushes and fsyncs it (the recorder calls it
once per batch, not per record). Replay reads closed segments oldest first, and a
segment is deleted only after every record in it is in the database, so a crash during
replay replays it again; the database writes are idempotent, so nothing is doubled.

A line that cannot be read back (torn by a crash mid-write, or damaged) is never
dropped silently: it is copied to ``rejected.jsonl`` with the reason, and counted.

One process owns a spool directory at a time (an exclusive ``flock``), so two
instances pointed at one data dir fail at start instead of replaying each other's
segments.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from ivr.records.model import Record, RecordDecodeError, from_json, to_json

__all__ = ["Segment", "Spool", "SpoolInUseError", "SpoolSummary", "summarise"]

SEGMENT_SUFFIX: Final = ".jsonl"
REJECTED: Final = "rejected.jsonl"
LOCK: Final = ".lock"
DEFAULT_SEGMENT_BYTES: Final = 32 * 1024 * 1024


class SpoolInUseError(Exception):
    """Another process holds the spool directory."""


@dataclass(frozen=True)
class Segment:
    index: int
    path: Path


class Spool:
    def __init__(self, directory: Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock_fd: int | None = None
        self._handle: IO[str] | None = None
        self._current: Segment | None = None
        self._current_bytes = 0
        self._next_index = 0
        self._dirty = False
        self.rejected = 0

    # -- lifecycle ---------------------------------------------------------------

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolInUseError(
                f"the spool {self.directory} is in use by another process; "
                "give each instance its own IVR_DATA_DIR"
            ) from None
        self._lock_fd = fd
        existing = self.segments()
        self._next_index = existing[-1].index + 1 if existing else 1

    def close(self) -> None:
        self.rotate()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- writing -------------------------------------------------------------------

    def append(self, record: Record) -> None:
        """Buffer one record in the open segment (durable after :meth:`sync`)."""
        line = to_json(record) + "\n"
        if self._handle is None or self._current_bytes >= self.segment_bytes:
            self._open_segment()
        handle = self._handle
        if handle is None:  # pragma: no cover - _open_segment always sets it
            raise RuntimeError("spool segment not open")
        handle.write(line)
        self._current_bytes += len(line)
        self._dirty = True

    def flush(self) -> int | None:
        """Hand buffered lines to the kernel; returns the fd to fsync, or None if clean."""
        if self._handle is None or not self._dirty:
            return None
        self._handle.flush()
        self._dirty = False
        return self._handle.fileno()

    def sync(self) -> None:
        """Flush and fsync the open segment."""
        fd = self.flush()
        if fd is not None:
            os.fsync(fd)

    def rotate(self) -> None:
        """Close the open segment (synced) so it can be replayed."""
        if self._handle is None:
            return
        self.sync()
        self._handle.close()
        self._handle = None
        self._current = None

    def _open_segment(self) -> None:
        self.rotate()
        segment = Segment(
            self._next_index, self.directory / f"{self._next_index:012d}{SEGMENT_SUFFIX}"
        )
        self._next_index += 1
        fd = os.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._handle = os.fdopen(fd, "w", encoding="utf-8", buffering=1024 * 1024)
        self._current = segment
        self._current_bytes = 0
        _fsync_directory(self.directory)

    # -- reading -------------------------------------------------------------------

    def segments(self) -> list[Segment]:
        """All segments on disk, oldest first (the open one included)."""
        return _segments(self.directory)

    def closed_segments(self) -> list[Segment]:
        """Segments ready for replay, oldest first."""
        current = None if self._current is None else self._current.index
        return [s for s in self.segments() if s.index != current]

    def pending(self) -> bool:
        return bool(self.segments())

    def size_bytes(self) -> int:
        return _size(self.segments())

    def read(self, segment: Segment) -> Iterator[Record]:
        """The records of a closed segment; unreadable lines go to ``rejected.jsonl``."""
        with segment.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n"):
                    self.reject(
                        f"{segment.path.name}:{number}",
                        "incomplete line (torn by a crash mid-write)",
                        raw.decode("utf-8", "replace"),
                    )
                    continue
                try:
                    yield from_json(raw)
                except RecordDecodeError as exc:
                    self.reject(
                        f"{segment.path.name}:{number}", str(exc), raw.decode("utf-8", "replace")
                    )

    def remove(self, segment: Segment) -> None:
        segment.path.unlink(missing_ok=True)
        _fsync_directory(self.directory)

    def reject(self, where: str, reason: str, content: str) -> None:
        """Keep a record the database or the decoder refused, with why, for a person to see."""
        entry = json.dumps(
            {"where": where, "reason": reason, "record": content.rstrip("\n")}, ensure_ascii=False
        )
        fd = os.open(self.directory / REJECTED, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(entry + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.rejected += 1


@dataclass(frozen=True)
class SpoolSummary:
    """What a spool directory holds, read without taking it over (for ``ivr db status``)."""

    segments: int
    bytes: int
    rejected: int


def summarise(directory: Path) -> SpoolSummary:
    """Count waiting segments, their size, and the records set aside in ``rejected.jsonl``."""
    segments = _segments(directory)
    total = _size(segments)
    rejected = 0
    if directory.is_dir():
        rejected_file = directory / REJECTED
        if rejected_file.is_file():
            with rejected_file.open("rb") as handle:
                rejected = sum(1 for line in handle if line.strip())
    return SpoolSummary(segments=len(segments), bytes=total, rejected=rejected)


def _size(segments: list[Segment]) -> int:
    total = 0
    for segment in segments:
        try:
            total += segment.path.stat().st_size
        except FileNotFoundError:  # replayed and removed meanwhile
            continue
    return total


def _segments(directory: Path) -> list[Segment]:
    """The numbered segment files in ``directory``, oldest first."""
    found = [
        Segment(int(path.stem), path)
        for path in directory.glob(f"*{SEGMENT_SUFFIX}")
        if path.stem.isdigit()
    ]
    found.sort(key=lambda s: s.index)
    return found


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
