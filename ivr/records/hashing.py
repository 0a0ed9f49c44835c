"""The keyed hash of a caller's number: repeat callers can be counted, nobody identified.

HMAC-SHA256 over the number's digits (a leading ``+`` kept), so "442 101 5205" and
"4421015205" hash alike. Without the key the hash cannot be reversed by trying every
phone number, which a plain hash of a 10-digit number could.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["KEY_FILE", "caller_hash", "load_or_create_key", "normalise_number"]

KEY_FILE = "caller-hash.key"


def normalise_number(number: str) -> str:
    digits = "".join(char for char in number if char.isdigit())
    return f"+{digits}" if number.strip().startswith("+") else digits


def caller_hash(key: bytes, number: str | None) -> str | None:
    """Hex HMAC of the number, or None when there is no usable number."""
    if number is None:
        return None
    normal = normalise_number(number)
    if not normal.strip("+"):
        return None
    return hmac.new(key, normal.encode("ascii"), hashlib.sha256).hexdigest()


def load_or_create_key(data_dir: Path) -> bytes:
    """The key kept in ``data_dir``, created (random, mode 0600) on first use."""
    path = data_dir / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    # Write a private temporary file, then link it into place: the link fails if another
    # process got there first, and nobody ever reads a half-written key.
    temporary = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_bytes().strip()
    finally:
        temporary.unlink(missing_ok=True)
    return key
