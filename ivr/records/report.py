"""Call statistics over a range of local days, laid out like the program's own reports.

I/O stays at one edge: :func:`fetch_groups` runs a single aggregation query (``GROUP BY
GROUPING SETS`` in PostgreSQL, so per-group and overall percentiles come from the same
scan). Everything else is pure: :func:`build_report` turns the aggregated rows and the
menu into ordered, named rows, and :func:`render_table` / :func:`render_csv` print them.

Days are local days of the line's time zone: ``--from 2022-07-01 --to 2022-12-31`` covers
calls that *started* from local midnight on 1 July up to, not including, local midnight
on 1 January, whatever the UTC offset was on either date.

Columns: ``calls``; ``routed`` (handed to an operator queue); ``closed`` (the chosen
option was outside its hours); ``abandoned`` (hung up in the menu); ``other`` (invalid
keys, no input, fallback, error, and calls with no outcome recorded yet), so the four
add up to ``calls``. Queue waits are percentiles (``percentile_cont``, linear
interpolation) over the calls whose wait the queue reported; blank when there is none.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

import asyncpg

from ivr.menu.model import Menu

__all__ = [
    "DIMENSIONS",
    "NO_CHOICE",
    "NO_OUTCOME",
    "OUTCOME_ORDER",
    "Dimension",
    "Group",
    "Period",
    "Report",
    "ReportRow",
    "Stats",
    "build_report",
    "fetch_groups",
    "parse_day",
    "render_csv",
    "render_table",
    "run_report",
]

Dimension = Literal["vertiente", "area", "month", "outcome"]
DIMENSIONS: Final[tuple[Dimension, ...]] = get_args(Dimension)

NO_CHOICE: Final = "(no choice)"
"""Label of calls that chose no vertiente (or no area within one)."""
NO_OUTCOME: Final = "(not recorded)"
"""Label of calls with no outcome yet (in progress, or the engine stopped mid-call)."""
TOTAL: Final = "Total"

OUTCOME_ORDER: Final = (
    "routed",
    "closed",
    "abandoned_in_menu",
    "invalid",
    "no_input",
    "fallback",
    "error",
)

_ISO_DAY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- the period ------------------------------------------------------------------------


def parse_day(text: str) -> date:
    """An ISO ``YYYY-MM-DD`` date; ValueError with a readable message otherwise."""
    if not _ISO_DAY.match(text):
        raise ValueError(f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2022-07-01")
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date: {exc}") from None
    if not 1900 <= day.year <= 9998:  # keeps the day after `last` representable everywhere
        raise ValueError(f"{text!r} is out of range: use a year from 1900 to 9998")
    return day


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # fold=0: when a zone skips midnight, this is the instant the day actually starts.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """Local days ``first`` to ``last``, both included, in the time zone ``tz``."""

    first: date
    last: date
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"--to {self.last} is before --from {self.first}")

    @property
    def start(self) -> datetime:
        """The first instant of the period, in UTC."""
        return _local_midnight(self.first, self.tz)

    @property
    def end(self) -> datetime:
        """The first instant after the period (local midnight after ``last``), in UTC."""
        return _local_midnight(self.last + timedelta(days=1), self.tz)

    def months(self) -> list[str]:
        """Every local month the period touches, as ``YYYY-MM``."""
        year, month = self.first.year, self.first.month
        found: list[str] = []
        while (year, month) <= (self.last.year, self.last.month):
            found.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return found


# --- what the database returns -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stats:
    """Aggregates over one group of calls. Waits are seconds; None when no wait is known."""

    calls: int = 0
    routed: int = 0
    closed: int = 0
    abandoned: int = 0
    other: int = 0
    callers: int = 0
    waits: int = 0
    wait_p50: float | None = None
    wait_p90: float | None = None
    wait_p99: float | None = None


EMPTY: Final = Stats()


@dataclass(frozen=True, slots=True)
class Group:
    """One aggregated row: the dimension values and which of them are rolled up.

    ``keys`` has one value per dimension column (``vertiente, area``, or ``month``, or
    ``outcome``). A rolled-up column is a subtotal over all its values, not a NULL value
    (NULL is a real value too: a call with no vertiente chosen).
    """

    keys: tuple[str | None, ...]
    rolled_up: tuple[bool, ...]
    stats: Stats


_COLUMNS: Final[dict[Dimension, tuple[str, ...]]] = {
    "vertiente": ("vertiente", "area"),
    "area": ("vertiente", "area"),
    "month": ("month",),
    "outcome": ("outcome",),
}
_GROUPING_SETS: Final[dict[Dimension, str]] = {
    "vertiente": "(vertiente, area), (vertiente), ()",
    "area": "(vertiente, area), ()",
    "month": "(month), ()",
    "outcome": "(outcome), ()",
}


def _aggregate_sql(by: Dimension) -> str:
    columns = ", ".join(_COLUMNS[by])
    # Built from the constants above only; the period and time zone are parameters.
    return f"""
