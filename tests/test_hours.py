"""The hours engine: open or closed at an instant, why, and when it opens next.

Menus are built from small inline YAML through the real loader (see
``tests/menus.py``). Instants are written in the line's local time unless a
test is about time zones; expected next openings are exact instants.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from menus import AREA, MEXICO, VERTIENTE, area_menu, hours_yaml, menu_from_yaml

from ivr.menu.hours import Option, Reason, Schedule, Status, resolve_option, status
from ivr.menu.model import Menu

MX = ZoneInfo(MEXICO)
TIJUANA = ZoneInfo("America/Tijuana")
NEW_YORK = ZoneInfo("America/New_York")
US = timedelta(microseconds=1)

# A week without official rest days: Monday 2 June 2025 to Sunday 8 June 2025.
MON, TUE, WED, THU, FRI, SAT, SUN = (date(2025, 6, 2) + timedelta(days=i) for i in range(7))
NEXT_MON = date(2025, 6, 9)


def at(day: date, clock: str = "00:00", tz: ZoneInfo = MX, *, fold: int = 0) -> datetime:
    """The aware instant of local ``day`` at ``clock`` ('HH:MM[:SS[.ffffff]]') in ``tz``."""
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=tz).replace(fold=fold)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def check(menu: Menu, instant: datetime, area: str = AREA) -> Status:
    return Schedule(menu).status(area, instant)


def closed(reason: Reason, next_open: datetime | None, *, offered: bool = True) -> Status:
    return Status(open=False, reason=reason, next_open=next_open, offered=offered)


OPEN = Status(open=True, reason=Reason.OPEN, next_open=None, offered=True)


def holiday(name: str, next_open: datetime | None) -> Status:
    return Status(
        open=False, reason=Reason.HOLIDAY, next_open=next_open, offered=True, holiday=name
    )


def third_monday(year: int, month: int) -> date:
    first = date(year, month, 1)
    first_monday = first + timedelta(days=(0 - first.weekday()) % 7)
    return first_monday + timedelta(weeks=2)


def next_weekday(day: date) -> date:
    """The next Monday-to-Friday date after ``day`` (weekends only; no holidays)."""
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@cache
def office() -> Menu:
    """Monday to Friday 08:00-20:00 (the vertiente default), official rest days."""
    return area_menu()


def test_the_sample_week_is_what_the_tests_assume() -> None:
    assert [d.weekday() for d in (MON, TUE, WED, THU, FRI, SAT, SUN, NEXT_MON)] == [
        0, 1, 2, 3, 4, 5, 6, 0,
    ]  # fmt: skip
    mx_holidays = holidays.country_holidays("MX", years=2025)
    assert not any(d in mx_holidays for d in (MON, TUE, WED, THU, FRI, SAT, SUN, NEXT_MON))


# --- weekly hours: exact boundaries -----------------------------------------


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (at(MON, "00:00"), closed(Reason.OUTSIDE_HOURS, at(MON, "08:00"))),
        (at(MON, "07:59:59"), closed(Reason.OUTSIDE_HOURS, at(MON, "08:00"))),
        (at(MON, "07:59:59.999999"), closed(Reason.OUTSIDE_HOURS, at(MON, "08:00"))),
        (at(MON, "08:00:00"), OPEN),
        (at(MON, "13:30"), OPEN),
        (at(MON, "19:59:59"), OPEN),
        (at(MON, "19:59:59.999999"), OPEN),
        (at(MON, "20:00:00"), closed(Reason.OUTSIDE_HOURS, at(TUE, "08:00"))),
        (at(MON, "23:59:59"), closed(Reason.OUTSIDE_HOURS, at(TUE, "08:00"))),
        (at(WED, "20:00"), closed(Reason.OUTSIDE_HOURS, at(THU, "08:00"))),
        (at(FRI, "19:59:59"), OPEN),
        (at(FRI, "20:00"), closed(Reason.OUTSIDE_HOURS, at(NEXT_MON, "08:00"))),
        (at(SAT, "00:00"), closed(Reason.WEEKEND, at(NEXT_MON, "08:00"))),
        (at(SAT, "12:00"), closed(Reason.WEEKEND, at(NEXT_MON, "08:00"))),
        (at(SUN, "23:59:59.999999"), closed(Reason.WEEKEND, at(NEXT_MON, "08:00"))),
        (at(NEXT_MON, "07:00"), closed(Reason.OUTSIDE_HOURS, at(NEXT_MON, "08:00"))),
    ],
    ids=lambda v: v.isoformat() if isinstance(v, datetime) else None,
)
def test_office_hours_boundaries(instant: datetime, expected: Status) -> None:
    assert check(office(), instant) == expected


def test_next_open_is_in_utc_and_names_the_local_opening() -> None:
    result = check(office(), at(MON, "20:00"))
    assert result.next_open is not None
    assert result.next_open.utcoffset() == timedelta(0)
    # Mexico City has been UTC-6 all year since October 2022.
    assert result.next_open == utc("2025-06-03T14:00:00")
    assert result.next_open.astimezone(MX).replace(tzinfo=None) == datetime(2025, 6, 3, 8, 0)


def test_omitted_hours_are_monday_to_friday_8_to_20() -> None:
    explicit = area_menu(vertiente='hours: [{days: mon-fri, open: "08:00", close: "20:00"}]')
    for day in (MON, FRI, SAT, SUN):
        for clock in ("07:59:59", "08:00", "19:59:59", "20:00"):
            assert check(office(), at(day, clock)) == check(explicit, at(day, clock))


def test_spanish_day_names_and_lists() -> None:
    menu = area_menu(
        vertiente="""
        hours:
          - {days: "lun,mié,vie", open: "09:00", close: "10:00"}
          - {days: [sab], open: "11:00", close: "12:00"}
        """
    )
    assert check(menu, at(MON, "09:30")) == OPEN
    assert check(menu, at(TUE, "09:30")) == closed(Reason.OUTSIDE_HOURS, at(WED, "09:00"))
    assert check(menu, at(FRI, "10:00")) == closed(Reason.OUTSIDE_HOURS, at(SAT, "11:00"))
    assert check(menu, at(SAT, "11:59")) == OPEN
    assert check(menu, at(SAT, "12:00")) == closed(Reason.OUTSIDE_HOURS, at(NEXT_MON, "09:00"))
    assert check(menu, at(SUN, "09:30")) == closed(Reason.WEEKEND, at(NEXT_MON, "09:00"))


def test_several_ranges_on_one_day() -> None:
    menu = area_menu(
        vertiente="""
        hours:
          - {days: mon-fri, open: "09:00", close: "13:00"}
          - {days: mon-fri, open: "16:00", close: "19:00"}
        """
    )
    assert check(menu, at(MON, "12:59:59")) == OPEN
    assert check(menu, at(MON, "13:00")) == closed(Reason.OUTSIDE_HOURS, at(MON, "16:00"))
    assert check(menu, at(MON, "15:59:59")) == closed(Reason.OUTSIDE_HOURS, at(MON, "16:00"))
    assert check(menu, at(MON, "16:00")) == OPEN
    assert check(menu, at(MON, "19:00")) == closed(Reason.OUTSIDE_HOURS, at(TUE, "09:00"))


def test_adjacent_ranges_leave_no_gap() -> None:
    menu = area_menu(
        vertiente="""
        hours:
          - {days: mon, open: "08:00", close: "12:00"}
          - {days: mon, open: "12:00", close: "14:00"}
        """
    )
    assert check(menu, at(MON, "11:59:59.999999")) == OPEN
    assert check(menu, at(MON, "12:00")) == OPEN
    assert check(menu, at(MON, "14:00")) == closed(Reason.OUTSIDE_HOURS, at(NEXT_MON, "08:00"))


def test_hours_closed_never_open() -> None:
    menu = area_menu(vertiente="hours: closed")
    assert check(menu, at(MON, "12:00")) == closed(Reason.OUTSIDE_HOURS, None)
    assert check(menu, at(SAT, "12:00")) == closed(Reason.WEEKEND, None)


# --- time zones of the instant ------------------------------------------------


@pytest.mark.parametrize(
    "zone",
    [
        UTC,
        ZoneInfo("Asia/Tokyo"),
        ZoneInfo("Europe/Madrid"),
        NEW_YORK,
        timezone(timedelta(hours=-6)),
    ],
    ids=str,
)
@pytest.mark.parametrize(
    "local",
    [
        at(MON, "07:59:59"),
        at(MON, "08:00"),
        at(FRI, "19:59:59"),
        at(FRI, "20:00"),
        at(SAT, "03:00"),
    ],
    ids=lambda v: v.isoformat(),
)
def test_any_zone_gives_the_local_answer(zone: timezone | ZoneInfo, local: datetime) -> None:
    expected = check(office(), local)
    assert check(office(), local.astimezone(zone)) == expected


def test_utc_instants() -> None:
    assert check(office(), utc("2025-06-02T13:59:59")) == closed(
        Reason.OUTSIDE_HOURS, at(MON, "08:00")
    )
    assert check(office(), utc("2025-06-02T14:00:00")) == OPEN
    # Friday 19:59 in Mexico is already Saturday 01:59 in UTC: still open.
    assert check(office(), utc("2025-06-07T01:59:59")) == OPEN
    assert check(office(), utc("2025-06-07T02:00:00")) == closed(
        Reason.OUTSIDE_HOURS, at(NEXT_MON, "08:00")
    )
    # Sunday 20:00 UTC is Sunday 14:00 in Mexico, Monday 01:00 UTC is Sunday 19:00.
    assert check(office(), utc("2025-06-09T01:00:00")).reason is Reason.WEEKEND


def test_naive_instants_are_rejected() -> None:
    naive = datetime(2025, 6, 2, 9, 0)
    schedule = Schedule(office())
    with pytest.raises(ValueError, match="no time zone"):
        schedule.status(AREA, naive)
    with pytest.raises(ValueError, match="no time zone"):
        status(office(), AREA, naive)
    with pytest.raises(ValueError, match="no time zone"):
        schedule.is_open(schedule.options[AREA], naive)


def test_module_level_status_matches_schedule() -> None:
    assert status(office(), AREA, at(MON, "20:00")) == closed(
        Reason.OUTSIDE_HOURS, at(TUE, "08:00")
    )
    assert status(office(), AREA, at(MON, "09:00")) == OPEN


def test_unknown_area_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        check(office(), at(MON, "09:00"), area="no-existe")


# --- official rest days and the menu's own dates -----------------------------


@pytest.mark.parametrize("year", range(2022, 2031))
def test_independence_day(year: int) -> None:
    day = date(year, 9, 16)
    expected_next = at(next_weekday(day), "08:00")
    result = check(office(), at(day, "12:00"))
    assert result == holiday("Día de la Independencia", expected_next)
    # The evening before (if it is a working day) also skips the holiday.
    eve = day - timedelta(days=1)
    if eve.weekday() < 5 and day.weekday() < 5:
        assert check(office(), at(eve, "20:00")).next_open == expected_next


@pytest.mark.parametrize("year", range(2022, 2031))
def test_new_year(year: int) -> None:
    day = date(year, 1, 1)
    result = check(office(), at(day, "09:00"))
    assert result.reason is Reason.HOLIDAY
    assert result.holiday == "Año Nuevo"
    assert result.next_open == at(next_weekday(day), "08:00")
    assert not result.open
    assert result.offered


@pytest.mark.parametrize("year", range(2022, 2031))
def test_revolution_day_is_the_third_monday_of_november(year: int) -> None:
    monday = third_monday(year, 11)
    assert monday.weekday() == 0
    assert 15 <= monday.day <= 21
    tuesday = monday + timedelta(days=1)
    assert check(office(), at(monday, "10:00")) == holiday(
        "Día de la Revolución", at(tuesday, "08:00")
    )
    # Friday evening before the long weekend: next opening is Tuesday.
    friday = monday - timedelta(days=3)
    assert check(office(), at(friday, "20:00")) == closed(
        Reason.OUTSIDE_HOURS, at(tuesday, "08:00")
    )
    assert check(office(), at(tuesday, "08:00")) == OPEN
    # 20 November itself is an ordinary day unless it is the third Monday.
    twentieth = date(year, 11, 20)
    if twentieth != monday and twentieth.weekday() < 5:
        assert check(office(), at(twentieth, "10:00")) == OPEN


def test_other_official_rest_days_of_2024() -> None:
    for day, name in [
        (date(2024, 2, 5), "Día de la Constitución"),
        (date(2024, 3, 18), "Natalicio de Benito Juárez"),
        (date(2024, 5, 1), "Día del Trabajo"),
        (date(2024, 10, 1), "Transmisión del Poder Ejecutivo Federal"),
        (date(2024, 12, 25), "Navidad"),
    ]:
        result = check(office(), at(day, "12:00"))
        assert result == holiday(name, at(day + timedelta(days=1), "08:00")), day


def test_holiday_whose_weekday_has_no_hours_still_says_holiday() -> None:
    # 16 September 2023 was a Saturday.
    result = check(office(), at(date(2023, 9, 16), "12:00"))
    assert result == holiday("Día de la Independencia", at(date(2023, 9, 18), "08:00"))


def test_official_holidays_can_be_turned_off() -> None:
    menu = area_menu(calendar="official_holidays: false")
    assert check(menu, at(date(2025, 9, 16), "12:00")) == OPEN
    assert check(menu, at(date(2025, 9, 15), "20:00")) == closed(
        Reason.OUTSIDE_HOURS, at(date(2025, 9, 16), "08:00")
    )


def test_holidays_close_even_24_7_regular_hours() -> None:
    menu = area_menu(vertiente="hours: 24/7")
    christmas = date(2025, 12, 25)
    assert check(menu, at(christmas, "00:00")) == holiday("Navidad", at(christmas + timedelta(1)))
    assert check(menu, at(christmas - timedelta(days=1), "23:59:59.999999")) == OPEN
    assert check(menu, at(christmas + timedelta(days=1), "00:00")) == OPEN


def test_dated_closure_single_day() -> None:
    menu = area_menu(calendar="closures: [{from: 2025-06-04, name: Inventario anual}]")
    assert check(menu, at(TUE, "20:00")) == closed(Reason.OUTSIDE_HOURS, at(THU, "08:00"))
    assert check(menu, at(WED, "10:00")) == holiday("Inventario anual", at(THU, "08:00"))
    assert check(menu, at(THU, "08:00")) == OPEN


def test_dated_closure_range_includes_both_days() -> None:
    menu = area_menu(
        calendar="""
        closures:
          - from: 2027-03-25
            to: 2027-03-26
            name: Jueves y Viernes Santo
        """
    )
    monday = at(date(2027, 3, 29), "08:00")
    assert check(menu, at(date(2027, 3, 24), "19:59")) == OPEN
    assert check(menu, at(date(2027, 3, 24), "20:00")) == closed(Reason.OUTSIDE_HOURS, monday)
    for day in (date(2027, 3, 25), date(2027, 3, 26)):
        assert check(menu, at(day, "12:00")) == holiday("Jueves y Viernes Santo", monday)
    assert check(menu, at(date(2027, 3, 29), "08:00")) == OPEN


def test_dated_closure_on_an_official_holiday_keeps_its_own_name() -> None:
    menu = area_menu(
        calendar="closures: [{from: 2025-09-15, to: 2025-09-16, name: Fiestas patrias}]"
    )
    assert check(menu, at(date(2025, 9, 16), "12:00")) == holiday(
        "Fiestas patrias", at(date(2025, 9, 17), "08:00")
    )


def test_dated_opening_cancels_a_holiday() -> None:
    menu = area_menu(calendar="openings: [{date: 2025-09-16, name: Guardia patria}]")
    sep16 = date(2025, 9, 16)
    assert check(menu, at(sep16 - timedelta(days=1), "20:00")) == closed(
        Reason.OUTSIDE_HOURS, at(sep16, "08:00")
    )
    assert check(menu, at(sep16, "07:00")) == closed(Reason.OUTSIDE_HOURS, at(sep16, "08:00"))
    assert check(menu, at(sep16, "12:00")) == OPEN
    assert check(menu, at(sep16, "20:00")) == closed(
        Reason.OUTSIDE_HOURS, at(sep16 + timedelta(days=1), "08:00")
    )


def test_dated_opening_cancels_a_closure() -> None:
    menu = area_menu(
        calendar="""
        closures: [{from: 2025-06-02, to: 2025-06-06, name: Vacaciones}]
        openings: [{date: 2025-06-04, name: Jornada de pagos}]
        """
    )
    assert check(menu, at(MON, "12:00")) == holiday("Vacaciones", at(WED, "08:00"))
    assert check(menu, at(WED, "12:00")) == OPEN
    # On the opening day itself it is just after hours; the closure resumes next day.
    assert check(menu, at(WED, "20:00")) == closed(Reason.OUTSIDE_HOURS, at(NEXT_MON, "08:00"))
    assert check(menu, at(THU, "12:00")) == holiday("Vacaciones", at(NEXT_MON, "08:00"))


def test_dated_opening_with_its_own_hours_on_a_saturday() -> None:
    menu = area_menu(
        calendar="""
        openings:
          - date: 2025-06-07
            name: Jornada sabatina
            hours: [{open: "09:00", close: "14:00"}]
        """
    )
    assert check(menu, at(FRI, "20:00")) == closed(Reason.OUTSIDE_HOURS, at(SAT, "09:00"))
    assert check(menu, at(SAT, "08:59:59")) == closed(Reason.OUTSIDE_HOURS, at(SAT, "09:00"))
    assert check(menu, at(SAT, "09:00")) == OPEN
    assert check(menu, at(SAT, "13:59:59")) == OPEN
    assert check(menu, at(SAT, "14:00")) == closed(Reason.OUTSIDE_HOURS, at(NEXT_MON, "08:00"))
    # The Saturday after is an ordinary weekend day again.
    assert check(menu, at(SAT + timedelta(weeks=1), "10:00")).reason is Reason.WEEKEND


def test_dated_opening_hours_replace_the_weekday_hours() -> None:
    menu = area_menu(
        calendar="""
        openings:
          - {date: 2025-09-16, name: Medio día, hours: [{open: "10:00", close: "14:00"}]}
          - {date: 2025-06-04, name: Horario corto, hours: [{open: "09:00", close: "11:00"}]}
        """
    )
    sep16 = date(2025, 9, 16)
    assert check(menu, at(sep16, "08:30")) == closed(Reason.OUTSIDE_HOURS, at(sep16, "10:00"))
    assert check(menu, at(sep16, "13:00")) == OPEN
    assert check(menu, at(sep16, "14:00")) == closed(
        Reason.OUTSIDE_HOURS, at(sep16 + timedelta(days=1), "08:00")
    )
    assert check(menu, at(WED, "08:30")) == closed(Reason.OUTSIDE_HOURS, at(WED, "09:00"))
    assert check(menu, at(WED, "11:00")) == closed(Reason.OUTSIDE_HOURS, at(THU, "08:00"))


# --- midnight -----------------------------------------------------------------


def test_overnight_range() -> None:
    menu = area_menu(
        vertiente='hours: [{days: fri, open: "22:00", close: "06:00", overnight: true}]'
    )
    friday_22 = at(FRI, "22:00")
    assert check(menu, at(THU, "23:00")) == closed(Reason.OUTSIDE_HOURS, friday_22)
    assert check(menu, at(FRI, "21:59:59")) == closed(Reason.OUTSIDE_HOURS, friday_22)
    assert check(menu, friday_22) == OPEN
    assert check(menu, at(FRI, "23:59:59.999999")) == OPEN
    assert check(menu, at(SAT, "00:00")) == OPEN
    assert check(menu, at(SAT, "03:00")) == OPEN
    assert check(menu, at(SAT, "05:59:59")) == OPEN
    next_friday_22 = at(FRI + timedelta(weeks=1), "22:00")
    assert check(menu, at(SAT, "06:00")) == closed(Reason.WEEKEND, next_friday_22)
    assert check(menu, at(SUN, "03:00")) == closed(Reason.WEEKEND, next_friday_22)


def test_overnight_ranges_every_night() -> None:
    menu = area_menu(
        vertiente='hours: [{days: sun-thu, open: "21:00", close: "07:00", overnight: true}]'
    )
    assert check(menu, at(SUN, "21:00")) == OPEN
    assert check(menu, at(MON, "06:59:59")) == OPEN
    assert check(menu, at(MON, "07:00")) == closed(Reason.OUTSIDE_HOURS, at(MON, "21:00"))
    assert check(menu, at(FRI, "06:59:59")) == OPEN  # Thursday's night
    assert check(menu, at(FRI, "21:00")) == closed(Reason.OUTSIDE_HOURS, at(SUN, "21:00"))
    assert check(menu, at(SAT, "03:00")) == closed(Reason.WEEKEND, at(SUN, "21:00"))


def test_overnight_range_belongs_to_the_day_it_starts() -> None:
    # Monday 15 September 2025 is a working day; the 16th is a holiday.
    menu = area_menu(
        vertiente='hours: [{days: daily, open: "22:00", close: "06:00", overnight: true}]'
    )
    sep15, sep16, sep17 = date(2025, 9, 15), date(2025, 9, 16), date(2025, 9, 17)
    assert check(menu, at(sep16, "03:00")) == OPEN
    assert check(menu, at(sep16, "06:00")) == holiday("Día de la Independencia", at(sep17, "22:00"))
    assert check(menu, at(sep16, "22:00")) == holiday("Día de la Independencia", at(sep17, "22:00"))
    # The night starting on the holiday is not served, the next one is.
    assert check(menu, at(sep17, "03:00")) == closed(Reason.OUTSIDE_HOURS, at(sep17, "22:00"))
    assert check(menu, at(sep15, "21:59")) == closed(Reason.OUTSIDE_HOURS, at(sep15, "22:00"))


def test_overnight_range_may_last_24_hours() -> None:
    menu = area_menu(
        vertiente='hours: [{days: mon, open: "12:00", close: "12:00", overnight: true}]'
    )
    assert check(menu, at(MON, "12:00")) == OPEN
    assert check(menu, at(TUE, "11:59:59")) == OPEN
    assert check(menu, at(TUE, "12:00")) == closed(Reason.OUTSIDE_HOURS, at(NEXT_MON, "12:00"))


def test_close_at_24_00() -> None:
    menu = area_menu(vertiente='hours: [{days: mon-fri, open: "20:00", close: "24:00"}]')
    assert check(menu, at(MON, "19:59:59")) == closed(Reason.OUTSIDE_HOURS, at(MON, "20:00"))
    assert check(menu, at(MON, "23:59:59.999999")) == OPEN
    assert check(menu, at(TUE, "00:00")) == closed(Reason.OUTSIDE_HOURS, at(TUE, "20:00"))
    assert check(menu, at(SAT, "00:00")) == closed(Reason.WEEKEND, at(NEXT_MON, "20:00"))


@pytest.mark.parametrize(
    "hours", ["24/7", "always", '[{days: daily, open: "00:00", close: "24:00"}]']
)
def test_24_7_is_always_open(hours: str) -> None:
    menu = area_menu(vertiente=f"hours: {hours}", calendar="official_holidays: false")
    schedule = Schedule(menu)
    start = at(date(2025, 1, 1))
    for step in range(0, 366 * 24 * 4, 7):  # every 1h45m through a year, holidays included
        assert schedule.status(AREA, start + timedelta(minutes=15 * step)) == OPEN
    for instant in (at(SUN, "23:59:59.999999"), at(MON), at(date(2025, 9, 16), "12:00")):
        assert schedule.status(AREA, instant) == OPEN


# --- service periods, inheritance and disabled options ------------------------

PERIOD_MENU = """
period: {from: 2026-01-05, to: 2026-01-09}
"""


def test_before_the_service_period() -> None:
    menu = area_menu(PERIOD_MENU)
    first = at(date(2026, 1, 5), "08:00")
    expected = closed(Reason.OUTSIDE_SERVICE_PERIOD, first, offered=False)
    assert check(menu, at(date(2025, 12, 1), "12:00")) == expected
    # 1 January is a holiday, but the period is what keeps the option away.
    assert check(menu, at(date(2026, 1, 1), "12:00")) == expected
    assert check(menu, at(date(2026, 1, 4), "23:59:59.999999")) == expected


def test_first_and_last_day_of_the_period_are_included() -> None:
    menu = area_menu(PERIOD_MENU)
    jan5, jan6, jan9 = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 9)
    assert check(menu, at(jan5, "00:00")) == closed(Reason.OUTSIDE_HOURS, at(jan5, "08:00"))
    assert check(menu, at(jan5, "08:00")) == OPEN
    assert check(menu, at(jan5, "20:00")) == closed(Reason.OUTSIDE_HOURS, at(jan6, "08:00"))
    assert check(menu, at(jan9, "19:59:59")) == OPEN
    # Offered until the end of the last day, but it will not open again.
    assert check(menu, at(jan9, "20:00")) == closed(Reason.OUTSIDE_HOURS, None)
    assert check(menu, at(jan9, "23:59:59")) == closed(Reason.OUTSIDE_HOURS, None)


def test_after_the_service_period() -> None:
    menu = area_menu(PERIOD_MENU)
    expected = closed(Reason.OUTSIDE_SERVICE_PERIOD, None, offered=False)
    assert check(menu, at(date(2026, 1, 10), "00:00")) == expected
    assert check(menu, at(date(2026, 1, 12), "10:00")) == expected
    assert check(menu, at(date(2030, 1, 14), "10:00")) == expected


def test_service_period_starting_on_a_weekend() -> None:
    menu = area_menu("period: {from: 2026-01-03, to: 2026-02-27}")
    assert check(menu, at(date(2026, 1, 2), "12:00")) == closed(
        Reason.OUTSIDE_SERVICE_PERIOD, at(date(2026, 1, 5), "08:00"), offered=False
    )
    assert check(menu, at(date(2026, 1, 3), "12:00")) == closed(
        Reason.WEEKEND, at(date(2026, 1, 5), "08:00")
    )


def test_service_period_cuts_an_overnight_range_at_its_end() -> None:
    menu = area_menu(
        """
        period: {from: 2026-01-05, to: 2026-01-09}
        hours: [{days: daily, open: "22:00", close: "06:00", overnight: true}]
        """
    )
    assert check(menu, at(date(2026, 1, 5), "21:00")) == closed(
        Reason.OUTSIDE_HOURS, at(date(2026, 1, 5), "22:00")
    )
    assert check(menu, at(date(2026, 1, 9), "23:59:59.999999")) == OPEN
    assert check(menu, at(date(2026, 1, 10), "00:00")) == closed(
        Reason.OUTSIDE_SERVICE_PERIOD, None, offered=False
    )
    # The night before the first day is outside the period.
    assert check(menu, at(date(2026, 1, 5), "03:00")) == closed(
        Reason.OUTSIDE_HOURS, at(date(2026, 1, 5), "22:00")
    )


TWO_AREAS = """
programas:
  digit: 1
  name: Programas
  prompt: opcion-programas
  menu_prompt: menu-programas
  hours:
    - {days: mon-fri, open: "08:00", close: "20:00"}
  areas:
    general:
      digit: 1
      name: General
      department: Dependencia
      queue: mesa
      prompt: opcion-general
    sabatino:
      digit: 2
      name: Sabatino
      department: Dependencia
      queue: mesa
      prompt: opcion-sabatino
      hours:
        - {days: sat, open: "09:00", close: "14:00"}
    apagado:
      digit: 3
      name: Apagado
      department: Dependencia
      queue: mesa
      prompt: opcion-apagado
      enabled: false
