"""``ivr prompts build|status|import`` and the prompt options of ``ivr check``.

The menu is loaded (and its errors reported) by :mod:`ivr.cli`; these functions get the
loaded menu. Exit codes follow ``ivr``'s: 0 done, 1 a prompt could not be made (or the
tools are missing), 2 usage (an unknown prompt name).
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from ivr.menu.loader import LoadedMenu
from ivr.prompts.build import build_prompts, import_recording, look
from ivr.prompts.checking import default_prompts_dir
from ivr.prompts.manifest import ManifestError
from ivr.prompts.state import State, menu_texts
from ivr.prompts.synth import SynthesisError, ToolMissingError

__all__ = ["add_check_arguments", "add_prompts_arguments", "run_prompts_command"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_FOLDER_HELP = "prompt audio folder (default: prompts/es beside the menu's folder)"


def add_check_arguments(check: argparse.ArgumentParser) -> None:
    check.add_argument("--prompts", type=Path, metavar="DIR", help=_FOLDER_HELP)
    check.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when prompt audio is stale, missing or changed (default: warn, exit 0)",
    )


def _common(parser: argparse.ArgumentParser, *folder_flags: str) -> None:
    parser.add_argument("--config", type=Path, help="menu file or folder (default: config)")
    parser.add_argument(
        *folder_flags, dest="prompts_dir", type=Path, metavar="DIR", help=_FOLDER_HELP
    )


def add_prompts_arguments(prompts: argparse.ArgumentParser) -> None:
    """The actions of ``ivr prompts``; the caller sets the handler."""
    actions = prompts.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="synthesise the prompts whose text changed or whose audio is missing",
        description=(
            "Speak each prompt's text with espeak-ng (voice es-419) and make, with sox, "
            "<name>.wav (8 kHz mono 16-bit) and <name>.ulaw for Asterisk, then record them "
            "in manifest.json. Only stale and missing generated prompts are rebuilt; "
            "recorded audio and files changed by hand are kept unless --force."
        ),
    )
    _common(build, "--out", "--prompts")
    build.add_argument(
        "--force", action="store_true", help="rebuild every selected prompt, recordings too"
    )
    build.add_argument(
        "--only", nargs="+", action="extend", default=[], metavar="NAME", help="only these prompts"
    )
    build.add_argument(
        "--prune", action="store_true", help="delete audio of prompts the menu no longer defines"
    )
    build.add_argument("--jobs", type=int, help="prompts made at once (default: CPU count)")
    status = actions.add_parser("status", help="the state of each prompt's audio")
    _common(status, "--prompts")
    record = actions.add_parser(
        "import",
        help="use a recording (any format sox reads) as a prompt's audio",
        description=(
            "Convert FILE to <name>.wav and <name>.ulaw (8 kHz mono, level normalised) and "
            "mark the prompt as recorded: builds keep it until its text changes."
        ),
    )
    record.add_argument("name", metavar="NAME", help="the prompt, as named under prompts:")
    record.add_argument("file", type=Path, metavar="FILE", help="the recording")
    _common(record, "--prompts")


def _unknown(names: Iterable[str], texts: dict[str, str], command: str, err: TextIO) -> bool:
    unknown = [name for name in names if name not in texts]
    for name in unknown:
        close = difflib.get_close_matches(name, list(texts), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(f"ivr prompts {command}: the menu defines no prompt {name!r}{hint}", file=err)
    return bool(unknown)


def _build(
    args: argparse.Namespace, loaded: LoadedMenu, folder: Path, out: TextIO, err: TextIO
) -> int:
    texts = menu_texts(loaded.menu)
    if _unknown(args.only, texts, "build", err):
        return EXIT_USAGE
    try:
        result = build_prompts(
            texts, folder, force=args.force, only=args.only, prune=args.prune, jobs=args.jobs
        )
    except (ToolMissingError, ManifestError) as exc:
        print(f"ivr prompts build: {exc}", file=err)
        return EXIT_FAILED
    for name in result.built:
        print(f"built {folder / name}.wav and .ulaw: {texts[name]!r}", file=out)
    for file in result.pruned:
        print(f"removed {folder / file}", file=out)
    for name, why in result.plan.skipped:
        print(f"skipped {name}: {why}", file=err)
    for name, why in result.failed:
        print(f"failed {name}: {why}", file=err)
    for orphan in result.orphans:
        print(
            f"note: {orphan.name!r} is not in the menu any more; --prune removes its audio",
            file=out,
        )
    summary = (
        f"{folder}: {len(result.built)} built, {len(result.plan.up_to_date)} up to date, "
        f"{len(result.plan.skipped)} skipped, {len(result.failed)} failed"
    )
    print(summary + ("; manifest written" if result.manifest_written else ""), file=out)
    return EXIT_FAILED if result.failed else EXIT_OK


def _status(folder: Path, loaded: LoadedMenu, out: TextIO, err: TextIO) -> int:
    try:
        _, found = look(menu_texts(loaded.menu), folder)
    except ManifestError as exc:
        print(f"ivr prompts status: {exc}", file=err)
        return EXIT_FAILED
    width = max((len(p.name) for p in found.prompts), default=0)
    for status in found.prompts:
        line = f"{status.state.value:<8}  {status.source or '-':<9}  {status.name:<{width}}"
        print(f"{line}  {status.reason}".rstrip(), file=out)
    for orphan in found.orphans:
        files = ", ".join(orphan.files) or "manifest entry only"
        print(f"{'orphan':<8}  {'-':<9}  {orphan.name:<{width}}  {files}", file=out)
    counts = {state: sum(1 for p in found.prompts if p.state is state) for state in State}
    parts = ", ".join(f"{n} {state.value}" for state, n in counts.items() if n)
    orphans = f"; {len(found.orphans)} orphan{'s' if len(found.orphans) != 1 else ''}"
    orphans = orphans if found.orphans else ""
    print(f"{folder}: {len(found.prompts)} prompts: {parts or 'none'}{orphans}", file=out)
    return EXIT_OK


def _import(
    args: argparse.Namespace, loaded: LoadedMenu, folder: Path, out: TextIO, err: TextIO
) -> int:
    texts = menu_texts(loaded.menu)
    if _unknown([args.name], texts, "import", err):
        return EXIT_USAGE
    try:
        entry = import_recording(texts, folder, args.name, args.file)
    except (ToolMissingError, SynthesisError, ManifestError) as exc:
        print(f"ivr prompts import: {exc}", file=err)
        return EXIT_FAILED
    files = " and ".join(str(folder / file) for file in sorted(entry.files))
    print(f"imported {args.file} as {args.name!r} (recorded): {files}", file=out)
    return EXIT_OK


def run_prompts_command(
    args: argparse.Namespace, loaded: LoadedMenu, out: TextIO, err: TextIO
) -> int:
    folder: Path = args.prompts_dir or default_prompts_dir(loaded.path)
    if args.prompts_command == "build":
        return _build(args, loaded, folder, out, err)
    if args.prompts_command == "import":
        return _import(args, loaded, folder, out, err)
    return _status(folder, loaded, out, err)