WITH c AS (
    SELECT vertiente, area, outcome, caller_hash, queue_wait_seconds,
           to_char(started_at AT TIME ZONE $3, 'YYYY-MM') AS month
    FROM calls
    WHERE started_at >= $1 AND started_at < $2
)
SELECT {columns},
       GROUPING({columns}) AS rolled_up,
       count(*) AS calls,
       count(*) FILTER (WHERE outcome = 'routed') AS routed,
       count(*) FILTER (WHERE outcome = 'closed') AS closed,
       count(*) FILTER (WHERE outcome = 'abandoned_in_menu') AS abandoned,
       count(DISTINCT caller_hash) AS callers,
       count(queue_wait_seconds) AS waits,
       percentile_cont(ARRAY[0.5, 0.9, 0.99]::double precision[])
           WITHIN GROUP (ORDER BY queue_wait_seconds)
           FILTER (WHERE queue_wait_seconds IS NOT NULL) AS wait
FROM c
GROUP BY GROUPING SETS ({_GROUPING_SETS[by]})
"""  # noqa: S608


def _group(record: asyncpg.Record, columns: Sequence[str]) -> Group:
    bits = int(record["rolled_up"])
    width = len(columns)
    rolled = tuple(bool(bits >> (width - 1 - i) & 1) for i in range(width))
    keys = tuple(None if record[c] is None else str(record[c]) for c in columns)
    calls, routed, closed, abandoned = (
        int(record[name]) for name in ("calls", "routed", "closed", "abandoned")
    )
    # percentile_cont over no rows is NULL, not an array of NULLs.
    wait = [None, None, None] if record["wait"] is None else [float(v) for v in record["wait"]]
    stats = Stats(
        calls=calls,
        routed=routed,
        closed=closed,
        abandoned=abandoned,
        other=calls - routed - closed - abandoned,
        callers=int(record["callers"]),
        waits=int(record["waits"]),
        wait_p50=wait[0],
        wait_p90=wait[1],
        wait_p99=wait[2],
    )
    return Group(keys=keys, rolled_up=rolled, stats=stats)


async def fetch_groups(conn: asyncpg.Connection, period: Period, by: Dimension) -> list[Group]:
    """Aggregate the calls that started in ``period`` by ``by`` (one query)."""
    rows = await conn.fetch(_aggregate_sql(by), period.start, period.end, period.tz.key)
    columns = _COLUMNS[by]
    return [_group(row, columns) for row in rows]


# --- the report (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One line of the report: ``level`` is the dimension (or ``total``)."""

    level: str
    labels: tuple[str, ...]
    stats: Stats


@dataclass(frozen=True, slots=True)
class Report:
    by: Dimension
    period: Period
    headers: tuple[str, ...]
    """Names of the label columns."""
    rows: tuple[ReportRow, ...]
    """The body, ending with the total row."""
    total: Stats