"""


def test_area_hours_replace_the_vertiente_hours() -> None:
    menu = menu_from_yaml(TWO_AREAS)
    assert check(menu, at(MON, "10:00"), "general") == OPEN
    assert check(menu, at(SAT, "10:00"), "general") == closed(Reason.WEEKEND, at(NEXT_MON, "08:00"))
    # Not merged: the Saturday area is closed on weekdays.
    assert check(menu, at(MON, "10:00"), "sabatino") == closed(
        Reason.OUTSIDE_HOURS, at(SAT, "09:00")
    )
    assert check(menu, at(SAT, "10:00"), "sabatino") == OPEN
    assert check(menu, at(SAT, "14:00"), "sabatino") == closed(
        Reason.OUTSIDE_HOURS, at(SAT + timedelta(weeks=1), "09:00")
    )
    assert check(menu, at(SUN, "10:00"), "sabatino") == closed(
        Reason.WEEKEND, at(SAT + timedelta(weeks=1), "09:00")
    )


@pytest.mark.parametrize("instant", [at(MON, "10:00"), at(MON, "21:00"), at(SAT, "10:00")])
def test_disabled_area(instant: datetime) -> None:
    menu = menu_from_yaml(TWO_AREAS)
    assert check(menu, instant, "apagado") == closed(Reason.DISABLED, None, offered=False)


def test_disabled_vertiente_disables_its_areas() -> None:
    menu = area_menu(vertiente="enabled: false")
    assert check(menu, at(MON, "10:00")) == closed(Reason.DISABLED, None, offered=False)


def test_disabled_area_stays_closed_during_its_contingency() -> None:
    menu = area_menu(
        """
        enabled: false
        contingencies: [{name: Lluvias, from: 2025-06-01, to: 2025-06-30}]
        """
    )
    assert check(menu, at(MON, "10:00")) == closed(Reason.DISABLED, None, offered=False)


def test_resolve_option_inherits_from_the_vertiente() -> None:
    menu = area_menu(
        "contingencies: [{name: Propia, from: 2026-02-01, to: 2026-02-02}]",
        vertiente="""
        requires_contingency: true
        hours: [{days: sat, open: "09:00", close: "10:00"}]
        contingencies: [{name: Común, from: 2026-01-01, to: 2026-01-02}]
        """,
    )
    option = resolve_option(menu, VERTIENTE, AREA)
    assert isinstance(option, Option)
    assert (option.vertiente, option.area, option.enabled) == (VERTIENTE, AREA, True)
    assert option.requires_contingency is True
    assert [(r.days, r.open, r.close) for r in option.hours] == [((5,), 9 * 3600, 10 * 3600)]
    assert option.period is None
    assert [w.name for w in option.contingencies] == ["Común", "Propia"]
    assert Schedule(menu).options[AREA] == option


def test_area_can_opt_out_of_requiring_a_contingency() -> None:
    menu = area_menu("requires_contingency: false", vertiente="requires_contingency: true")
    assert check(menu, at(MON, "10:00")) == OPEN
    assert check(menu, at(MON, "20:00")) == closed(Reason.OUTSIDE_HOURS, at(TUE, "08:00"))


# --- contingency windows --------------------------------------------------------

WINTER = """
contingencies:
  - name: Temporada invernal
    from: 2026-11-01
    to: 2027-03-31
    announcement: aviso-invierno
