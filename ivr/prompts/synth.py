"""Text to telephone audio with espeak-ng and sox, the Debian packages of the same names.

espeak-ng speaks the text with its Latin-American Spanish voice (``es-419``) into a WAV at
its own rate; sox then makes what Asterisk plays without transcoding:

1. mono, leading and trailing silence trimmed (espeak-ng pads both ends unevenly);
2. resampled to 8000 Hz, 16-bit;
3. normalised to a peak of -3 dBFS, so every prompt has the same level;
4. 0.1 s of silence before and 0.3 s after, so prompts played one after another
   (``Read(…,a&b&c)``) do not run into each other;

giving ``<name>.wav`` (8 kHz mono 16-bit PCM) and ``<name>.ulaw`` (the same samples as raw
G.711 µ-law, which Asterisk plays as format ``ulaw`` on ulaw channels with no work at
all). sox runs with ``-R`` (repeatable), so the same text and tools give the same bytes.
Both files are written under hidden names and renamed into place: an Asterisk reading the
folder meanwhile never plays half a file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ivr.prompts.files import file_sha256, temp_path, wav_problem, wav_rms
from ivr.prompts.manifest import Synthesis

__all__ = [
    "INSTALL_HINT",
    "SYNTHESIS",
    "SynthesisError",
    "ToolMissingError",
    "Tools",
    "convert",
    "find_tools",
    "speak",
]

# What a build uses now; a generated prompt recorded with other values is stale.
# Bump ``pipeline`` whenever the sox chain below changes.
SYNTHESIS: Final = Synthesis(voice="es-419", speed=150, pipeline=1)

INSTALL_HINT: Final = "install the Debian packages espeak-ng and sox: apt-get install espeak-ng sox"
PEAK_DBFS: Final = -3
LEAD_SECONDS, TAIL_SECONDS = 0.1, 0.3
# Below this RMS (fraction of full scale, about -60 dBFS) the result is taken as silence.
SILENT_RMS: Final = 0.001
TIMEOUT: Final = 120


class ToolMissingError(Exception):
    """espeak-ng or sox is not installed."""


class SynthesisError(Exception):
    """A tool failed, or what it produced is not usable."""


@dataclass(frozen=True)
class Tools:
    """Where the tools are and their versions (recorded in the manifest)."""

    sox: str
    espeak: str | None = None
    versions: dict[str, str] = field(default_factory=dict)


def _version(command: list[str], pattern: str) -> str:
    try:
        result = subprocess.run(  # noqa: S603 (a fixed command found by shutil.which)
            command, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise ToolMissingError(f"cannot run {command[0]}: {exc.strerror}; {INSTALL_HINT}") from None
    output = result.stdout + result.stderr
    match = re.search(pattern, output)
    return match[1] if match else (output.strip().splitlines() or ["unknown"])[0]


def find_tools(*, espeak: bool = True) -> Tools:
    """Locate sox (and espeak-ng unless ``espeak`` is false); raise ToolMissingError."""
    sox = shutil.which("sox")
    espeak_path = shutil.which("espeak-ng") if espeak else None
    missing = [
        tool
        for tool, absent in (("espeak-ng", espeak and espeak_path is None), ("sox", sox is None))
        if absent
    ]
    if missing or sox is None:
        raise ToolMissingError(f"{' and '.join(missing)} not found: {INSTALL_HINT}")
    versions = {"sox": _version([sox, "--version"], r"SoX v(\S+)")}
    if espeak_path:
        versions["espeak-ng"] = _version([espeak_path, "--version"], r"text-to-speech:\s*(\S+)")
    return Tools(sox=sox, espeak=espeak_path, versions=versions)


def _run(command: list[str], what: str, stdin: bytes | None = None) -> None:
    try:
        result = subprocess.run(  # noqa: S603 (fixed tools, arguments are not parsed by a shell)
            command, input=stdin, capture_output=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"{what}: {command[0]} took over {TIMEOUT} s") from None
    except OSError as exc:
        raise SynthesisError(f"{what}: cannot run {command[0]}: {exc.strerror}") from None
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip() or "no message"
        raise SynthesisError(f"{what}: {Path(command[0]).name} failed: {detail}")


def convert(
    source: Path, directory: Path, name: str, tools: Tools, *, trim: bool
) -> dict[str, str]:
    """Make ``<name>.wav`` and ``<name>.ulaw`` in ``directory`` from any audio sox reads.

    Returns each file (relative to ``directory``) with its sha256.
    """
    wav = directory / f"{name}.wav"
    ulaw = directory / f"{name}.ulaw"
    wav.parent.mkdir(parents=True, exist_ok=True)
    tmp_wav, tmp_ulaw = temp_path(wav), temp_path(ulaw)
    trim_effects = ["silence", "1", "0.02", "0.5%", "reverse"] * 2 if trim else []
    effects = [
        "channels", "1", *trim_effects,
        "rate", "-v", "8000",
        "gain", "-n", str(PEAK_DBFS),
        "pad", str(LEAD_SECONDS), str(TAIL_SECONDS),
    ]  # fmt: skip
    try:
        _run(
            [tools.sox, "-R", "-V1", str(source.absolute()), "-b", "16", "-e", "signed-integer",
             str(tmp_wav), *effects],
            f"prompt {name!r}",
        )  # fmt: skip
        problem = wav_problem(tmp_wav)
        if problem:
            raise SynthesisError(f"prompt {name!r}: sox wrote an unusable WAV: {problem}")
        if wav_rms(tmp_wav) < SILENT_RMS:
            raise SynthesisError(
                f"prompt {name!r}: the audio is silent (is the text only punctuation?)"
            )
        _run(
            [tools.sox, "-R", "-V1", "-D", str(tmp_wav), "-t", "ul", str(tmp_ulaw)],
            f"prompt {name!r}",
        )
        tmp_wav.chmod(0o644)
        tmp_ulaw.chmod(0o644)
        tmp_wav.replace(wav)
        tmp_ulaw.replace(ulaw)
    finally:
        tmp_wav.unlink(missing_ok=True)
        tmp_ulaw.unlink(missing_ok=True)
    return {f"{name}.ulaw": file_sha256(ulaw), f"{name}.wav": file_sha256(wav)}


def speak(
    name: str, text: str, directory: Path, tools: Tools, synthesis: Synthesis = SYNTHESIS
) -> dict[str, str]:
    """Synthesise ``text`` into ``<name>.wav`` and ``<name>.ulaw`` under ``directory``."""
    if tools.espeak is None:
        raise ToolMissingError(f"espeak-ng not found: {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="ivr-prompt-") as work:
        raw = Path(work) / "speech.wav"
        _run(
            [tools.espeak, "-v", synthesis.voice, "-s", str(synthesis.speed), "-b", "1",
             "--stdin", "-w", str(raw)],
            f"prompt {name!r}",
            stdin=text.strip().encode("utf-8"),
        )  # fmt: skip
        return convert(raw, directory, name, tools, trim=True)