def _ordered_keys(menu_order: Iterable[str], present: Iterable[str | None]) -> list[str | None]:
    """Keys the menu knows (in its order), then others found in the data, then None."""
    known = list(menu_order)
    seen = set(known)
    found = set(present)
    extra = sorted(k for k in found if k is not None and k not in seen)
    tail: list[str | None] = [None] if None in found else []
    return [*known, *extra, *tail]


class _Names:
    """Display names from the menu; keys the menu no longer has are shown as they are."""

    def __init__(self, menu: Menu) -> None:
        self.menu = menu
        self.vertientes = sorted(menu.vertientes, key=lambda k: menu.vertientes[k].digit)
        self._areas = {
            akey: area.name for v in menu.vertientes.values() for akey, area in v.areas.items()
        }

    def areas_of(self, vertiente: str | None) -> list[str]:
        v = self.menu.vertientes.get(vertiente) if vertiente is not None else None
        if v is None:
            return []
        return sorted(v.areas, key=lambda k: v.areas[k].digit)

    def vertiente(self, key: str | None) -> str:
        if key is None:
            return NO_CHOICE
        v = self.menu.vertientes.get(key)
        return key if v is None else v.name

    def area(self, key: str | None) -> str:
        if key is None:
            return NO_CHOICE
        return self._areas.get(key, key)


def _by_menu(
    groups: Sequence[Group], menu: Menu, *, subtotals: bool
) -> tuple[list[ReportRow], Stats]:
    names = _Names(menu)
    pairs: dict[tuple[str | None, str | None], Stats] = {}
    singles: dict[str | None, Stats] = {}
    total = EMPTY
    for g in groups:
        vkey, akey = g.keys
        match g.rolled_up:
            case (False, False):
                pairs[(vkey, akey)] = g.stats
            case (False, True):
                singles[vkey] = g.stats
            case _:
                total = g.stats
    rows: list[ReportRow] = []
    for vkey in _ordered_keys(names.vertientes, (v for v, _ in pairs)):
        vname = names.vertiente(vkey)
        areas = _ordered_keys(names.areas_of(vkey), (a for v, a in pairs if v == vkey))
        if vkey is None and subtotals and areas == [None]:
            areas = []  # the "(no choice)" row says it all
        if subtotals:
            rows.append(ReportRow("vertiente", (vname, ""), singles.get(vkey, EMPTY)))
        rows.extend(
            ReportRow("area", (vname, names.area(akey)), pairs.get((vkey, akey), EMPTY))
            for akey in areas
        )
    return rows, total


def _by_value(
    groups: Sequence[Group], order: Iterable[str], none_label: str
) -> tuple[list[tuple[str, Stats]], Stats]:
    values: dict[str | None, Stats] = {}
    total = EMPTY
    for g in groups:
        if g.rolled_up[0]:
            total = g.stats
        else:
            values[g.keys[0]] = g.stats
    keys = _ordered_keys(order, values)
    return [(none_label if key is None else key, values.get(key, EMPTY)) for key in keys], total


def build_report(groups: Sequence[Group], menu: Menu, period: Period, by: Dimension) -> Report:
    """Name and order the aggregated ``groups``; the last row is the total.

    ``vertiente``: each vertiente of the menu in digit order, then its areas in digit
    order (zero rows included, so an option nobody chose shows as 0); then keys the menu
    no longer has, by key; then calls with no choice. ``area``: the same without the
    vertiente subtotals. ``month``: every local month of the period. ``outcome``: every
    outcome, then unknown ones, then calls with none recorded.
    """
    headers: tuple[str, ...]
    rows: list[ReportRow]
    if by in ("vertiente", "area"):
        rows, total = _by_menu(groups, menu, subtotals=by == "vertiente")
        headers = ("vertiente", "area")
    elif by == "month":
        values, total = _by_value(groups, period.months(), "(no date)")
        rows = [ReportRow("month", (label,), stats) for label, stats in values]
        headers = ("month",)
    else:
        values, total = _by_value(groups, OUTCOME_ORDER, NO_OUTCOME)
        rows = [ReportRow("outcome", (label,), stats) for label, stats in values]
        headers = ("outcome",)
    blank = ("",) * (len(headers) - 1)
    rows.append(ReportRow("total", (TOTAL, *blank), total))
    return Report(by=by, period=period, headers=headers, rows=tuple(rows), total=total)