"""
WINTER_START = at(date(2026, 11, 1))
WINTER_END = at(date(2027, 4, 1))


def emergency(area_yaml: str, calendar: str = "") -> Menu:
    return area_menu(area_yaml, vertiente="requires_contingency: true", calendar=calendar)


def test_contingency_before_the_window() -> None:
    menu = emergency(WINTER)
    expected = closed(Reason.NO_ACTIVE_CONTINGENCY, WINTER_START, offered=False)
    assert check(menu, at(date(2026, 6, 1), "10:00")) == expected  # a Monday in office hours
    assert check(menu, WINTER_START - US) == expected
    assert check(menu, at(date(2025, 11, 1), "10:00")) == expected  # over a year before


def test_contingency_window_serves_24_7_with_rest_days() -> None:
    menu = emergency(WINTER)
    schedule = Schedule(menu)
    for instant in (
        WINTER_START,
        at(date(2026, 11, 7), "03:00"),  # Saturday night
        at(date(2026, 11, 16), "12:00"),  # Día de la Revolución
        at(date(2026, 12, 25), "00:00"),  # Navidad
        at(date(2027, 1, 1), "23:59"),  # Año Nuevo
        at(date(2027, 3, 31), "23:59:59.999999"),  # a date alone covers the whole last day
    ):
        assert schedule.status(AREA, instant) == OPEN, instant


def test_contingency_after_the_window() -> None:
    menu = emergency(WINTER)
    expected = closed(Reason.NO_ACTIVE_CONTINGENCY, None, offered=False)
    assert check(menu, WINTER_END) == expected
    assert check(menu, at(date(2027, 4, 5), "10:00")) == expected


def test_contingency_window_with_its_own_hours() -> None:
    menu = emergency(
        """
        contingencies:
          - name: Temporada invernal
            from: 2026-11-01
            to: 2027-03-31
            hours: [{days: daily, open: "07:00", close: "22:00"}]
        """
    )
    nov2, nov3 = date(2026, 11, 2), date(2026, 11, 3)
    assert check(menu, at(date(2026, 10, 31), "12:00")) == closed(
        Reason.NO_ACTIVE_CONTINGENCY, at(date(2026, 11, 1), "07:00"), offered=False
    )
    assert check(menu, at(date(2026, 11, 1), "00:00")) == closed(
        Reason.OUTSIDE_HOURS, at(date(2026, 11, 1), "07:00")
    )
    assert check(menu, at(nov2, "06:59:59")) == closed(Reason.OUTSIDE_HOURS, at(nov2, "07:00"))
    assert check(menu, at(nov2, "07:00")) == OPEN
    assert check(menu, at(nov2, "22:00")) == closed(Reason.OUTSIDE_HOURS, at(nov3, "07:00"))
    assert check(menu, at(date(2026, 11, 16), "12:00")) == OPEN  # holiday: still served
    assert check(menu, at(date(2027, 3, 31), "21:59:59")) == OPEN
    assert check(menu, at(date(2027, 3, 31), "22:00")) == closed(Reason.OUTSIDE_HOURS, None)


def test_contingency_window_with_weekday_hours_says_weekend() -> None:
    menu = emergency(
        """
        contingencies:
          - name: Brigadas
            from: 2025-06-01
            to: 2025-06-30
            hours: [{days: mon-fri, open: "09:00", close: "18:00"}]
        """
    )
    assert check(menu, at(SAT, "10:00")) == closed(Reason.WEEKEND, at(NEXT_MON, "09:00"))
    assert check(menu, at(FRI, "18:00")) == closed(Reason.OUTSIDE_HOURS, at(NEXT_MON, "09:00"))
    assert check(menu, at(FRI, "17:59")) == OPEN


def test_contingency_window_that_closes_on_rest_days() -> None:
    menu = emergency(
        """
        contingencies:
          - name: Temporada invernal
            from: 2026-11-01
            to: 2027-03-31
            holidays_close: true
        """,
        calendar="closures: [{from: 2026-12-31, name: Cierre de año}]",
    )
    nov16, nov17 = date(2026, 11, 16), date(2026, 11, 17)
    assert check(menu, at(nov16 - timedelta(days=1), "23:59:59.999999")) == OPEN
    assert check(menu, at(nov16, "00:00")) == holiday("Día de la Revolución", at(nov17))
    assert check(menu, at(nov16, "23:59:59")) == holiday("Día de la Revolución", at(nov17))
    assert check(menu, at(nov17, "00:00")) == OPEN
    # Dated closures count as rest days too: 31 December and 1 January in a row.
    assert check(menu, at(date(2026, 12, 31), "12:00")) == holiday(
        "Cierre de año", at(date(2027, 1, 2))
    )
    assert check(menu, at(date(2027, 1, 1), "12:00")) == holiday("Año Nuevo", at(date(2027, 1, 2)))


def test_contingency_window_with_utc_offsets() -> None:
    menu = emergency(
        """
        contingencies:
          - name: Sismo
            from: "2026-06-01T12:00:00Z"
            to: "2026-06-02T12:00:00+00:00"
        """
    )
    # 12:00 UTC is 06:00 in Mexico City.
    start, end = utc("2026-06-01T12:00:00"), utc("2026-06-02T12:00:00")
    assert check(menu, at(date(2026, 6, 1), "05:59:59")) == closed(
        Reason.NO_ACTIVE_CONTINGENCY, start, offered=False
    )
    assert check(menu, at(date(2026, 6, 1), "06:00")) == OPEN
    assert check(menu, end - US) == OPEN
    assert check(menu, at(date(2026, 6, 2), "06:00")) == closed(
        Reason.NO_ACTIVE_CONTINGENCY, None, offered=False
    )
    assert check(menu, end) == check(menu, at(date(2026, 6, 2), "06:00"))


def test_contingency_window_with_local_offsets_and_times() -> None:
    menu = emergency(
        """
        contingencies:
          - name: Incendio
            from: "2026-06-01T12:30:00-06:00"
            to: "2026-06-03T09:15:00-06:00"
        """
    )
    assert check(menu, at(date(2026, 5, 30), "12:00")).next_open == at(date(2026, 6, 1), "12:30")
    assert check(menu, at(date(2026, 6, 3), "09:14:59")) == OPEN
    assert check(menu, at(date(2026, 6, 3), "09:15")).next_open is None


def test_contingency_window_starting_mid_day_in_local_time() -> None:
    menu = emergency(
        """
        contingencies:
          - name: Apagón
            from: "2026-06-01T12:30:00"
            to: "2026-06-01T18:45:00"
        """
    )
    assert check(menu, at(date(2026, 6, 1), "12:29:59")) == closed(
        Reason.NO_ACTIVE_CONTINGENCY, at(date(2026, 6, 1), "12:30"), offered=False
    )
    assert check(menu, at(date(2026, 6, 1), "12:30")) == OPEN
    assert check(menu, at(date(2026, 6, 1), "18:44:59.999999")) == OPEN
    assert check(menu, at(date(2026, 6, 1), "18:45")) == closed(
        Reason.NO_ACTIVE_CONTINGENCY, None, offered=False
    )


def test_between_two_windows_next_open_is_the_second() -> None:
    menu = emergency(
        """
        contingencies:
          - {name: Lluvias 2026, from: 2026-06-01, to: 2026-10-31}
          - {name: Lluvias 2027, from: 2027-06-01, to: 2027-10-31}
        """
    )
    assert check(menu, at(date(2026, 5, 1), "12:00")).next_open == at(date(2026, 6, 1))
    assert check(menu, at(date(2026, 11, 1), "12:00")) == closed(
        Reason.NO_ACTIVE_CONTINGENCY, at(date(2027, 6, 1)), offered=False
    )
    assert check(menu, at(date(2027, 11, 1), "12:00")).next_open is None


def test_vertiente_window_applies_to_its_areas() -> None:
    menu = area_menu(
        vertiente="""
        requires_contingency: true
        contingencies: [{name: Lluvias, from: 2026-06-01, to: 2026-06-30}]
        """
    )
    assert check(menu, at(date(2026, 6, 6), "03:00")) == OPEN
    assert check(menu, at(date(2026, 7, 1), "03:00")) == closed(
        Reason.NO_ACTIVE_CONTINGENCY, None, offered=False
    )


def test_window_adds_service_to_an_ordinary_area() -> None:
    # An area with regular hours and a 24/7 window: the window extends service.
    menu = area_menu("contingencies: [{name: Lluvias, from: 2025-09-13, to: 2025-09-16}]")
    sat13, sep16, sep17 = date(2025, 9, 13), date(2025, 9, 16), date(2025, 9, 17)
    assert check(menu, at(sat13 - timedelta(days=1), "20:00")) == closed(
        Reason.OUTSIDE_HOURS, at(sat13)
    )
    assert check(menu, at(sat13, "03:00")) == OPEN
    assert check(menu, at(sep16, "23:00")) == OPEN  # holiday, inside the window
    assert check(menu, at(sep17, "00:00")) == closed(Reason.OUTSIDE_HOURS, at(sep17, "08:00"))
    assert check(menu, at(sep17, "08:00")) == OPEN


def test_reason_during_a_window_counts_the_regular_saturday_hours() -> None:
    # Regular Saturday hours plus an evening window: Saturday afternoon is just after hours.
    menu = area_menu(
        """
        hours:
          - {days: mon-fri, open: "08:00", close: "20:00"}
          - {days: sat, open: "09:00", close: "14:00"}
        contingencies:
          - name: Horario extendido
            from: 2025-06-01
            to: 2025-06-30
            hours: [{days: mon-fri, open: "20:00", close: "22:00"}]
        """
    )
    assert check(menu, at(FRI, "21:59:59")) == OPEN
    assert check(menu, at(FRI, "22:00")) == closed(Reason.OUTSIDE_HOURS, at(SAT, "09:00"))
    assert check(menu, at(SAT, "14:00")) == closed(Reason.OUTSIDE_HOURS, at(NEXT_MON, "08:00"))
    assert check(menu, at(SUN, "12:00")) == closed(Reason.WEEKEND, at(NEXT_MON, "08:00"))


def test_window_offers_an_area_outside_its_service_period() -> None:
    menu = area_menu(
        """
        period: {from: 2026-01-05, to: 2026-01-09}
        contingencies: [{name: Prórroga, from: 2026-01-12, to: 2026-01-13}]
        """
    )
    jan12 = date(2026, 1, 12)
    assert check(menu, at(date(2026, 1, 9), "20:00")) == closed(Reason.OUTSIDE_HOURS, at(jan12))
    assert check(menu, at(date(2026, 1, 10), "12:00")) == closed(
        Reason.OUTSIDE_SERVICE_PERIOD, at(jan12), offered=False
    )
    assert check(menu, at(jan12, "03:00")) == OPEN
    assert check(menu, at(date(2026, 1, 14), "00:00")) == closed(
        Reason.OUTSIDE_SERVICE_PERIOD, None, offered=False
    )


def test_overnight_window_hours_are_cut_at_the_window_end() -> None:
    menu = emergency(
        """
        contingencies:
          - name: Guardias nocturnas
            from: 2026-06-01
            to: 2026-06-05
            hours: [{days: daily, open: "20:00", close: "08:00", overnight: true}]
        """
    )
    jun1, jun5, jun6 = date(2026, 6, 1), date(2026, 6, 5), date(2026, 6, 6)
    # The window starts in the middle of a night: it serves from its start.
    assert check(menu, at(jun1) - US) == closed(
        Reason.NO_ACTIVE_CONTINGENCY, at(jun1), offered=False
    )
    assert check(menu, at(jun1, "03:00")) == OPEN
    assert check(menu, at(jun1, "08:00")) == closed(Reason.OUTSIDE_HOURS, at(jun1, "20:00"))
    assert check(menu, at(jun5, "23:59:59")) == OPEN
    assert check(menu, at(jun6, "00:00")) == closed(
        Reason.NO_ACTIVE_CONTINGENCY, None, offered=False
    )


# --- daylight saving time ------------------------------------------------------


def test_mexico_end_of_daylight_saving_2022() -> None:
    # Friday 28 October 2022 was still UTC-5; Monday 31 October was UTC-6 for good.
    friday_20 = at(date(2022, 10, 28), "20:00")
    assert friday_20 == utc("2022-10-29T01:00:00")
    monday_8 = utc("2022-10-31T14:00:00")
    assert check(office(), friday_20) == closed(Reason.OUTSIDE_HOURS, monday_8)
    assert check(office(), utc("2022-10-29T00:59:59")) == OPEN
    assert check(office(), utc("2022-10-31T13:59:59")) == closed(Reason.OUTSIDE_HOURS, monday_8)
    assert check(office(), monday_8) == OPEN
    assert at(date(2022, 10, 31), "08:00") == monday_8


def test_mexico_overnight_range_across_the_2022_change() -> None:
    # Saturday 22:00 CDT (UTC-5) to Sunday 06:00 CST (UTC-6): nine hours.
    menu = area_menu(
        vertiente='hours: [{days: sat, open: "22:00", close: "06:00", overnight: true}]'
    )
    start, end = utc("2022-10-30T03:00:00"), utc("2022-10-30T12:00:00")
    assert at(date(2022, 10, 29), "22:00") == start
    assert at(date(2022, 10, 30), "06:00") == end
    # Saturday has hours, so closed Saturday afternoon is outside hours, not weekend.
    assert check(menu, start - US) == closed(Reason.OUTSIDE_HOURS, start)
    assert check(menu, start) == OPEN
    # 01:30 happens twice that night, and both are inside the range.
    assert check(menu, at(date(2022, 10, 30), "01:30", fold=0)) == OPEN
    assert check(menu, at(date(2022, 10, 30), "01:30", fold=1)) == OPEN
    assert check(menu, end - US) == OPEN
    next_saturday = utc("2022-11-06T04:00:00")  # 22:00 CST
    assert check(menu, end) == closed(Reason.WEEKEND, next_saturday)
    assert check(menu, next_saturday) == OPEN


def test_mexico_last_spring_forward_2022() -> None:
    # 3 April 2022 at 02:00 CST clocks jumped to 03:00 CDT: 02:30 did not exist.
    menu = area_menu(vertiente='hours: [{days: sun, open: "02:30", close: "05:00"}]')
    jump = utc("2022-04-03T08:00:00")  # 02:00 CST == 03:00 CDT
    result = check(menu, at(date(2022, 4, 2), "12:00"))
    assert result == closed(Reason.WEEKEND, jump)
    assert check(menu, jump) == OPEN
    assert check(menu, jump - US) == closed(Reason.OUTSIDE_HOURS, jump)  # Sunday has hours
    assert check(menu, at(date(2022, 4, 3), "04:59:59")) == OPEN
    assert check(menu, at(date(2022, 4, 3), "05:00")) == closed(
        Reason.OUTSIDE_HOURS, at(date(2022, 4, 10), "02:30")
    )


@pytest.mark.parametrize(
    ("zone", "day", "jump"),
    [
        (TIJUANA, date(2026, 3, 8), utc("2026-03-08T10:00:00")),
        (NEW_YORK, date(2026, 3, 8), utc("2026-03-08T07:00:00")),
    ],
    ids=["tijuana", "new-york"],
)
def test_opening_inside_the_spring_forward_gap(zone: ZoneInfo, day: date, jump: datetime) -> None:
    menu = area_menu(
        vertiente='hours: [{days: sun, open: "02:30", close: "04:00"}]', timezone=zone.key
    )
    schedule = Schedule(menu)
    result = schedule.status(AREA, at(day - timedelta(days=1), "12:00", zone))
    assert result == closed(Reason.WEEKEND, jump)
    assert schedule.status(AREA, jump).open
    assert not schedule.status(AREA, jump - US).open
    assert schedule.status(AREA, jump - US).next_open == jump
    # The opening is the first instant that exists at or after 02:30 local.
    assert jump.astimezone(zone).replace(tzinfo=None) == datetime.combine(day, time(3, 0))
    assert schedule.status(AREA, at(day, "03:59:59", zone)) == OPEN
    assert schedule.status(AREA, at(day, "04:00", zone)) == closed(
        Reason.OUTSIDE_HOURS, at(day + timedelta(weeks=1), "02:30", zone)
    )


def test_range_entirely_inside_the_spring_forward_gap_does_not_happen() -> None:
    # 02:10-02:40 does not exist on 8 March 2026 in Tijuana: nothing opens that day.
    menu = area_menu(
        vertiente='hours: [{days: sun, open: "02:10", close: "02:40"}]', timezone="America/Tijuana"
    )
    next_week = at(date(2026, 3, 15), "02:10", TIJUANA)
    result = check(menu, at(date(2026, 3, 7), "12:00", TIJUANA))
    assert result == closed(Reason.WEEKEND, next_week)
    assert check(menu, utc("2026-03-08T10:00:00")) == closed(Reason.OUTSIDE_HOURS, next_week)
    assert check(menu, next_week) == OPEN


def test_closing_inside_the_spring_forward_gap() -> None:
    # Saturday 23:00 PST to Sunday 02:30, which does not exist: closes at 03:00 PDT.
    menu = area_menu(
        vertiente='hours: [{days: sat, open: "23:00", close: "02:30", overnight: true}]',
        timezone="America/Tijuana",
    )
    jump = utc("2026-03-08T10:00:00")
    assert check(menu, jump - US) == OPEN
    assert check(menu, jump) == closed(Reason.WEEKEND, at(date(2026, 3, 14), "23:00", TIJUANA))
    assert check(menu, at(date(2026, 3, 7), "23:00", TIJUANA)) == OPEN


def test_ambiguous_times_at_fall_back_mean_the_first_occurrence() -> None:
    # 1 November 2026 in Tijuana: 01:00-02:00 happens first in PDT, then in PST.
    menu = area_menu(
        vertiente='hours: [{days: sun, open: "01:00", close: "01:30"}]', timezone="America/Tijuana"
    )
    day = date(2026, 11, 1)
    # Ambiguous local times never compare equal across zones: compare in UTC.
    first_open = at(day, "01:00", TIJUANA, fold=0).astimezone(UTC)
    assert first_open == utc("2026-11-01T08:00:00")
    assert check(menu, at(day, "00:59:59", TIJUANA)) == closed(Reason.OUTSIDE_HOURS, first_open)
    assert check(menu, at(day, "01:15", TIJUANA, fold=0)) == OPEN
    assert check(menu, at(day, "01:29:59", TIJUANA, fold=0)) == OPEN
    # The range closed at the first 01:30 (08:30 UTC); the second 01:00-01:30 is closed.
    assert check(menu, utc("2026-11-01T08:30:00")) == closed(
        Reason.OUTSIDE_HOURS, at(date(2026, 11, 8), "01:00", TIJUANA)
    )
    assert check(menu, at(day, "01:15", TIJUANA, fold=1)) == closed(
        Reason.OUTSIDE_HOURS, at(date(2026, 11, 8), "01:00", TIJUANA)
    )


def test_contingency_window_across_the_2022_change() -> None:
    menu = emergency("contingencies: [{name: Frente frío, from: 2022-10-29, to: 2022-10-30}]")
    # The window runs from Saturday 00:00 CDT to Monday 00:00 CST: 49 hours.
    start, end = utc("2022-10-29T05:00:00"), utc("2022-10-31T06:00:00")
    assert check(menu, start - US) == closed(Reason.NO_ACTIVE_CONTINGENCY, start, offered=False)
    assert check(menu, start) == OPEN
    assert check(menu, end - US) == OPEN
    assert check(menu, end) == closed(Reason.NO_ACTIVE_CONTINGENCY, None, offered=False)


# --- properties -----------------------------------------------------------------

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONES = ("America/Mexico_City", "America/Tijuana", "America/New_York")
FIRST, LAST = datetime(2021, 1, 1), datetime(2028, 12, 31, 23, 59, 59)


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def weekly_rule(draw: st.DrawFn) -> dict[str, Any]:
    days = draw(st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=7, unique=True))
    # Half-hour steps hit DST gaps (02:00-03:00) and adjacent ranges often.
    open_step = draw(st.integers(0, 47))
    overnight = draw(st.booleans())
    close_step = draw(st.integers(0, open_step) if overnight else st.integers(open_step + 1, 48))
    return {
        "days": "[" + ", ".join(days) + "]",
        "open": clock(open_step * 30),
        "close": clock(close_step * 30),
        "overnight": overnight,
    }


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """UTC instants at which ``zone`` changes its offset between 2021 and 2028."""
    tz = ZoneInfo(zone)
    found: list[datetime] = []
    hour = FIRST.replace(tzinfo=UTC)
    while hour.year < 2029:
        nxt = hour + timedelta(hours=1)
        if hour.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            found.append(nxt)
        hour = nxt
    return tuple(found)


def instants(zone: str) -> st.SearchStrategy[datetime]:
    uniform = st.datetimes(min_value=FIRST, max_value=LAST, timezones=st.just(UTC))
    near_change = st.builds(
        lambda change, minutes, micros: change + timedelta(minutes=minutes, microseconds=micros),
        st.sampled_from(transitions(zone)),
        st.integers(-3 * 24 * 60, 3 * 24 * 60),
        st.sampled_from([0, 0, 0, 1, 999_999]),
    )
    return st.one_of(uniform, near_change)


OTHER_ZONES = (UTC, ZoneInfo("Asia/Kolkata"), ZoneInfo("Pacific/Kiritimati"), NEW_YORK)


def assert_consistent(schedule: Schedule, instant: datetime, area: str = AREA) -> Status:
    """Check the engine's invariants at ``instant`` and return its status."""
    result = schedule.status(area, instant)
    for zone in (schedule.tz, *OTHER_ZONES):
        assert schedule.status(area, instant.astimezone(zone)) == result
    if result.open:
        assert result.reason is Reason.OPEN
        assert result.next_open is None
        assert result.holiday is None
        assert result.offered  # nothing serves an option the menu does not announce
        return result
    assert result.reason is not Reason.OPEN
    assert (result.holiday is not None) == (result.reason is Reason.HOLIDAY)
    hidden = {Reason.DISABLED, Reason.OUTSIDE_SERVICE_PERIOD, Reason.NO_ACTIVE_CONTINGENCY}
    assert result.offered == (result.reason not in hidden)
    nxt = result.next_open
    if nxt is None:
        return result
    assert nxt.utcoffset() == timedelta(0)
    assert nxt > instant
    assert schedule.status(area, nxt).open
    before = schedule.status(area, nxt - US)
    assert not before.open
    assert before.next_open == nxt
    option = schedule.options[area]
    gap = nxt - instant
    for fraction in (0.001, 0.25, 0.5, 0.75, 0.999):
        point = instant + gap * fraction
        assert not schedule.is_open(option, point), point
    midway = schedule.status(area, instant + gap / 2)
    assert midway.next_open == nxt
    return result


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone=st.sampled_from(ZONES),
    rules=st.lists(weekly_rule(), min_size=1, max_size=3),
    official=st.booleans(),
    data=st.data(),
)
def test_property_random_weekly_hours(
    zone: str, rules: list[dict[str, Any]], official: bool, data: st.DataObject
) -> None:
    menu = area_menu(
        vertiente=hours_yaml(rules),
        calendar=f"official_holidays: {str(official).lower()}",
        timezone=zone,
    )
    schedule = Schedule(menu)
    instant = data.draw(instants(zone), label="instant")
    result = assert_consistent(schedule, instant)
    # Weekly hours recur every week: a closed option always opens again.
    assert result.open or result.next_open is not None


