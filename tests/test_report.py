"""``ivr.records.report`` against a real PostgreSQL, checked with independent arithmetic.

A seeded generator writes a few hundred calls through the recorder's own write path,
spread over four months and the vertientes and areas of a small menu, with a few calls
placed right around local midnight at the ends of the range. Each test computes what the
report must say with Counter and a plain linear-interpolation percentile, from the
generated calls themselves, and compares it with what PostgreSQL aggregated.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from menus import MEXICO, menu_from_yaml

from ivr.menu.model import Menu
from ivr.records.model import CallRecord, QueueOutcome, Record
from ivr.records.recorder import write_records
from ivr.records.report import (
    NO_CHOICE,
    NO_OUTCOME,
    OUTCOME_ORDER,
    Dimension,
    Group,
    Period,
    Report,
    Stats,
    build_report,
    fetch_groups,
    parse_day,
    render_csv,
    render_table,
    run_report,
)

TZ = ZoneInfo(MEXICO)
KEY = b"report-test-key"
FIRST, LAST = date(2022, 7, 1), date(2022, 9, 30)

# Dict order differs from digit order on purpose: the report must follow the digits.
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
emergencias:
  digit: 3
  name: Situaciones emergentes
  prompt: op-emergencias
  menu_prompt: menu-emergencias
  areas:
    psicologica:
      digit: 2
      name: Atención psicológica
      department: SESEQ
      queue: salud
      prompt: op-psicologica
    medica:
      digit: 1
      name: Atención médica
      department: SESEQ
      queue: salud
      prompt: op-medica
programas:
  digit: 1
  name: Programas gubernamentales
  prompt: op-programas
  menu_prompt: menu-programas
  areas:
    placas:
      digit: 3
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
    qrobot:
      digit: 2
      name: Qrobot
      department: Innovación
      queue: qrobot
      prompt: op-qrobot
"""

# Every (vertiente, area) the calls use: the menu's (qrobot never gets a call), an area the
# menu dropped, a vertiente the menu dropped, and calls that stopped before choosing.
MENU_CHOICES = [
    ("programas", "paseo"),
    ("programas", "placas"),
    ("servicios", "atencion"),
    ("emergencias", "medica"),
    ("emergencias", "psicologica"),
]
STALE_CHOICES = [("programas", "vieja"), ("antigua", "retirada")]
OTHER_OUTCOMES = ["invalid", "no_input", "fallback", "error"]


def make_menu() -> Menu:
    return menu_from_yaml(VERTIENTES_YAML)


@dataclass(frozen=True)
class Call:
    """What the test generated for one call: the source of every expected number."""

    call_id: UUID
    started_at: datetime
    caller: str | None
    vertiente: str | None
    area: str | None
    outcome: str | None
    wait: float | None

    @property
    def local_day(self) -> date:
        return self.started_at.astimezone(TZ).date()

    @property
    def month(self) -> str:
        return f"{self.started_at.astimezone(TZ):%Y-%m}"