async def run_report(conn: asyncpg.Connection, menu: Menu, period: Period, by: Dimension) -> Report:
    """:func:`fetch_groups` then :func:`build_report`."""
    return build_report(await fetch_groups(conn, period, by), menu, period, by)


# --- rendering (pure) ----------------------------------------------------------------------


def _count(value: int) -> str:
    return f"{value:,}"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


_TABLE_STATS: Final = (
    "calls",
    "routed",
    "closed",
    "abandoned",
    "other",
    "wait p50 s",
    "wait p90 s",
)


def _table_cells(stats: Stats) -> list[str]:
    return [
        _count(stats.calls),
        _count(stats.routed),
        _count(stats.closed),
        _count(stats.abandoned),
        _count(stats.other),
        _seconds(stats.wait_p50),
        _seconds(stats.wait_p90),
    ]


def _table_labels(report: Report, row: ReportRow) -> list[str]:
    if report.by != "vertiente":
        return list(row.labels)
    # One column: vertientes flush left, their areas indented under them.
    return [f"  {row.labels[1]}" if row.level == "area" else row.labels[0]]


def _footer(total: Stats) -> list[str]:
    if total.waits:
        waits = (
            f"p50 {_seconds(total.wait_p50)}  p90 {_seconds(total.wait_p90)}  "
            f"p99 {_seconds(total.wait_p99)}  "
            f"({_count(total.waits)} call{'s' if total.waits != 1 else ''} with a known wait)"
        )
    else:
        waits = "n/a"
    lines = [
        ("All calls", _count(total.calls)),
        ("Abandoned in menu", _count(total.abandoned)),
        ("Closed hours", _count(total.closed)),
        ("Distinct callers", _count(total.callers)),
    ]
    width = max(len(label) for label, _ in lines)
    numbers = max(len(value) for _, value in lines)
    text = [f"{label + ':':<{width + 1}}  {value:>{numbers}}" for label, value in lines]
    text.append(f"{'Queue wait (s):':<{width + 1}}  {waits}")
    return text


def render_table(report: Report) -> str:
    """The report as aligned text: title, table, and the totals below it."""
    label_headers = ["vertiente / area"] if report.by == "vertiente" else list(report.headers)
    header = [*label_headers, *_TABLE_STATS]
    body = [[*_table_labels(report, row), *_table_cells(row.stats)] for row in report.rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    labels = len(label_headers)

    def line(cells: Sequence[str]) -> str:
        parts = [
            f"{cell:<{widths[i]}}" if i < labels else f"{cell:>{widths[i]}}"
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    period = report.period
    title = (
        f"Calls from {period.first.isoformat()} to {period.last.isoformat()} "
        f"({period.tz.key}), by {report.by}"
    )
    rule = "-" * len(line(header))
    table = [line(header), rule, *(line(cells) for cells in body[:-1]), rule, line(body[-1])]
    return "\n".join([title, "", *table, "", *_footer(report.total)]) + "\n"


CSV_STATS: Final = (
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
)


def _csv_seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def render_csv(report: Report) -> str:
    """The report as CSV: a header, then every row including the total; plain numbers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["level", *report.headers, *CSV_STATS])
    for row in report.rows:
        s = row.stats
        writer.writerow(
            [
                row.level,
                *row.labels,
                s.calls,
                s.routed,
                s.closed,
                s.abandoned,
                s.other,
                s.callers,
                s.waits,
                _csv_seconds(s.wait_p50),
                _csv_seconds(s.wait_p90),
                _csv_seconds(s.wait_p99),
            ]
        )
    return buffer.getvalue()
