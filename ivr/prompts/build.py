"""Rebuild the prompts that need it, in parallel, and record them in the manifest."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ivr.prompts.files import scan
from ivr.prompts.manifest import (
    Entry,
    Manifest,
    ManifestError,
    load_manifest,
    text_sha256,
    write_manifest,
)
from ivr.prompts.state import Orphan, Plan, Survey, plan_build, survey
from ivr.prompts.synth import SYNTHESIS, SynthesisError, Tools, convert, find_tools, speak

__all__ = ["BuildResult", "build_prompts", "import_recording", "look"]

Speaker = Callable[[str, str, Path, Tools], dict[str, str]]


@dataclass(frozen=True)
class BuildResult:
    plan: Plan
    built: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    orphans: tuple[Orphan, ...]
    pruned: tuple[str, ...]  # files removed by --prune
    manifest_written: bool


def look(texts: Mapping[str, str], directory: Path) -> tuple[Manifest, Survey]:
    """The manifest and the state of every prompt in ``directory`` (reads the folder)."""
    manifest = load_manifest(directory)
    return manifest, survey(texts, manifest, scan(directory), SYNTHESIS)


def _generated(text: str, files: dict[str, str], tools: Tools) -> Entry:
    return Entry(
        text=text,
        text_sha256=text_sha256(text),
        source="generated",
        synthesis=SYNTHESIS,
        tools=dict(tools.versions),
        files=files,
    )


def build_prompts(  # noqa: PLR0913 (keyword-only options of `ivr prompts build`)
    texts: Mapping[str, str],
    directory: Path,
    *,
    force: bool = False,
    only: Iterable[str] = (),
    prune: bool = False,
    jobs: int | None = None,
    speaker: Speaker = speak,
    tools: Tools | None = None,
) -> BuildResult:
    """Synthesise what :func:`plan_build` selects; raise ToolMissingError before any work.

    One prompt failing does not stop the others; the manifest records every prompt
    built, and is written (atomically) only when something changed.
    """
    try:
        manifest, found = look(texts, directory)
    except ManifestError:
        if not force:
            raise
        # --force rebuilds everything: a damaged manifest is simply replaced.
        manifest = Manifest()
        found = survey(texts, manifest, scan(directory), SYNTHESIS)
    plan = plan_build(found, force=force, only=only)
    built: list[str] = []
    failed: list[tuple[str, str]] = []
    entries: dict[str, Entry] = {}
    if plan.build:
        tools = tools or find_tools()
        directory.mkdir(parents=True, exist_ok=True)
        workers = max(1, min(jobs or os.cpu_count() or 1, len(plan.build)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prompt") as pool:
            futures: dict[str, Future[dict[str, str]]] = {
                name: pool.submit(speaker, name, texts[name], directory, tools)
                for name in plan.build
            }
        for name, future in futures.items():
            try:
                files = future.result()
            except SynthesisError as exc:
                failed.append((name, str(exc)))
            else:
                built.append(name)
                entries[name] = _generated(texts[name], files, tools)
    pruned: list[str] = []
    dropped: set[str] = set()
    if prune:
        for orphan in found.orphans:
            for file in orphan.files:
                (directory / file).unlink(missing_ok=True)
                pruned.append(file)
            if orphan.in_manifest:
                dropped.add(orphan.name)
    if entries or dropped:
        write_manifest(directory, manifest.with_entries(entries, drop=dropped))
    orphans = () if prune else found.orphans
    return BuildResult(
        plan, tuple(built), tuple(failed), orphans, tuple(pruned), bool(entries or dropped)
    )


def import_recording(texts: Mapping[str, str], directory: Path, name: str, source: Path) -> Entry:
    """Convert a recording of prompt ``name`` into its two files and mark it ``recorded``.

    The manifest then holds the hash of the text the recording says (the menu's text
    now): a later change of the text makes it stale, and builds never overwrite it
    without ``--force``.
    """
    if not source.is_file():
        raise SynthesisError(f"{source}: no such file")
    tools = find_tools(espeak=False)
    manifest = load_manifest(directory)
    files = convert(source, directory, name, tools, trim=False)
    entry = Entry(
        text=texts[name],
        text_sha256=text_sha256(texts[name]),
        source="recorded",
        tools={"sox": tools.versions["sox"]},
        files=files,
        recorded_from=source.name,
    )
    write_manifest(directory, manifest.with_entries({name: entry}))
    return entry