def local(text: str) -> datetime:
    """A wall-clock time in Mexico City, written as ISO 8601 without an offset."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def generate_calls(seed: int = 20221231, count: int = 300) -> list[Call]:
    rng = random.Random(seed)
    callers = [f"442{rng.randrange(10**7):07d}" for _ in range(90)]
    span_start = local("2022-06-20T00:00")
    span = (local("2022-10-12T00:00") - span_start).total_seconds()
    calls: list[Call] = []

    def add(
        started: datetime,
        vertiente: str | None,
        area: str | None,
        outcome: str | None,
        wait: float | None = None,
    ) -> None:
        calls.append(
            Call(
                call_id=UUID(int=rng.getrandbits(128)),
                started_at=started.astimezone(UTC),
                caller=None if rng.random() < 0.08 else rng.choice(callers),
                vertiente=vertiente,
                area=area,
                outcome=outcome,
                wait=wait,
            )
        )

    for _ in range(count):
        started = span_start + timedelta(seconds=rng.uniform(0, span))
        roll = rng.random()
        if roll < 0.15:  # hung up or timed out in the main menu
            add(started, None, None, rng.choice(["abandoned_in_menu", "no_input", "invalid"]))
        elif roll < 0.22:  # chose a vertiente, never an area
            add(started, rng.choice(["programas", "emergencias"]), None, "abandoned_in_menu")
        else:
            choices = STALE_CHOICES if roll > 0.95 else MENU_CHOICES
            vertiente, area = rng.choice(choices)
            outcome = rng.choices(
                ["routed", "closed", *OTHER_OUTCOMES, None], [60, 15, 2, 2, 3, 2, 4]
            )[0]
            wait = None
            if outcome == "routed" and rng.random() < 0.8:
                wait = 0.0 if rng.random() < 0.05 else round(rng.uniform(0, 420), 3)
            add(started, vertiente, area, outcome, wait)

    # Right around local midnight at both ends of the range and at a month's end. Mexico
    # City was at UTC-5 in the summer of 2022: a report that cut days in UTC would get
    # every one of these wrong.
    add(local("2022-06-30T22:30"), "servicios", "atencion", "routed", 11.0)  # 07-01 03:30Z
    add(local("2022-06-30T23:59:59.999999"), "servicios", "atencion", "routed", 12.0)
    add(local("2022-07-01T00:00"), "servicios", "atencion", "routed", 13.0)  # first instant
    add(local("2022-07-31T21:00"), "programas", "paseo", "closed")  # 08-01 02:00Z: July
    add(local("2022-09-30T20:00"), "servicios", "atencion", "routed", 14.0)  # 10-01 01:00Z
    add(local("2022-09-30T23:59:59"), None, None, "abandoned_in_menu")  # last second
    add(local("2022-10-01T00:00"), "servicios", "atencion", "routed", 15.0)  # first one out
    return calls


def records_of(calls: Iterable[Call]) -> list[Record]:
    records: list[Record] = []
    for call in calls:
        path = tuple(k for k in (call.vertiente, call.area) if k is not None)
        records.append(
            CallRecord(
                call_id=call.call_id,
                rev=1,
                caller_number=call.caller,
                started_at=call.started_at,
                path=path,
                vertiente=call.vertiente,
                area=call.area,
                outcome=call.outcome,
            )
        )
        if call.wait is not None:
            records.append(QueueOutcome(call_id=call.call_id, queue_wait_seconds=call.wait))
    return records


async def seed(url: str, calls: Sequence[Call]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await write_records(conn, records_of(calls), KEY)
    finally:
        await conn.close()


# --- the independent arithmetic ------------------------------------------------------------


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected_stats(calls: Sequence[Call]) -> Stats:
    outcomes = Counter(call.outcome for call in calls)
    waits = [call.wait for call in calls if call.wait is not None]
    routed, closed, abandoned = (outcomes[k] for k in ("routed", "closed", "abandoned_in_menu"))
    return Stats(
        calls=len(calls),
        routed=routed,
        closed=closed,
        abandoned=abandoned,
        other=len(calls) - routed - closed - abandoned,
        callers=len({call.caller for call in calls if call.caller is not None}),
        waits=len(waits),
        wait_p50=percentile_cont(waits, 0.5),
        wait_p90=percentile_cont(waits, 0.9),
        wait_p99=percentile_cont(waits, 0.99),
    )


def in_range(calls: Iterable[Call]) -> list[Call]:
    return [call for call in calls if FIRST <= call.local_day <= LAST]


def assert_same_stats(actual: Stats, expected: Stats, where: object) -> None:
    counts = ("calls", "routed", "closed", "abandoned", "other", "callers", "waits")
    assert [getattr(actual, n) for n in counts] == [getattr(expected, n) for n in counts], where
    for name in ("wait_p50", "wait_p90", "wait_p99"):
        got, want = getattr(actual, name), getattr(expected, name)
        if want is None:
            assert got is None, (where, name)
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), (where, name)


def assert_rows(
    report: Report, expected: Sequence[tuple[str, tuple[str, ...], Sequence[Call]]]
) -> None:
    assert [(row.level, row.labels) for row in report.rows] == [
        (level, labels) for level, labels, _ in expected
    ]
    for row, (_, labels, calls) in zip(report.rows, expected, strict=True):
        assert_same_stats(row.stats, expected_stats(calls), labels)
    assert report.rows[-1].stats == report.total


def where(calls: Iterable[Call], test: Callable[[Call], bool]) -> list[Call]:
    return [call for call in calls if test(call)]


# --- the report against the database ---------------------------------------------------------


@pytest.fixture
def calls() -> list[Call]:
    return generate_calls()


def test_the_generated_calls_cover_the_cases_the_report_distinguishes(calls: list[Call]) -> None:
    kept = in_range(calls)
    assert 200 < len(kept) < len(calls)
    assert {c.outcome for c in kept} == {*OUTCOME_ORDER, None}
    assert any(c.vertiente is None for c in kept)
    assert any(c.vertiente is not None and c.area is None for c in kept)
    assert {("programas", "vieja"), ("antigua", "retirada")} <= {
        (c.vertiente, c.area) for c in kept
    }
    assert sum(c.wait is not None for c in kept) > 50


async def test_by_vertiente_matches_the_hand_computed_table(
    database_url: str, calls: list[Call]
) -> None:
    await seed(database_url, calls)
    conn = await asyncpg.connect(database_url)
    try:
        report = await run_report(conn, make_menu(), Period(FIRST, LAST, TZ), "vertiente")
    finally:
        await conn.close()
    kept = in_range(calls)

    def v(key: str | None) -> list[Call]:
        return where(kept, lambda c: c.vertiente == key)

    def va(vkey: str | None, akey: str | None) -> list[Call]:
        return where(kept, lambda c: (c.vertiente, c.area) == (vkey, akey))

    p, s, e = "Programas gubernamentales", "Servicios estatales", "Situaciones emergentes"
    expected = [
        ("vertiente", (p, ""), v("programas")),
        ("area", (p, "Paseo 5 de Febrero"), va("programas", "paseo")),
        ("area", (p, "Qrobot"), va("programas", "qrobot")),
        ("area", (p, "Reemplacamiento"), va("programas", "placas")),
        ("area", (p, "vieja"), va("programas", "vieja")),
        ("area", (p, NO_CHOICE), va("programas", None)),
        ("vertiente", (s, ""), v("servicios")),
        ("area", (s, "Atención ciudadana"), va("servicios", "atencion")),
        ("vertiente", (e, ""), v("emergencias")),
        ("area", (e, "Atención médica"), va("emergencias", "medica")),
        ("area", (e, "Atención psicológica"), va("emergencias", "psicologica")),
        ("area", (e, NO_CHOICE), va("emergencias", None)),
        ("vertiente", ("antigua", ""), v("antigua")),
        ("area", ("antigua", "retirada"), va("antigua", "retirada")),
        ("vertiente", (NO_CHOICE, ""), v(None)),
        ("total", ("Total", ""), kept),
    ]
    assert_rows(report, expected)
    assert not va("programas", "qrobot")  # the zero row is really a zero
    # The vertiente rows partition all calls, as in the program's own table.
    assert sum(r.stats.calls for r in report.rows if r.level == "vertiente") == len(kept)


async def test_by_area_month_and_outcome_match_hand_computed_values(
    database_url: str, calls: list[Call]
) -> None:
    await seed(database_url, calls)
    menu = make_menu()
    period = Period(FIRST, LAST, TZ)
    conn = await asyncpg.connect(database_url)
    try:
        by_area = await run_report(conn, menu, period, "area")
        by_month = await run_report(conn, menu, period, "month")
        by_outcome = await run_report(conn, menu, period, "outcome")
    finally:
        await conn.close()
    kept = in_range(calls)

    def va(vkey: str | None, akey: str | None) -> list[Call]:
        return where(kept, lambda c: (c.vertiente, c.area) == (vkey, akey))

    p, s, e = "Programas gubernamentales", "Servicios estatales", "Situaciones emergentes"
    assert_rows(
        by_area,
        [
            ("area", (p, "Paseo 5 de Febrero"), va("programas", "paseo")),
            ("area", (p, "Qrobot"), []),
            ("area", (p, "Reemplacamiento"), va("programas", "placas")),
            ("area", (p, "vieja"), va("programas", "vieja")),
            ("area", (p, NO_CHOICE), va("programas", None)),
            ("area", (s, "Atención ciudadana"), va("servicios", "atencion")),
            ("area", (e, "Atención médica"), va("emergencias", "medica")),
            ("area", (e, "Atención psicológica"), va("emergencias", "psicologica")),
            ("area", (e, NO_CHOICE), va("emergencias", None)),
            ("area", ("antigua", "retirada"), va("antigua", "retirada")),
            ("area", (NO_CHOICE, NO_CHOICE), va(None, None)),
            ("total", ("Total", ""), kept),
        ],
    )

    months = ["2022-07", "2022-08", "2022-09"]
    assert_rows(
        by_month,
        [
            *(("month", (m,), [c for c in kept if c.month == m]) for m in months),
            ("total", ("Total",), kept),
        ],
    )

    assert_rows(
        by_outcome,
        [
            *(("outcome", (o,), [c for c in kept if c.outcome == o]) for o in OUTCOME_ORDER),
            ("outcome", (NO_OUTCOME,), where(kept, lambda c: c.outcome is None)),
            ("total", ("Total",), kept),
        ],
    )


async def test_the_range_is_cut_at_local_midnight(database_url: str, calls: list[Call]) -> None:
    await seed(database_url, calls)
    june_30, july_1 = date(2022, 6, 30), date(2022, 7, 1)
    conn = await asyncpg.connect(database_url)
    try:
        for day in (june_30, july_1):
            groups = await fetch_groups(conn, Period(day, day, TZ), "outcome")
            (total,) = [g.stats for g in groups if g.rolled_up == (True,)]
            assert_same_stats(total, expected_stats([c for c in calls if c.local_day == day]), day)
    finally:
        await conn.close()
    # The edge calls are where this test means them to be: 22:30 and 23:59:59.999999 on
    # 30 June (already 1 July in UTC) belong to 30 June, 00:00 on 1 July to 1 July.
    assert {c.wait for c in calls if c.local_day == june_30} >= {11.0, 12.0}
    assert 13.0 in {c.wait for c in calls if c.local_day == july_1}


def test_period_bounds_are_local_midnights_in_utc() -> None:
    summer = Period(date(2022, 7, 1), date(2022, 9, 30), TZ)
    assert summer.start == datetime(2022, 7, 1, 5, tzinfo=UTC)
    assert summer.end == datetime(2022, 10, 1, 5, tzinfo=UTC)
    # Mexico dropped daylight saving time after 30 October 2022: UTC-6 all year since.
    winter = Period(date(2022, 10, 30), date(2023, 4, 2), TZ)
    assert winter.start == datetime(2022, 10, 30, 5, tzinfo=UTC)
    assert winter.end == datetime(2023, 4, 3, 6, tzinfo=UTC)
    assert winter.months() == [
        "2022-10",
        "2022-11",
        "2022-12",
        "2023-01",
        "2023-02",
        "2023-03",
        "2023-04",
    ]
    with pytest.raises(ValueError, match="before --from"):
        Period(date(2022, 7, 2), date(2022, 7, 1), TZ)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2022-13-01", "not a valid date"),
        ("2022-02-30", "not a valid date"),
        ("20220701", "use YYYY-MM-DD"),
        ("2022-7-1", "use YYYY-MM-DD"),
        ("yesterday", "use YYYY-MM-DD"),
        ("9999-12-31", "out of range"),
    ],
)
def test_parse_day_rejects_what_is_not_an_iso_day(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_day(text)


def test_parse_day_reads_an_iso_day() -> None:
    assert parse_day("2022-07-01") == date(2022, 7, 1)


async def test_an_empty_database_gives_zero_rows_and_no_waits(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        report = await run_report(conn, make_menu(), Period(FIRST, LAST, TZ), "vertiente")
    finally:
        await conn.close()
    names = [row.labels[1] or row.labels[0] for row in report.rows]
    assert names[:4] == [
        "Programas gubernamentales",
        "Paseo 5 de Febrero",
        "Qrobot",
        "Reemplacamiento",
    ]
    assert NO_CHOICE not in names
    assert all(row.stats == Stats() for row in report.rows)
    text = render_table(report)
    assert "Queue wait (s):     n/a" in text


# --- rendering (pure) ----------------------------------------------------------------------------


def program_like_report() -> Report:
    """Groups shaped like the program's Jul-Dec 2022 figures, built by hand."""

    def stats(counts: tuple[int, int, int, int], waits: tuple[float, float] | None = None) -> Stats:
        calls, routed, closed, abandoned = counts
        p50, p90 = waits if waits is not None else (None, None)
        return Stats(
            calls,
            routed,
            closed,
            abandoned,
            calls - routed - closed - abandoned,
            callers=calls // 2,
            waits=0 if waits is None else routed,
            wait_p50=p50,
            wait_p90=p90,
            wait_p99=None if p90 is None else p90 * 2,
        )

    def g(v: str | None, a: str | None, s: Stats, rolled: tuple[bool, bool]) -> Group:
        return Group((v, a), rolled, s)

    pair, single = (False, False), (False, True)
    groups = [
        g("programas", "paseo", stats((64_652, 60_000, 3_000, 1_000), (12.26, 95.5)), pair),
        g("programas", None, stats((64_652, 60_000, 3_000, 1_000), (12.26, 95.5)), single),
        g("servicios", "atencion", stats((3_850, 3_500, 200, 100)), pair),
        g("servicios", None, stats((3_850, 3_500, 200, 100)), single),
        g("emergencias", "medica", stats((39_697, 39_000, 0, 500), (1_234.5, 2_000.0)), pair),
        g("emergencias", None, stats((39_697, 39_000, 0, 500), (1_234.5, 2_000.0)), single),
        g(None, None, stats((108_199, 102_500, 3_200, 1_600), (30.0, 400.04)), (True, True)),
    ]
    period = Period(date(2022, 7, 1), date(2022, 12, 31), TZ)
    return build_report(groups, make_menu(), period, "vertiente")


