"""The ``ivr`` command: check, schema, simulate, hours and serve.

Exit codes: 0 success, 1 the menu (or a setting) is invalid, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ivr import __version__
from ivr.app import run_service
from ivr.menu.hours import Schedule
from ivr.menu.loader import LoadedMenu, MenuError, load_menu, resolve_menu_path
from ivr.menu.schema import menu_json_schema
from ivr.simulate import ScriptError, parse_script, render_text, simulate

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _default_config() -> Path:
    # Honour IVR_CONFIG without failing on unrelated bad settings in offline commands.
    return Path(os.environ.get("IVR_CONFIG") or "config")


def _load_or_report(path: Path, err: TextIO) -> LoadedMenu | None:
    try:
        return load_menu(path)
    except MenuError as exc:
        for error in exc.errors:
            print(error, file=err)
        count = len(exc.errors)
        print(f"{resolve_menu_path(path)}: {count} error{'s' if count != 1 else ''}", file=err)
        return None


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    loaded = _load_or_report(args.path or _default_config(), err)
    if loaded is None:
        return EXIT_INVALID
    menu = loaded.menu
    areas = sum(len(v.areas) for v in menu.vertientes.values())
    print(
        f"{loaded.path}: OK: line {menu.line.number} {menu.line.name!r}, version {menu.version}, "
        f"{len(menu.vertientes)} vertientes, {areas} areas, {len(menu.queues)} queues, "
        f"{len(menu.prompts)} prompts",
        file=out,
    )
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    del args, err
    print(json.dumps(menu_json_schema(), indent=2, ensure_ascii=False), file=out)
    return EXIT_OK


def _parse_instant(text: str | None, schedule: Schedule) -> datetime:
    if text is None:
        return datetime.now(schedule.tz)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ScriptError(
            f"invalid --at {text!r}: use ISO-8601, e.g. 2026-12-07T09:00 or 2026-12-07T15:00Z"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=schedule.tz)


class _CommandError(Exception):
    """Ends a command early with an exit code (its message is already printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _schedule_at(args: argparse.Namespace, err: TextIO) -> tuple[Schedule, datetime]:
    """The menu's schedule and the ``--at`` instant, shared by simulate and hours."""
    loaded = _load_or_report(args.config or _default_config(), err)
    if loaded is None:
        raise _CommandError(EXIT_INVALID)
    schedule = Schedule(loaded.menu)
    try:
        return schedule, _parse_instant(args.at, schedule)
    except ScriptError as exc:
        print(f"ivr {args.command}: {exc}", file=err)
        raise _CommandError(EXIT_USAGE) from None


def cmd_simulate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    schedule, at = _schedule_at(args, err)
    try:
        script = parse_script(args.digits)
    except ScriptError as exc:
        print(f"ivr simulate: {exc}", file=err)
        return EXIT_USAGE
    result = simulate(schedule, at, script)
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False), file=out)
    else:
        print(render_text(result, schedule), file=out)
    return EXIT_OK


def cmd_hours(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    schedule, at = _schedule_at(args, err)
    menu = schedule.menu
    rows = []
    for vkey, vertiente in sorted(menu.vertientes.items(), key=lambda kv: kv[1].digit):
        for akey, area in sorted(vertiente.areas.items(), key=lambda kv: kv[1].digit):
            status = schedule.status(akey, at)
            nxt = status.next_open.astimezone(schedule.tz) if status.next_open else None
            rows.append(
                {
                    "digits": f"{vertiente.digit} {area.digit}",
                    "vertiente": vkey,
                    "area": akey,
                    "offered": status.offered,
                    "open": status.open,
                    "reason": status.reason.value,
                    "holiday": status.holiday,
                    "next_open": nxt.isoformat() if nxt else None,
                }
            )
    if args.json:
        print(json.dumps({"at": at.isoformat(), "areas": rows}, ensure_ascii=False), file=out)
        return EXIT_OK
    print(f"At {at.astimezone(schedule.tz):%A %Y-%m-%d %H:%M} {schedule.tz.key}:", file=out)
    print(f"{'keys':<5} {'area':<22} {'offered':<8} {'state':<36} next opening", file=out)
    for row in rows:
        state = "open" if row["open"] else str(row["reason"])
        if row["holiday"]:
            state = f"holiday ({row['holiday']})"
        offered = "yes" if row["offered"] else "no"
        shown = str(row["next_open"] or ("-" if row["open"] else "never"))
        print(f"{row['digits']:<5} {row['area']:<22} {offered:<8} {state:<36} {shown}", file=out)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    del out
    return run_service(config=args.config, err=err)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr",
        description="Línea Aquí: the IVR engine of Querétaro's citizen line.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="validate the menu; errors as file:line:col: message")
    check.add_argument(
        "path", nargs="?", type=Path, help="menu file or folder holding menu.yaml (default: config)"
    )
    check.set_defaults(handler=cmd_check)

    schema = sub.add_parser("schema", help="print the JSON Schema of the menu file")
    schema.set_defaults(handler=cmd_schema)

    sim = sub.add_parser(
        "simulate",
        help="walk the menu on paper: what a caller hears and where the call ends",
        description=(
            "Walk the menu with no network. --digits lists the caller's answers, one per menu: "
            "keys 0-9, * and #, or - to stay silent until the timeout. When the keys run out "
            "while a menu waits, the walk stops there."
        ),
    )
    sim.add_argument("--at", help="instant, ISO-8601; without offset it is the line's local time")
    sim.add_argument("--digits", default="", help='keys pressed, e.g. "1 2" (default: none)')
    sim.add_argument("--config", type=Path, help="menu file or folder (default: config)")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.set_defaults(handler=cmd_simulate)

    hours = sub.add_parser("hours", help="which areas are offered and open at an instant")
    hours.add_argument("--at", help="instant, ISO-8601 (default: now)")
    hours.add_argument("--config", type=Path, help="menu file or folder (default: config)")
    hours.add_argument("--json", action="store_true", help="print one JSON object")
    hours.set_defaults(handler=cmd_hours)

    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--config", type=Path, help="menu file or folder (default: IVR_CONFIG)")
    serve.set_defaults(handler=cmd_serve)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args, out, err)
    except _CommandError as stop:
        return stop.code
    return code
