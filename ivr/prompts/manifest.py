"""``manifest.json``: what each prompt's audio says and how it was made.

One entry per prompt name::

    "opcion-cea": {
      "text": "Para la Comisión Estatal de Aguas, marque 4.",
      "text_sha256": "…",              # sha256 of the text, stripped, as UTF-8
      "source": "generated",           # or "recorded" (imported with `ivr prompts import`)
      "synthesis": {"voice": "es-419", "speed": 150, "pipeline": 1},   # generated only
      "tools": {"espeak-ng": "1.51", "sox": "14.4.2"},
      "files": {"opcion-cea.ulaw": "<sha256>", "opcion-cea.wav": "<sha256>"},
      "recorded_from": null            # recorded only: the file it was imported from
    }

The hash decides staleness; the text is kept so that a review of the manifest shows what
changed. File hashes let ``ivr check`` notice audio replaced by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "Entry",
    "Manifest",
    "ManifestError",
    "Synthesis",
    "dump_manifest",
    "load_manifest",
    "parse_manifest",
    "text_sha256",
    "write_manifest",
]

MANIFEST_NAME: Final = "manifest.json"
FORMAT: Final = 1
Source = Literal["generated", "recorded"]


def text_sha256(text: str) -> str:
    """The hash recorded for a prompt's text: only surrounding blanks are ignored."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Synthesis(_Frozen):
    """The synthesis settings; a generated prompt built with other ones is stale."""

    voice: str
    speed: int = Field(description="espeak-ng words per minute")
    pipeline: int = Field(description="version of the sox chain; bumped when it changes")


class Entry(_Frozen):
    text: str
    text_sha256: str
    source: Source
    synthesis: Synthesis | None = None
    tools: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    recorded_from: str | None = None

    @property
    def generated(self) -> bool:
        return self.source == "generated"


class Manifest(_Frozen):
    format: int = FORMAT
    note: str = "Written by `ivr prompts build` and `ivr prompts import`; do not edit by hand."
    prompts: dict[str, Entry] = Field(default_factory=dict)

    def with_entries(self, entries: dict[str, Entry], drop: set[str] | None = None) -> Manifest:
        """A copy with ``entries`` set and the names in ``drop`` removed."""
        prompts = {k: v for k, v in self.prompts.items() if k not in (drop or set())}
        prompts.update(entries)
        return self.model_copy(update={"prompts": dict(sorted(prompts.items()))})


class ManifestError(Exception):
    """The manifest cannot be read; ``line`` and ``col`` point into it (1-based)."""

    def __init__(self, path: Path, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(f"{path}:{line}:{col}: {message}")
        self.path = path
        self.message = message
        self.line = line
        self.col = col


def parse_manifest(text: str, path: Path) -> Manifest:
    """Parse manifest text; raise ManifestError with a position on any problem."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(path, f"not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ManifestError(path, f"{where}: {first['msg']}") from None
    if manifest.format != FORMAT:
        raise ManifestError(
            path, f"manifest format {manifest.format} is not {FORMAT}: rebuild with --force"
        )
    return manifest


def load_manifest(directory: Path) -> Manifest:
    """The manifest in ``directory``; an empty one when the file does not exist."""
    path = directory / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Manifest()
    except OSError as exc:
        raise ManifestError(path, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ManifestError(path, "not UTF-8 text") from None
    return parse_manifest(text, path)


def dump_manifest(manifest: Manifest) -> str:
    """Stable JSON: sorted names and keys, two-space indent, Spanish left readable."""
    data = manifest.model_dump(mode="json")
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write the manifest atomically: readers see the old file or the new one, never half."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MANIFEST_NAME
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{MANIFEST_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dump_manifest(manifest))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
