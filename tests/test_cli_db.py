"""``ivr db migrate``, ``ivr db status``, ``ivr report`` and ``ivr purge`` end to end.

Most tests call :func:`ivr.cli.main` with ``IVR_DATABASE_URL`` pointing at a fresh test
database; a few run the real command in a subprocess, one of them with no URL at all so
that it starts (and stops) the embedded PostgreSQL under a temporary ``IVR_DATA_DIR``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from menus import MEXICO, menu_yaml

from ivr.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main
from ivr.records.migrate import available_migrations
from ivr.records.model import CallRecord, QueueOutcome, Record
from ivr.records.recorder import write_records
from ivr.records.spool import Spool

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo(MEXICO)
KEY = b"cli-test-key"
LATEST = available_migrations()[-1]
LATEST_NAME = f"{LATEST.version:04d}_{LATEST.name}"

VERTIENTES_YAML = """
servicios:
  digit: 2
  name: Servicios estatales
  prompt: op-servicios
  menu_prompt: menu-servicios
  areas:
    atencion:
      digit: 1
      name: Atención ciudadana
      department: Coordinación de Atención Ciudadana
      queue: general
      prompt: op-atencion
programas:
  digit: 1
  name: Programas gubernamentales
  prompt: op-programas
  menu_prompt: menu-programas
  areas:
    placas:
      digit: 2
      name: Reemplacamiento
      department: Finanzas
      queue: vehicular
      prompt: op-placas
    paseo:
      digit: 1
      name: Paseo 5 de Febrero
      department: Obras Públicas
      queue: obras
      prompt: op-paseo
"""


def local(text: str) -> datetime:
    """A wall-clock time in Mexico City, written as ISO 8601 without an offset."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


# (started, vertiente, area, outcome, caller, queue wait). With --from 2022-07-01
# --to 2022-08-31 the first five count: 5 calls, 3 callers, waits 30 and 60 seconds.
CALLS: list[tuple[datetime, str | None, str | None, str, str | None, float | None]] = [
    (local("2022-07-10T10:00"), "programas", "paseo", "routed", "4421110001", 30.0),
    (local("2022-07-11T10:00"), "programas", "paseo", "routed", "4421110002", 60.0),
    (local("2022-08-02T12:00"), "programas", "placas", "closed", "4421110001", None),
    (local("2022-08-03T12:00"), None, None, "abandoned_in_menu", "4421110003", None),
    (local("2022-08-31T23:30"), "servicios", "atencion", "fallback", None, None),
    (local("2022-09-01T00:30"), "servicios", "atencion", "routed", "4421110004", 90.0),
    (local("2022-06-30T23:00"), "servicios", "atencion", "routed", "4421110005", 120.0),
]


def records(
    rows: Sequence[tuple[datetime, str | None, str | None, str, str | None, float | None]],
) -> list[Record]:
    found: list[Record] = []
    for index, (started, vertiente, area, outcome, caller, wait) in enumerate(rows, start=1):
        call_id = UUID(int=index)
        found.append(
            CallRecord(
                call_id=call_id,
                rev=1,
                caller_number=caller,
                caller_name=None if caller is None else "CIUDADANO",
                started_at=started,
                vertiente=vertiente,
                area=area,
                outcome=outcome,
            )
        )
        if wait is not None:
            found.append(QueueOutcome(call_id=call_id, queue_wait_seconds=wait))
    return found


async def _seed(url: str, items: Sequence[Record]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await write_records(conn, items, KEY)
    finally:
        await conn.close()


def seed(url: str, items: Sequence[Record]) -> None:
    asyncio.run(_seed(url, items))


async def _fetch(url: str, query: str) -> list[dict[str, object]]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(row.items()) for row in await conn.fetch(query)]
    finally:
        await conn.close()


def fetch(url: str, query: str) -> list[dict[str, object]]:
    return asyncio.run(_fetch(url, query))