def test_the_table_groups_digits_and_indents_areas_under_their_vertiente() -> None:
    expected = """\
Calls from 2022-07-01 to 2022-12-31 (America/Mexico_City), by vertiente

vertiente / area             calls   routed  closed  abandoned  other  wait p50 s  wait p90 s
---------------------------------------------------------------------------------------------
Programas gubernamentales   64,652   60,000   3,000      1,000    652        12.3        95.5
  Paseo 5 de Febrero        64,652   60,000   3,000      1,000    652        12.3        95.5
  Qrobot                         0        0       0          0      0
  Reemplacamiento                0        0       0          0      0
Servicios estatales          3,850    3,500     200        100     50
  Atención ciudadana         3,850    3,500     200        100     50
Situaciones emergentes      39,697   39,000       0        500    197     1,234.5     2,000.0
  Atención médica           39,697   39,000       0        500    197     1,234.5     2,000.0
  Atención psicológica           0        0       0          0      0
---------------------------------------------------------------------------------------------
Total                      108,199  102,500   3,200      1,600    899        30.0       400.0

All calls:          108,199
Abandoned in menu:    1,600
Closed hours:         3,200
Distinct callers:    54,099
Queue wait (s):     p50 30.0  p90 400.0  p99 800.1  (102,500 calls with a known wait)
"""
    assert render_table(program_like_report()) == expected


