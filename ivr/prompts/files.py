"""The prompts folder on disk: which audio files it holds, their hashes and formats."""

from __future__ import annotations

import hashlib
import os
import sys
import wave
from array import array
from pathlib import Path
from typing import Final

from ivr.prompts.state import AUDIO_SUFFIXES, FileInfo

__all__ = [
    "ASTERISK_RATE",
    "file_sha256",
    "relative_name",
    "scan",
    "temp_path",
    "wav_problem",
    "wav_rms",
]

ASTERISK_RATE: Final = 8000


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def wav_problem(path: Path) -> str | None:
    """Why Asterisk's ``format_wav`` would not play this file, or None when it would."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            frames = wav.getnframes()
    except (wave.Error, EOFError) as exc:
        return f"not a PCM WAV file ({exc or 'truncated'})"
    if (rate, channels, width) != (ASTERISK_RATE, 1, 2):
        return (
            f"{rate} Hz, {channels} channel{'s' if channels != 1 else ''}, {8 * width}-bit: "
            f"Asterisk needs {ASTERISK_RATE} Hz, 1 channel, 16-bit"
        )
    if frames == 0:
        return "no sound in it (0 frames)"
    return None


def _problem(path: Path) -> str | None:
    if path.suffix == ".wav":
        return wav_problem(path)
    if path.stat().st_size == 0:
        return "empty file"
    return None


def relative_name(path: Path, directory: Path) -> str:
    """``path`` relative to the prompts folder, ``/``-separated (a prompt name plus suffix)."""
    return path.relative_to(directory).as_posix()


def scan(directory: Path) -> dict[str, FileInfo]:
    """Every ``.wav`` and ``.ulaw`` under ``directory`` (hidden names skipped), by name."""
    found: dict[str, FileInfo] = {}
    if not directory.is_dir():
        return found
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(AUDIO_SUFFIXES):
                continue
            path = Path(root) / name
            found[relative_name(path, directory)] = FileInfo(file_sha256(path), _problem(path))
    return found


def temp_path(final: Path) -> Path:
    """A hidden sibling of ``final`` with the same suffix, for writing then renaming."""
    return final.with_name(f".{final.stem}.{os.getpid()}.tmp{final.suffix}")


def wav_rms(path: Path) -> float:
    """Root mean square of a 16-bit WAV's samples, as a fraction of full scale (0 to 1)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: not 16-bit audio")
        samples = array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":  # WAV samples are little-endian
        samples.byteswap()
    if not samples:
        return 0.0
    mean_square = sum(s * s for s in samples) / len(samples)
    return float(mean_square**0.5 / 32768)