def ivr(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def menu_file(tmp_path: Path) -> Path:
    path = tmp_path / "menu.yaml"
    path.write_text(menu_yaml(VERTIENTES_YAML), encoding="utf-8")
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No IVR_* from the developer's shell; a data dir nobody else uses."""
    for name in list(os.environ):
        if name.startswith("IVR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "var"))
    return monkeypatch


@pytest.fixture
def use_db(clean_env: pytest.MonkeyPatch, database_url: str) -> str:
    clean_env.setenv("IVR_DATABASE_URL", database_url)
    return database_url


@pytest.fixture
def use_empty_db(clean_env: pytest.MonkeyPatch, empty_database_url: str) -> str:
    clean_env.setenv("IVR_DATABASE_URL", empty_database_url)
    return empty_database_url


# --- ivr db ------------------------------------------------------------------------------------


def test_db_migrate_applies_then_says_up_to_date(use_empty_db: str) -> None:
    code, out, err = ivr("db", "migrate")
    assert (code, err) == (EXIT_OK, "")
    assert out.splitlines() == [f"applied {m.version:04d}_{m.name}" for m in available_migrations()]
    assert fetch(use_empty_db, "SELECT count(*) AS n FROM calls") == [{"n": 0}]

    code, out, err = ivr("db", "migrate")
    assert (code, err) == (EXIT_OK, "")
    assert out == f"up to date (latest migration {LATEST_NAME})\n"


def test_db_status_before_and_after_migrating(use_empty_db: str) -> None:
    code, out, err = ivr("db", "status")
    assert (code, err) == (EXIT_OK, "")
    assert out.splitlines() == [
        "applied migrations: none",
        f"pending migrations: {len(available_migrations())}",
        *(f"  {m.version:04d}_{m.name}  (run: ivr db migrate)" for m in available_migrations()),
        "calls stored: no calls table yet",
        f"spool: empty ({Path(os.environ['IVR_DATA_DIR']) / 'spool'})",
    ]
    # Status only looks: it must not have migrated anything.
    assert fetch(use_empty_db, "SELECT to_regclass('calls') IS NULL AS none") == [{"none": True}]

    assert ivr("db", "migrate")[0] == EXIT_OK
    seed(use_empty_db, records(CALLS))
    code, out, err = ivr("db", "status")
    assert (code, err) == (EXIT_OK, "")
    lines = out.splitlines()
    assert lines[0] == f"applied migrations: {len(available_migrations())}"
    assert lines[1].startswith(f"  {available_migrations()[0].version:04d}_")
    assert lines[1].endswith(" UTC")
    assert "pending migrations: none" in lines
    assert lines[-2] == f"calls stored: {len(CALLS)}"


def test_db_status_shows_a_waiting_spool_and_rejected_records(use_db: str) -> None:
    spool_dir = Path(os.environ["IVR_DATA_DIR"]) / "spool"
    spool = Spool(spool_dir)
    spool.open()
    for record in records(CALLS[:3]):
        spool.append(record)
    spool.reject("database", "CheckViolationError: test", "{}")
    spool.close()
    code, out, err = ivr("db", "status")
    assert (code, err) == (EXIT_OK, "")
    size = sum(s.path.stat().st_size for s in Spool(spool_dir).segments())
    assert f"spool: 1 segment(s), {size:,} bytes waiting for the database in {spool_dir}" in out
    assert f"rejected records: 1, kept with the reason in {spool_dir / 'rejected.jsonl'}" in out


def test_db_status_flags_a_migration_edited_after_it_was_applied(use_db: str) -> None:
    asyncio.run(_execute(use_db, "UPDATE ivr_schema_migrations SET checksum = 'edited'"))
    code, out, _ = ivr("db", "status")
    assert code == EXIT_INVALID
    assert "CHANGED since it was applied" in out
    code, _, err = ivr("db", "migrate")
    assert code == EXIT_INVALID
    assert "changed after it was applied" in err


async def _execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


# --- ivr report --------------------------------------------------------------------------------


def table(out: str) -> list[list[str]]:
    """The table's body rows (between the first rule and the footer), cut into cells."""
    lines = out.split("\n\n")[1].splitlines()
    return [re.split(r"\s{2,}", line.strip()) for line in lines[2:] if not line.startswith("-")]


def cells(out: str, *labels: str) -> list[str]:
    """The numbers on the table row whose label cells are ``labels``."""
    for row in table(out):
        if tuple(row[: len(labels)]) == labels:
            return row[len(labels) :]
    raise AssertionError(f"no row {labels!r} in:\n{out}")


def test_report_table_by_vertiente(use_db: str, menu_file: Path) -> None:
    seed(use_db, records(CALLS))
    code, out, err = ivr(
        "report", "--from", "2022-07-01", "--to", "2022-08-31", "--config", str(menu_file)
    )
    assert (code, err) == (EXIT_OK, "")
    assert out.startswith("Calls from 2022-07-01 to 2022-08-31 (America/Mexico_City)")
    #                                            calls routed closed abandoned other p50 p90
    assert cells(out, "Programas gubernamentales") == ["3", "2", "1", "0", "0", "45.0", "57.0"]
    assert cells(out, "Paseo 5 de Febrero") == ["2", "2", "0", "0", "0", "45.0", "57.0"]
    assert cells(out, "Reemplacamiento") == ["1", "0", "1", "0", "0"]
    assert cells(out, "Servicios estatales") == ["1", "0", "0", "0", "1"]
    assert cells(out, "(no choice)") == ["1", "0", "0", "1", "0"]
    assert cells(out, "Total") == ["5", "2", "1", "1", "1", "45.0", "57.0"]
    assert [row[0] for row in table(out)] == [
        "Programas gubernamentales",
        "Paseo 5 de Febrero",
        "Reemplacamiento",
        "Servicios estatales",
        "Atención ciudadana",
        "(no choice)",
        "Total",
    ]
    footer = out.split("\n\n")[-1]
    for label, value in [
        ("All calls", 5),
        ("Abandoned in menu", 1),
        ("Closed hours", 1),
        ("Distinct callers", 3),
    ]:
        assert re.search(rf"^{label}: +{value}$", footer, re.MULTILINE), (label, footer)
    assert "p50 45.0  p90 57.0  p99 59.7  (2 calls with a known wait)" in footer


def test_report_csv_by_month(use_db: str, menu_file: Path) -> None:
    seed(use_db, records(CALLS))
    code, out, err = ivr(
        "report",
        "--from",
        "2022-07-01",
        "--to",
        "2022-09-30",
        "--by",
        "month",
        "--format",
        "csv",
        "--config",
        str(menu_file),
    )
    assert (code, err) == (EXIT_OK, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["level"], r["month"], r["calls"]) for r in rows] == [
        ("month", "2022-07", "2"),
        ("month", "2022-08", "3"),  # 31 August 23:30 local is 1 September in UTC
        ("month", "2022-09", "1"),
        ("total", "Total", "6"),
    ]
    assert [r["wait_p50_s"] for r in rows] == ["45.000", "", "90.000", "60.000"]
    assert rows[-1]["distinct_callers"] == "4"
    assert "All calls" not in out


def test_report_by_outcome_and_by_area(use_db: str, menu_file: Path) -> None:
    seed(use_db, records(CALLS))
    span = ("--from", "2022-07-01", "--to", "2022-08-31", "--config", str(menu_file))
    code, out, _ = ivr("report", *span, "--by", "outcome", "--format", "csv")
    assert code == EXIT_OK
    counts = {r["outcome"]: int(r["calls"]) for r in csv.DictReader(io.StringIO(out))}
    assert counts == {
        "routed": 2,
        "closed": 1,
        "abandoned_in_menu": 1,
        "invalid": 0,
        "no_input": 0,
        "fallback": 1,
        "error": 0,
        "Total": 5,
    }
    code, out, _ = ivr("report", *span, "--by", "area")
    assert code == EXIT_OK
    assert cells(out, "Programas gubernamentales", "Paseo 5 de Febrero")[:1] == ["2"]
    assert cells(out, "Programas gubernamentales", "Reemplacamiento")[:1] == ["1"]
    assert cells(out, "(no choice)", "(no choice)")[:1] == ["1"]


def test_report_on_a_brand_new_database_migrates_and_prints_zeros(
    use_empty_db: str, menu_file: Path
) -> None:
    code, out, err = ivr(
        "report", "--from", "2026-01-01", "--to", "2026-01-31", "--config", str(menu_file)
    )
    assert (code, err) == (EXIT_OK, "")
    assert cells(out, "Total") == ["0", "0", "0", "0", "0"]
    assert "Queue wait (s):     n/a" in out
    assert fetch(use_empty_db, "SELECT count(*) AS n FROM ivr_schema_migrations") == [
        {"n": len(available_migrations())}
    ]


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (("2022-07-01", "2022-06-30"), "ivr report: --to 2022-06-30 is before --from 2022-07-01"),
        (("2022-07-32", "2022-08-01"), "ivr report: '2022-07-32' is not a valid date"),
        (("2022-07-01", "31/08/2022"), "ivr report: '31/08/2022' is not a date: use YYYY-MM-DD"),
    ],
)
def test_report_with_bad_dates_is_a_usage_error(
    clean_env: pytest.MonkeyPatch, menu_file: Path, dates: tuple[str, str], message: str
) -> None:
    # A database that cannot answer: the dates must be refused before any connection.
    clean_env.setenv("IVR_DATABASE_URL", "postgresql://ivr@127.0.0.1:1/ivr")
    code, out, err = ivr("report", "--from", dates[0], "--to", dates[1], "--config", str(menu_file))
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_report_on_an_unreachable_database_says_so_in_one_line(
    clean_env: pytest.MonkeyPatch, menu_file: Path
) -> None:
    clean_env.setenv("IVR_DATABASE_URL", "postgresql://ivr:s3cr3t@127.0.0.1:1/ivr")
    code, out, err = ivr(
        "report", "--from", "2022-07-01", "--to", "2022-07-31", "--config", str(menu_file)
    )
    assert (code, out) == (EXIT_INVALID, "")
    assert err.startswith("ivr report: cannot connect to postgresql://ivr:***@127.0.0.1:1/ivr: ")
    assert err.count("\n") == 1
    assert "s3cr3t" not in err