@dataclass(frozen=True)
class Rule:
    days: frozenset[int]
    open: int  # minutes
    end: int  # minutes after the start day's midnight


def oracle_rules(rules: Sequence[dict[str, Any]]) -> list[Rule]:
    def minutes(text: str) -> int:
        hours, mins = text.split(":")
        return int(hours) * 60 + int(mins)

    parsed: list[Rule] = []
    for rule in rules:
        names = rule["days"].strip("[]").split(", ")
        close = minutes(rule["close"]) + (24 * 60 if rule["overnight"] else 0)
        parsed.append(
            Rule(frozenset(DAY_NAMES.index(n) for n in names), minutes(rule["open"]), close)
        )
    return parsed


def oracle_ranges(rules: list[Rule], first: date, days: int) -> Iterator[tuple[datetime, datetime]]:
    """Local wall-clock ranges of ``days`` days from ``first``, skipping rest days."""
    rest = holidays.country_holidays("MX")
    for offset in range(days):
        day = first + timedelta(days=offset)
        if day in rest:
            continue
        midnight = datetime.combine(day, time())
        for rule in rules:
            if day.weekday() in rule.days:
                yield (
                    midnight + timedelta(minutes=rule.open),
                    midnight + timedelta(minutes=rule.end),
                )


@settings(max_examples=200, deadline=None)
@given(
    rules=st.lists(weekly_rule(), min_size=1, max_size=3),
    instant=st.datetimes(
        min_value=datetime(2023, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(MX)
    ),
)
def test_property_matches_a_wall_clock_oracle(
    rules: list[dict[str, Any]], instant: datetime
) -> None:
    """Mexico City has no DST since 2023, so plain wall-clock arithmetic is exact."""
    parsed = oracle_rules(rules)
    menu = area_menu(vertiente=hours_yaml(rules))
    result = Schedule(menu).status(AREA, instant)
    local = instant.replace(tzinfo=None)
    today = local.date()
    is_open = any(s <= local < e for s, e in oracle_ranges(parsed, today - timedelta(days=1), 2))
    assert result.open == is_open
    if is_open:
        return
    starts = [s for s, _ in oracle_ranges(parsed, today - timedelta(days=1), 30) if s > local]
    assert result.next_open == min(starts).replace(tzinfo=MX)
    rest = holidays.country_holidays("MX", language="es")
    if today in rest:
        assert result.reason is Reason.HOLIDAY
        assert result.holiday == rest[today]
    elif today.weekday() >= 5 and not any(today.weekday() in r.days for r in parsed):
        assert result.reason is Reason.WEEKEND
    else:
        assert result.reason is Reason.OUTSIDE_HOURS


@st.composite
def option_yaml(draw: st.DrawFn) -> tuple[str, list[datetime]]:
    """Area YAML with a random period and windows, plus interesting instants near them."""
    lines: list[str] = []
    anchors: list[datetime] = []
    base = date(2026, 1, 1)
    if draw(st.booleans()):
        starts = base + timedelta(days=draw(st.integers(0, 300)))
        ends = starts + timedelta(days=draw(st.integers(0, 60)))
        lines.append(f"period: {{from: {starts}, to: {ends}}}")
        anchors += [datetime.combine(starts, time()), datetime.combine(ends, time(23, 59))]
    if draw(st.booleans()):
        lines.append("requires_contingency: true")
    if draw(st.booleans()):
        lines.append("enabled: false")
    count = draw(st.integers(0, 2))
    if count:
        lines.append("contingencies:")
    for i in range(count):
        start = datetime.combine(base, time()) + timedelta(
            minutes=30 * draw(st.integers(0, 17_000))
        )
        end = start + timedelta(minutes=30 * draw(st.integers(1, 2_000)))
        if draw(st.booleans()):  # whole days
            start_text, end_text = start.date().isoformat(), end.date().isoformat()
            start, end = (
                datetime.combine(start.date(), time()),
                datetime.combine(end.date(), time()),
            )
            end += timedelta(days=1)
        else:
            start_text, end_text = f'"{start.isoformat()}"', f'"{end.isoformat()}"'
        lines += [f"  - name: Ventana {i}", f"    from: {start_text}", f"    to: {end_text}"]
        if draw(st.booleans()):
            lines.append(f"    holidays_close: {str(draw(st.booleans())).lower()}")
        if draw(st.booleans()):
            rules = draw(st.lists(weekly_rule(), min_size=1, max_size=2))
            lines += ["    " + line for line in hours_yaml(rules).splitlines()]
        anchors += [start, end]
    return "\n".join(lines) + "\n", anchors


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone=st.sampled_from(ZONES),
    rules=st.lists(weekly_rule(), min_size=1, max_size=2),
    option=option_yaml(),
    data=st.data(),
)
def test_property_periods_and_windows(
    zone: str, rules: list[dict[str, Any]], option: tuple[str, list[datetime]], data: st.DataObject
) -> None:
    area_yaml, anchors = option
    menu = area_menu(area_yaml, vertiente=hours_yaml(rules), timezone=zone)
    schedule = Schedule(menu)
    tz = ZoneInfo(zone)
    near_anchor: bool = bool(anchors) and data.draw(st.booleans(), label="near an anchor")
    if near_anchor:
        anchor = data.draw(st.sampled_from(anchors), label="anchor")
        minutes = data.draw(st.integers(-2 * 24 * 60, 2 * 24 * 60), label="minutes")
        instant = (anchor + timedelta(minutes=minutes)).replace(tzinfo=tz)
    else:
        instant = data.draw(
            st.datetimes(
                min_value=datetime(2025, 6, 1),
                max_value=datetime(2027, 12, 31),
                timezones=st.just(UTC),
            ),
            label="instant",
        )
    assert_consistent(schedule, instant)
