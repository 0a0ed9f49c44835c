"""Compare the menu's prompt texts with the manifest and the audio files (no I/O).

A prompt is, in this order of precedence:

- ``missing``: one of its files (``<name>.wav``, ``<name>.ulaw``) is not there;
- ``invalid``: a file is there but Asterisk cannot play it as is (not 8 kHz mono 16-bit);
- ``modified``: the files are not the ones the manifest records (replaced by hand, or
  no manifest entry at all);
- ``stale``: the text changed since the audio was made, or a generated prompt was made
  with other synthesis settings;
- ``ok``.

Audio whose prompt the menu no longer defines is an orphan: a note, never an error.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ivr.menu.model import Menu
from ivr.prompts.manifest import Entry, Manifest, Synthesis, text_sha256

__all__ = [
    "AUDIO_SUFFIXES",
    "FileInfo",
    "Orphan",
    "Plan",
    "PromptStatus",
    "State",
    "Survey",
    "expected_files",
    "menu_texts",
    "plan_build",
    "prompt_status",
    "survey",
]

AUDIO_SUFFIXES = (".wav", ".ulaw")


class State(enum.Enum):
    OK = "ok"
    STALE = "stale"
    MISSING = "missing"
    MODIFIED = "modified"
    INVALID = "invalid"


@dataclass(frozen=True)
class FileInfo:
    """One audio file on disk: its hash and, when Asterisk could not play it, why."""

    sha256: str
    problem: str | None = None


@dataclass(frozen=True)
class PromptStatus:
    name: str
    state: State
    reason: str = ""
    source: str | None = None  # the manifest's "generated" / "recorded", None without entry

    @property
    def ok(self) -> bool:
        return self.state is State.OK


@dataclass(frozen=True)
class Orphan:
    """Audio or a manifest entry for a prompt the menu does not define."""

    name: str
    files: tuple[str, ...]
    in_manifest: bool


@dataclass(frozen=True)
class Survey:
    prompts: tuple[PromptStatus, ...]
    orphans: tuple[Orphan, ...]

    @property
    def problems(self) -> tuple[PromptStatus, ...]:
        return tuple(p for p in self.prompts if not p.ok)

    def of(self, name: str) -> PromptStatus:
        return next(p for p in self.prompts if p.name == name)


def expected_files(name: str) -> tuple[str, ...]:
    """The files a prompt needs, relative to the prompts folder (``/`` separated)."""
    return tuple(f"{name}{suffix}" for suffix in AUDIO_SUFFIXES)


def menu_texts(menu: Menu) -> dict[str, str]:
    """Every prompt the menu defines, in file order, with its text as spoken (stripped)."""
    return {name: prompt.text.strip() for name, prompt in menu.prompts.items()}


def _names(files: Iterable[str]) -> str:
    listed = sorted(files)
    return ", ".join(listed[:-1]) + " and " + listed[-1] if len(listed) > 1 else listed[0]


def prompt_status(
    name: str,
    text: str,
    entry: Entry | None,
    files: Mapping[str, FileInfo],
    synthesis: Synthesis,
) -> PromptStatus:
    """The state of one prompt; ``synthesis`` is what a build would use now."""
    source = entry.source if entry else None
    wanted = expected_files(name)
    absent = [f for f in wanted if f not in files]
    if absent:
        if len(absent) == len(wanted):
            reason = f"no audio ({_names(absent)})"
        else:
            reason = f"{_names(absent)} {'is' if len(absent) == 1 else 'are'} missing"
        return PromptStatus(name, State.MISSING, reason, source)
    bad = [f"{f}: {files[f].problem}" for f in wanted if files[f].problem]
    if bad:
        return PromptStatus(name, State.INVALID, "; ".join(bad), source)
    if entry is None:
        reason = "its audio is not in the manifest (copied by hand?)"
        return PromptStatus(name, State.MODIFIED, reason, source)
    changed = [f for f in wanted if entry.files.get(f) != files[f].sha256]
    if changed:
        reason = f"{_names(changed)} changed since the manifest was written"
        return PromptStatus(name, State.MODIFIED, reason, source)
    if entry.text_sha256 != text_sha256(text):
        made = "built" if entry.generated else "recorded"
        return PromptStatus(name, State.STALE, f"text changed since its audio was {made}", source)
    if entry.generated and entry.synthesis != synthesis:
        reason = "built with other synthesis settings"
        return PromptStatus(name, State.STALE, reason, source)
    return PromptStatus(name, State.OK, "", source)


def _prompt_of(file: str) -> str | None:
    for suffix in AUDIO_SUFFIXES:
        if file.endswith(suffix):
            return file.removesuffix(suffix)
    return None


def survey(
    texts: Mapping[str, str],
    manifest: Manifest,
    files: Mapping[str, FileInfo],
    synthesis: Synthesis,
) -> Survey:
    """Every prompt of the menu (in its order) and every orphan (by name)."""
    statuses = tuple(
        prompt_status(name, text, manifest.prompts.get(name), files, synthesis)
        for name, text in texts.items()
    )
    orphan_files: dict[str, list[str]] = {}
    for file in files:
        name = _prompt_of(file)
        if name is not None and name not in texts:
            orphan_files.setdefault(name, []).append(file)
    orphan_names = set(orphan_files) | (set(manifest.prompts) - set(texts))
    orphans = tuple(
        Orphan(name, tuple(sorted(orphan_files.get(name, []))), name in manifest.prompts)
        for name in sorted(orphan_names)
    )
    return Survey(statuses, orphans)


@dataclass(frozen=True)
class Plan:
    """What a build does: synthesise ``build``; leave ``skipped`` (with why) alone."""

    build: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    up_to_date: tuple[str, ...]


def plan_build(result: Survey, *, force: bool = False, only: Iterable[str] = ()) -> Plan:
    """Decide which prompts to synthesise.

    Without ``force`` only generated audio is replaced: a missing or stale prompt with no
    entry or a ``generated`` one. Recorded audio, and files changed or added by hand,
    are never overwritten unless ``force`` says so: the reason tells the admin what to do.
    ``only`` restricts the build to those names (all prompts when empty).
    """
    selected = set(only)
    build: list[str] = []
    skipped: list[tuple[str, str]] = []
    current: list[str] = []
    for status in result.prompts:
        if selected and status.name not in selected:
            continue
        redo_hint = f"build --force --only {status.name} replaces it with synthesised audio"
        if force:
            build.append(status.name)
        elif status.ok:
            current.append(status.name)
        elif status.state in {State.MISSING, State.STALE} and status.source != "recorded":
            build.append(status.name)
        elif status.source == "recorded":
            why = (
                f"recorded audio, {status.reason}: record it again and run "
                f"'ivr prompts import {status.name} FILE', or {redo_hint}"
            )
            skipped.append((status.name, why))
        else:
            why = (
                f"{status.reason}: if it is a recording, register it with "
                f"'ivr prompts import {status.name} FILE'; {redo_hint}"
            )
            skipped.append((status.name, why))
    return Plan(tuple(build), tuple(skipped), tuple(current))
