"""What ``ivr check`` says about prompt audio, each problem at its prompt's text.

A prompt whose audio is stale, missing, changed by hand or unplayable is a *warning*
pointing at its text under ``prompts:`` (``config/menu.yaml:LINE:COL: warning: …``):
the menu is still valid and the service still serves it (Asterisk plays the old audio,
or skips a missing file and the caller ends with an operator), so ``ivr check`` exits 0
unless ``--strict`` asks for 1. Audio of a prompt the menu no longer defines is a *note*.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from ivr.menu.loader import LoadedMenu
from ivr.prompts.files import scan
from ivr.prompts.manifest import MANIFEST_NAME, Manifest, ManifestError, load_manifest
from ivr.prompts.state import PromptStatus, State, menu_texts, survey
from ivr.prompts.synth import SYNTHESIS

__all__ = [
    "Diagnostic",
    "audio_diagnostics",
    "default_prompts_dir",
    "describe",
    "report_prompt_audio",
]

LANGUAGE = "es"


def default_prompts_dir(menu_file: Path) -> Path:
    """``prompts/es`` beside the menu's folder: ``config/menu.yaml`` → ``prompts/es``."""
    folder = menu_file.parent
    base = folder.parent if folder.name else Path("..")
    return base / "prompts" / LANGUAGE


@dataclass(frozen=True)
class Diagnostic:
    """``file:line:col: severity: message``, or ``file: severity: message`` for a whole file."""

    file: str
    line: int | None
    col: int | None
    severity: Literal["warning", "note"]
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


def describe(status: PromptStatus) -> str:
    """One sentence for a prompt that is not ok: what is wrong and the command that fixes it."""
    rebuild = "run 'ivr prompts build'"
    record = (
        f"record it again and run 'ivr prompts import {status.name} FILE', "
        f"or 'ivr prompts build --force --only {status.name}' to synthesise it"
    )
    if status.state in {State.MISSING, State.STALE}:
        fix = record if status.source == "recorded" else rebuild
    else:
        fix = (
            f"if it is a recording, run 'ivr prompts import {status.name} FILE'; "
            f"'ivr prompts build --force --only {status.name}' synthesises it again"
        )
    return f"prompt {status.name!r}: {status.state.value}: {status.reason}; {fix}"


def audio_diagnostics(loaded: LoadedMenu, directory: Path) -> list[Diagnostic]:
    """Warnings for every prompt that is not ok, then notes for orphans."""
    diagnostics: list[Diagnostic] = []
    try:
        manifest = load_manifest(directory)
    except ManifestError as exc:
        message = f"cannot read the prompts manifest: {exc.message}; rebuild it with --force"
        diagnostics.append(Diagnostic(str(exc.path), exc.line, exc.col, "warning", message))
        manifest = Manifest()
    found = survey(menu_texts(loaded.menu), manifest, scan(directory), SYNTHESIS)
    menu_file = str(loaded.path)
    for status in found.problems:
        pos = loaded.positions.of_value(("prompts", status.name, "text"))
        diagnostics.append(Diagnostic(menu_file, pos.line, pos.col, "warning", describe(status)))
    for orphan in found.orphans:
        where = [str(directory / file) for file in orphan.files] or [str(directory / MANIFEST_NAME)]
        message = (
            f"audio for prompt {orphan.name!r}, which the menu does not define; "
            "'ivr prompts build --prune' removes it"
        )
        diagnostics.extend(Diagnostic(file, None, None, "note", message) for file in where)
    return diagnostics


def report_prompt_audio(
    loaded: LoadedMenu,
    directory: Path | None,
    *,
    strict: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    """Print the prompt audio diagnostics of a valid menu; return ``ivr check``'s exit code.

    ``directory`` None means the default folder; when that does not exist, one line on
    ``out`` says the audio was not checked (unless ``strict``: then every prompt is
    missing). Warnings and notes go to ``err``; 1 with ``strict`` and a warning, else 0.
    """
    folder = directory or default_prompts_dir(loaded.path)
    if directory is None and not folder.is_dir() and not strict:
        print(
            f"{loaded.path}: prompt audio not checked: no folder {folder} (--prompts DIR names it)",
            file=out,
        )
        return 0
    diagnostics = audio_diagnostics(loaded, folder)
    for diagnostic in diagnostics:
        print(diagnostic, file=err)
    warnings = sum(1 for d in diagnostics if d.severity == "warning")
    if warnings:
        plural = "s" if warnings != 1 else ""
        print(f"{loaded.path}: {warnings} prompt audio warning{plural} ({folder})", file=err)
    return 1 if strict and warnings else 0