def test_the_csv_has_every_row_with_plain_numbers() -> None:
    report = program_like_report()
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert rows[0] == [
        "level",
        "vertiente",
        "area",
        "calls",
        "routed",
        "closed",
        "abandoned_in_menu",
        "other",
        "distinct_callers",
        "known_waits",
        "wait_p50_s",
        "wait_p90_s",
        "wait_p99_s",
    ]
    body = rows[1:]
    assert len(body) == len(report.rows)
    assert body[0] == [
        "vertiente",
        "Programas gubernamentales",
        "",
        "64652",
        "60000",
        "3000",
        "1000",
        "652",
        "32326",
        "60000",
        "12.260",
        "95.500",
        "191.000",
    ]
    assert body[2] == [
        "area",
        "Programas gubernamentales",
        "Qrobot",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "",
        "",
        "",
    ]
    assert body[-1][:4] == ["total", "Total", "", "108199"]
    for line, row in zip(body, report.rows, strict=True):
        assert (line[0], tuple(line[1:3])) == (row.level, row.labels)
        assert int(line[3]) == row.stats.calls


@pytest.mark.parametrize("by", ["month", "outcome"])
def test_a_flat_report_has_one_label_column(by: Dimension) -> None:
    period = Period(date(2022, 7, 1), date(2022, 8, 31), TZ)
    report = build_report([], make_menu(), period, by)
    labels = [row.labels for row in report.rows]
    if by == "month":
        assert labels == [("2022-07",), ("2022-08",), ("Total",)]
    else:
        assert labels == [*((o,) for o in OUTCOME_ORDER), ("Total",)]
    header = render_table(report).splitlines()[2]
    assert header.split()[:2] == [by, "calls"]
    assert render_csv(report).splitlines()[0].startswith(f"level,{by},calls,")
