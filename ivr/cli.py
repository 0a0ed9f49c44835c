"""The ``ivr`` command: check, schema, simulate, hours, serve, dial, db, report, purge, prompts.

``check``, ``schema``, ``simulate`` and ``hours`` work on the menu alone, offline.
``render`` writes the Asterisk configuration the menu implies (``ivr.asterisk_conf``);
``check --asterisk-dir`` compares the menu's queues with those of an Asterisk folder.
``prompts build``, ``status`` and ``import`` make and track the prompt audio in
``prompts/es/`` (espeak-ng and sox); ``check`` warns about stale or missing audio
(exit 0, or 1 with ``--strict``).
``dial`` calls the running service over FastAGI, as Asterisk does.
``db migrate``, ``db status``, ``report`` and ``purge`` work on the call records in
PostgreSQL: ``IVR_DATABASE_URL``, or the embedded server under ``IVR_DATA_DIR`` (started
for the command and stopped after it unless ``ivr serve`` still uses it).

Exit codes: 0 success; 1 the menu is invalid, or the database cannot be reached or its
schema history does not match this release; 2 usage error (bad arguments or settings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

import asyncpg

from ivr import __version__
from ivr.app import run_service
from ivr.asterisk_conf import (
    RenderError,
    add_asterisk_dir_argument,
    add_render_arguments,
    render_all,
    report_cross_check,
    write_files,
)
from ivr.dial import DialError, run_dial, where_it_went
from ivr.menu.hours import Schedule
from ivr.menu.loader import LoadedMenu, MenuError, load_menu, resolve_menu_path
from ivr.menu.schema import menu_json_schema
from ivr.prompts.checking import report_prompt_audio
from ivr.prompts.commands import add_check_arguments, add_prompts_arguments, run_prompts_command
from ivr.records.embedded import PGDATA, DatabaseUnavailableError, database_url
from ivr.records.migrate import MigrationError, available_migrations, migrate
from ivr.records.purge import count_purgeable, cutoff, purge
from ivr.records.report import DIMENSIONS, Period, parse_day, render_csv, render_table, run_report
from ivr.records.service import SPOOL_DIR
from ivr.records.spool import REJECTED, summarise
from ivr.settings import Settings, SettingsError, load_settings
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
    # Stale or missing prompt audio: warnings at each prompt's text (exit 1 with --strict).
    code = report_prompt_audio(loaded, args.prompts, strict=args.strict, out=out, err=err)
    # The menu's queues against an existing Asterisk configuration (exit 1 when one lacks).
    asterisk_dir: Path | None = getattr(args, "asterisk_dir", None)
    if asterisk_dir is not None and not report_cross_check(loaded, asterisk_dir, out, err):
        return EXIT_INVALID
    return code


def cmd_prompts(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    loaded = _load_or_report(args.config or _default_config(), err)
    if loaded is None:
        return EXIT_INVALID
    return run_prompts_command(args, loaded, out, err)


def cmd_schema(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    del args, err
    print(json.dumps(menu_json_schema(), indent=2, ensure_ascii=False), file=out)
    return EXIT_OK


def cmd_render(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = args.config or _default_config()
    loaded = _load_or_report(config, err)
    if loaded is None:
        return EXIT_INVALID
    # Default: the dialplan/ folder next to the menu's folder (config/ -> dialplan/).
    dialplan = args.dialplan or resolve_menu_path(config).parent.parent / "dialplan"
    try:
        files = render_all(loaded, prompt_dir=args.prompt_dir, dialplan_dir=dialplan)
        written = write_files(args.out, files)
    except (RenderError, OSError) as exc:
        print(f"ivr render: {exc}", file=err)
        return EXIT_INVALID
    for path in written:
        print(f"wrote {path}", file=out)
    print(
        f"{len(loaded.menu.queues)} queues from {loaded.path} (version {loaded.menu.version}); "
        f"install as in {args.out / 'README.txt'}",
        file=out,
    )
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


# --- commands on the call records ----------------------------------------------------------

T = TypeVar("T")
CONNECT_TIMEOUT = 10.0


class _UnreachableError(Exception):
    """The database did not accept a connection; the message says why."""


def _database_name(settings: Settings) -> str:
    if settings.uses_embedded_database():
        return f"the embedded PostgreSQL in {settings.data_dir / PGDATA}"
    return settings.database_url_for_logs()


async def _connected(url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except ValueError:
        # The parser's message may quote a piece of the URL, password included.
        raise _UnreachableError("the URL is not a valid postgresql:// URL") from None
    except TimeoutError:
        raise _UnreachableError(f"no answer within {CONNECT_TIMEOUT:g} s") from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _UnreachableError(str(exc) or type(exc).__name__) from None
    try:
        return await work(conn)
    finally:
        await conn.close()


def _settings(command: str, err: TextIO) -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"ivr {command}: {exc}", file=err)
        raise _CommandError(EXIT_USAGE) from None


def _with_database(
    command: str,
    err: TextIO,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    settings: Settings | None = None,
) -> T:
    """Run ``work`` on a connection to the configured database; errors end the command."""
    if settings is None:
        settings = _settings(command, err)
    where = _database_name(settings)
    try:
        with database_url(settings) as url:
            return asyncio.run(_connected(url, work))
    except DatabaseUnavailableError as exc:
        print(f"ivr {command}: {exc}", file=err)
    except _UnreachableError as exc:
        print(f"ivr {command}: cannot connect to {where}: {exc}", file=err)
    except MigrationError as exc:
        print(f"ivr {command}: {exc}", file=err)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"ivr {command}: database error on {where}: {exc}", file=err)
    raise _CommandError(EXIT_INVALID)


def cmd_db_migrate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    del args
    applied = _with_database("db migrate", err, migrate)
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}", file=out)
    if not applied:
        latest = available_migrations()[-1]
        print(f"up to date (latest migration {latest.version:04d}_{latest.name})", file=out)
    return EXIT_OK


async def _status(conn: asyncpg.Connection) -> tuple[list[str], list[str], int | None, bool]:
    """(applied lines, pending lines, calls stored or None, whether the history is sound)."""
    known = {m.version: m for m in available_migrations()}
    done: dict[int, tuple[str, str, datetime]] = {}
    if await conn.fetchval("SELECT to_regclass('ivr_schema_migrations') IS NOT NULL"):
        rows = await conn.fetch(
            "SELECT version, name, checksum, applied_at FROM ivr_schema_migrations"
        )
        done = {
            int(r["version"]): (str(r["name"]), str(r["checksum"]), r["applied_at"]) for r in rows
        }
    applied: list[str] = []
    sound = True
    for version, (name, checksum, at) in sorted(done.items()):
        line = f"{version:04d}_{name} at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        migration = known.get(version)
        if migration is None:
            line += " (unknown to this release: the database is newer)"
            sound = False
        elif migration.checksum != checksum:
            line += " (CHANGED since it was applied)"
            sound = False
        applied.append(line)
    pending = [f"{m.version:04d}_{m.name}" for v, m in sorted(known.items()) if v not in done]
    calls: int | None = None
    if await conn.fetchval("SELECT to_regclass('calls') IS NOT NULL"):
        calls = int(await conn.fetchval("SELECT count(*) FROM calls"))
    return applied, pending, calls, sound


def _print_spool(settings: Settings, out: TextIO) -> None:
    directory = settings.data_dir / SPOOL_DIR
    spool = summarise(directory)
    if spool.segments:
        print(
            f"spool: {spool.segments} segment(s), {spool.bytes:,} bytes waiting for the "
            f"database in {directory} (replayed by ivr serve)",
            file=out,
        )
    else:
        print(f"spool: empty ({directory})", file=out)
    if spool.rejected:
        print(
            f"rejected records: {spool.rejected:,}, kept with the reason in {directory / REJECTED}",
            file=out,
        )


def cmd_db_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    del args
    settings = _settings("db status", err)
    applied, pending, calls, sound = _with_database("db status", err, _status, settings)
    print(f"applied migrations: {len(applied) or 'none'}", file=out)
    for line in applied:
        print(f"  {line}", file=out)
    print(f"pending migrations: {len(pending) or 'none'}", file=out)
    for line in pending:
        print(f"  {line}  (run: ivr db migrate)", file=out)
    shown = "no calls table yet" if calls is None else f"{calls:,}"
    print(f"calls stored: {shown}", file=out)
    _print_spool(settings, out)
    return EXIT_OK if sound else EXIT_INVALID


def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        first, last = parse_day(args.date_from), parse_day(args.date_to)
    except ValueError as exc:
        print(f"ivr report: {exc}", file=err)
        return EXIT_USAGE
    if last < first:
        print(f"ivr report: --to {last} is before --from {first}", file=err)
        return EXIT_USAGE
    loaded = _load_or_report(args.config or _default_config(), err)
    if loaded is None:
        return EXIT_INVALID
    menu = loaded.menu
    period = Period(first, last, menu.line.tz)

    async def work(conn: asyncpg.Connection) -> str:
        await migrate(conn)
        report = await run_report(conn, menu, period, args.by)
        return render_csv(report) if args.format == "csv" else render_table(report)

    out.write(_with_database("report", err, work))
    return EXIT_OK


def cmd_purge(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    days: int | None = args.older_than
    if days is not None and days < 1:
        print(f"ivr purge: --older-than must be at least 1 day, got {days}", file=err)
        return EXIT_USAGE

    settings = _settings("purge", err)
    before = cutoff(datetime.now(UTC), settings.retention_days if days is None else days)

    async def work(conn: asyncpg.Connection) -> int:
        await migrate(conn)
        if args.dry_run:
            return await count_purgeable(conn, before)
        return await purge(conn, before)

    count = _with_database("purge", err, work, settings)
    when = f"{before:%Y-%m-%d %H:%M} UTC"
    noun = "call" if count == 1 else "calls"
    if args.dry_run:
        print(f"would purge {count:,} {noun} started before {when} (dry run)", file=out)
    else:
        print(
            f"purged caller number and name from {count:,} {noun} started before {when}", file=out
        )
    return EXIT_OK


def cmd_dial(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    loaded = _load_or_report(args.config or _default_config(), err)
    if loaded is None:
        return EXIT_INVALID
    try:
        script = None if args.digits is None else parse_script(args.digits)
    except ScriptError as exc:
        print(f"ivr dial: {exc}", file=err)
        return EXIT_USAGE
    host = args.host or os.environ.get("IVR_AGI_HOST") or "127.0.0.1"
    if host in {"0.0.0.0", "::"}:  # noqa: S104 - a listening address, dialled on loopback
        host = "127.0.0.1"
    try:
        port = args.port or int(os.environ.get("IVR_AGI_PORT") or 4573)
    except ValueError:
        print("ivr dial: IVR_AGI_PORT is not a port number; give --port", file=err)
        return EXIT_USAGE
    menu = loaded.menu
    print(f"Calling {menu.line.number} ({menu.line.name}) through {host}:{port}", file=out)
    try:
        result = run_dial(
            host,
            port,
            script=script,
            at=args.at,
            prompts={name: prompt.text for name, prompt in menu.prompts.items()},
            tz=menu.line.tz,
            out=out,
        )
    except DialError as exc:
        print(f"ivr dial: {exc}", file=err)
        return EXIT_INVALID
    print("", file=out)
    for line in where_it_went(result):
        print(line, file=out)
    if (
        args.at
        and result.variables.get("IVR_AT")
        and not result.variables["IVR_AT"].startswith(args.at[:16])
    ):
        print(
            "note: the service ignored --at; start it with IVR_AGI_ALLOW_TIME_OVERRIDE=true "
            "(make run does)",
            file=out,
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one flat list of subcommands
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
    add_check_arguments(check)
    add_asterisk_dir_argument(check)
    check.set_defaults(handler=cmd_check)

    schema = sub.add_parser("schema", help="print the JSON Schema of the menu file")
    schema.set_defaults(handler=cmd_schema)

    render = sub.add_parser(
        "render",
        help="write the Asterisk configuration the menu implies (queues.conf and the dialplan)",
        description=(
            "Write into DIR the folder to install as /etc/asterisk/linea-aqui/: queues.conf "
            "generated from the menu's queues, the project's extensions.conf and manager.conf, "
            "and a README.txt with the #include lines for the stock files."
        ),
    )
    add_render_arguments(render)
    render.set_defaults(handler=cmd_render)

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

    dial_cmd = sub.add_parser(
        "dial",
        help="call the running service from the terminal, as Asterisk would",
        description=(
            "A terminal softphone: connects to the running service over FastAGI exactly as "
            "Asterisk does, prints what the caller hears and reads your keys (Enter alone is "
            "silence, q hangs up), then shows where the call ended."
        ),
    )
    dial_cmd.add_argument(
        "--digits", help='answers instead of the keyboard, e.g. "2 1" (- is silence)'
    )
    dial_cmd.add_argument(
        "--at",
        help="pretend this local time (ISO-8601); the service must allow it "
        "(IVR_AGI_ALLOW_TIME_OVERRIDE=true, as make run does)",
    )
    dial_cmd.add_argument("--host", help="service address (default: IVR_AGI_HOST or 127.0.0.1)")
    dial_cmd.add_argument("--port", type=int, help="service port (default: IVR_AGI_PORT or 4573)")
    dial_cmd.add_argument(
        "--config", type=Path, help="menu for the prompts' text (default: config)"
    )
    dial_cmd.set_defaults(handler=cmd_dial)

    db = sub.add_parser("db", help="the call records database: migrate, status")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_migrate = db_sub.add_parser("migrate", help="apply the pending schema migrations")
    db_migrate.set_defaults(handler=cmd_db_migrate)
    db_status = db_sub.add_parser(
        "status", help="applied and pending migrations, and how many calls are stored"
    )
    db_status.set_defaults(handler=cmd_db_status)

    report = sub.add_parser(
        "report",
        help="call statistics over a range of days",
        description=(
            "Call statistics for the local days --from to --to (both included, in the "
            "line's time zone): calls, routed, closed (outside hours), abandoned in the "
            "menu, other outcomes, and queue wait percentiles."
        ),
    )
    report.add_argument(
        "--from", dest="date_from", required=True, metavar="DATE", help="first day, YYYY-MM-DD"
    )
    report.add_argument(
        "--to",
        dest="date_to",
        required=True,
        metavar="DATE",
        help="last day (included), YYYY-MM-DD",
    )
    report.add_argument(
        "--by",
        choices=DIMENSIONS,
        default="vertiente",
        help="rows per vertiente and its areas (default), area, month or outcome",
    )
    report.add_argument(
        "--format",
        choices=("table", "csv"),
        default="table",
        help="aligned text with totals (default) or CSV",
    )
    report.add_argument("--config", type=Path, help="menu file or folder (default: config)")
    report.set_defaults(handler=cmd_report)

    purge_cmd = sub.add_parser(
        "purge",
        help="clear caller numbers and names older than the retention period",
        description=(
            "Clear caller_number and caller_name from calls that started more than DAYS "
            "days ago. Statistics and the keyed caller hash are kept."
        ),
    )
    purge_cmd.add_argument(
        "--older-than",
        type=int,
        metavar="DAYS",
        help="retention in days (default: IVR_RETENTION_DAYS, 365)",
    )
    purge_cmd.add_argument(
        "--dry-run", action="store_true", help="only count the calls that would be purged"
    )
    purge_cmd.set_defaults(handler=cmd_purge)

    prompts_cmd = sub.add_parser(
        "prompts",
        help="prompt audio: build it from the menu's texts, show its state, import recordings",
    )
    add_prompts_arguments(prompts_cmd)
    prompts_cmd.set_defaults(handler=cmd_prompts)
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