def test_report_with_invalid_settings_is_a_usage_error(
    clean_env: pytest.MonkeyPatch, menu_file: Path
) -> None:
    clean_env.setenv("IVR_DATABASE_URL", "mysql://somewhere/db")
    code, out, err = ivr(
        "report", "--from", "2022-07-01", "--to", "2022-07-31", "--config", str(menu_file)
    )
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith("ivr report: invalid setting IVR_DATABASE_URL")


def test_report_with_an_invalid_menu_exits_1(use_db: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\n", encoding="utf-8")
    code, out, err = ivr(
        "report", "--from", "2022-07-01", "--to", "2022-07-31", "--config", str(broken)
    )
    assert (code, out) == (EXIT_INVALID, "")
    assert f"{broken}:" in err


# --- ivr purge ---------------------------------------------------------------------------------


def test_purge_dry_run_then_purge_then_nothing_left(use_db: str) -> None:
    now = datetime.now(UTC)
    rows = [
        (now - timedelta(days=400), "programas", "paseo", "routed", "4421110001", 30.0),
        (now - timedelta(days=366), None, None, "abandoned_in_menu", "4421110002", None),
        (now - timedelta(days=364), "programas", "paseo", "routed", "4421110003", 10.0),
        (now - timedelta(days=1), "servicios", "atencion", "closed", "4421110004", None),
    ]
    seed(use_db, records(rows))
    query = (
        "SELECT call_id, caller_number, caller_name, caller_hash, queue_wait_seconds, purged_at"
        " FROM calls ORDER BY call_id"
    )
    before = fetch(use_db, query)

    code, out, err = ivr("purge", "--dry-run")
    assert (code, err) == (EXIT_OK, "")
    assert out.startswith("would purge 2 calls started before ")
    assert fetch(use_db, query) == before

    code, out, err = ivr("purge")
    assert (code, err) == (EXIT_OK, "")
    assert out.startswith("purged caller number and name from 2 calls started before ")
    after = fetch(use_db, query)
    for old, new in zip(before[:2], after[:2], strict=True):
        assert (new["caller_number"], new["caller_name"]) == (None, None)
        assert new["purged_at"] is not None
        assert (new["caller_hash"], new["queue_wait_seconds"]) == (
            old["caller_hash"],
            old["queue_wait_seconds"],
        )
        assert new["caller_hash"] is not None
    assert after[2:] == before[2:]

    code, out, _ = ivr("purge")
    assert code == EXIT_OK
    assert out.startswith("purged caller number and name from 0 calls ")


def test_purge_default_comes_from_ivr_retention_days(
    clean_env: pytest.MonkeyPatch, use_db: str
) -> None:
    now = datetime.now(UTC)
    seed(
        use_db,
        records(
            [
                (now - timedelta(days=11), "programas", "paseo", "routed", "4421110001", None),
                (now - timedelta(days=9), "programas", "paseo", "routed", "4421110002", None),
            ]
        ),
    )
    clean_env.setenv("IVR_RETENTION_DAYS", "10")
    code, out, _ = ivr("purge", "--dry-run")
    assert (code, out.split()[:3]) == (EXIT_OK, ["would", "purge", "1"])
    code, out, _ = ivr("purge", "--dry-run", "--older-than", "5")
    assert (code, out.split()[:3]) == (EXIT_OK, ["would", "purge", "2"])


@pytest.mark.parametrize("days", ["0", "-3"])
def test_purge_older_than_must_be_positive(use_db: str, days: str) -> None:
    code, out, err = ivr("purge", f"--older-than={days}")
    assert (code, out) == (EXIT_USAGE, "")
    assert err == f"ivr purge: --older-than must be at least 1 day, got {days}\n"


# --- the real command --------------------------------------------------------------------------


def run_ivr(
    *args: str, env: dict[str, str], command: Sequence[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(command or [sys.executable, "-m", "ivr"]), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_DATA_DIR"] = str(tmp_path / "var")
    return env


def test_python_m_ivr_report_csv(database_url: str, menu_file: Path, tmp_path: Path) -> None:
    seed(database_url, records(CALLS))
    env = {**base_env(tmp_path), "IVR_DATABASE_URL": database_url, "IVR_CONFIG": str(menu_file)}
    result = run_ivr(
        "report", "--from", "2022-07-01", "--to", "2022-08-31", "--format", "csv", env=env
    )
    assert (result.returncode, result.stderr) == (EXIT_OK, "")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["vertiente"] == "Programas gubernamentales"
    assert (rows[-1]["level"], rows[-1]["calls"], rows[-1]["routed"]) == ("total", "5", "2")


def test_console_script_ivr_db_status(database_url: str, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "ivr"
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable} (package not installed)")
    seed(database_url, records(CALLS[:2]))
    env = {**base_env(tmp_path), "IVR_DATABASE_URL": database_url}
    result = run_ivr("db", "status", env=env, command=[str(script)])
    assert (result.returncode, result.stderr) == (EXIT_OK, "")
    assert "pending migrations: none" in result.stdout
    assert "\ncalls stored: 2\n" in result.stdout


def test_without_a_url_the_embedded_postgresql_is_started_and_stopped(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    pgdata = tmp_path / "var" / "pgdata"
    result = run_ivr("db", "migrate", env=env)
    assert (result.returncode, result.stderr) == (EXIT_OK, "")
    assert result.stdout == f"applied {LATEST_NAME}\n"
    assert (pgdata / "PG_VERSION").is_file()
    # The command was the only user: the server stopped when it exited.
    assert not (pgdata / "postmaster.pid").exists()

    result = run_ivr("db", "status", env=env)
    assert (result.returncode, result.stderr) == (EXIT_OK, "")
    assert "pending migrations: none" in result.stdout
    assert "\ncalls stored: 0\n" in result.stdout
    assert not (pgdata / "postmaster.pid").exists()
