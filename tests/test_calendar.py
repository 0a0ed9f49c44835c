"""Which days the line closes: official rest days, dated closures and openings."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from menus import area_menu

from ivr.menu.calendar import BusinessCalendar, DayRule
from ivr.menu.loader import MenuError
from ivr.menu.model import Calendar, TimeRange


def calendar(**fields: Any) -> BusinessCalendar:
    return BusinessCalendar(Calendar.model_validate(fields))


def nth_monday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(0 - first.weekday()) % 7, weeks=n - 1)


def days_of(year: int) -> list[date]:
    day, found = date(year, 1, 1), []
    while day.year == year:
        found.append(day)
        day += timedelta(days=1)
    return found


def test_official_rest_days_of_2024_in_spanish() -> None:
    cal = calendar()
    found = {day: cal.holiday_name(day) for day in days_of(2024) if cal.holiday_name(day)}
    assert found == {
        date(2024, 1, 1): "Año Nuevo",
        date(2024, 2, 5): "Día de la Constitución",
        date(2024, 3, 18): "Natalicio de Benito Juárez",
        date(2024, 5, 1): "Día del Trabajo",
        date(2024, 9, 16): "Día de la Independencia",
        date(2024, 10, 1): "Transmisión del Poder Ejecutivo Federal",
        date(2024, 11, 18): "Día de la Revolución",
        date(2024, 12, 25): "Navidad",
    }
    for day, name in found.items():
        assert cal.day(day) == DayRule(closed_by=name)


@pytest.mark.parametrize("year", range(2022, 2035))
def test_movable_rest_days_are_computed_for_every_year(year: int) -> None:
    cal = calendar()
    assert cal.holiday_name(nth_monday(year, 2, 1)) == "Día de la Constitución"
    assert cal.holiday_name(nth_monday(year, 3, 3)) == "Natalicio de Benito Juárez"
    assert cal.holiday_name(nth_monday(year, 11, 3)) == "Día de la Revolución"
    # The historical dates are ordinary days unless they fall on that Monday.
    for historical, observed in [
        (date(year, 2, 5), nth_monday(year, 2, 1)),
        (date(year, 3, 21), nth_monday(year, 3, 3)),
        (date(year, 11, 20), nth_monday(year, 11, 3)),
    ]:
        if historical != observed:
            assert cal.holiday_name(historical) is None
            assert cal.day(historical) == DayRule()
    for fixed, name in [
        (date(year, 1, 1), "Año Nuevo"),
        (date(year, 5, 1), "Día del Trabajo"),
        (date(year, 9, 16), "Día de la Independencia"),
        (date(year, 12, 25), "Navidad"),
    ]:
        assert cal.holiday_name(fixed) == name


@pytest.mark.parametrize(("year", "expected"), [(y, y in {2024, 2030}) for y in range(2023, 2032)])
def test_change_of_federal_government_every_six_years(year: int, expected: bool) -> None:
    name = calendar().holiday_name(date(year, 10, 1))
    assert name == ("Transmisión del Poder Ejecutivo Federal" if expected else None)


def test_ordinary_day() -> None:
    cal = calendar()
    assert cal.holiday_name(date(2025, 6, 4)) is None
    assert cal.day(date(2025, 6, 4)) == DayRule()
    assert DayRule().closed_by is None
    assert DayRule().hours is None


def test_official_holidays_off() -> None:
    cal = calendar(official_holidays=False)
    assert all(cal.holiday_name(day) is None for day in days_of(2026))
    assert all(cal.day(day) == DayRule() for day in days_of(2026))


def test_closure_of_one_day() -> None:
    cal = calendar(closures=[{"from": "2025-06-04", "name": "Inventario"}])
    assert cal.day(date(2025, 6, 3)) == DayRule()
    assert cal.day(date(2025, 6, 4)) == DayRule(closed_by="Inventario")
    assert cal.day(date(2025, 6, 5)) == DayRule()
    # A closure is not an official rest day.
    assert cal.holiday_name(date(2025, 6, 4)) is None


def test_closure_range_includes_both_ends_across_a_year_and_a_leap_day() -> None:
    cal = calendar(
        official_holidays=False,
        closures=[
            {"from": "2027-12-30", "to": "2028-01-02", "name": "Fin de año"},
            {"from": "2028-02-28", "to": "2028-03-01", "name": "Mantenimiento"},
        ],
    )
    closed = [d for d in [*days_of(2027), *days_of(2028)] if cal.day(d).closed_by]
    assert closed == [
        date(2027, 12, 30),
        date(2027, 12, 31),
        date(2028, 1, 1),
        date(2028, 1, 2),
        date(2028, 2, 28),
        date(2028, 2, 29),
        date(2028, 3, 1),
    ]
    assert cal.day(date(2028, 2, 29)).closed_by == "Mantenimiento"


def test_overlapping_closures_keep_the_first_name() -> None:
    cal = calendar(
        closures=[
            {"from": "2025-06-02", "to": "2025-06-04", "name": "Primera"},
            {"from": "2025-06-04", "to": "2025-06-06", "name": "Segunda"},
        ]
    )
    names = [cal.day(date(2025, 6, d)).closed_by for d in range(1, 8)]
    assert names == [None, "Primera", "Primera", "Primera", "Segunda", "Segunda", None]


def test_closure_name_takes_precedence_over_the_official_name() -> None:
    cal = calendar(closures=[{"from": "2025-09-16", "name": "Fiestas patrias"}])
    assert cal.day(date(2025, 9, 16)) == DayRule(closed_by="Fiestas patrias")
    assert cal.holiday_name(date(2025, 9, 16)) == "Día de la Independencia"


def test_opening_cancels_an_official_rest_day() -> None:
    cal = calendar(openings=[{"date": "2025-09-16", "name": "Guardia"}])
    assert cal.day(date(2025, 9, 16)) == DayRule()
    # holiday_name still tells what the day is.
    assert cal.holiday_name(date(2025, 9, 16)) == "Día de la Independencia"
    assert cal.day(date(2025, 12, 25)) == DayRule(closed_by="Navidad")


def test_opening_cancels_a_closure_and_brings_its_own_hours() -> None:
    cal = calendar(
        closures=[{"from": "2025-06-02", "to": "2025-06-06", "name": "Vacaciones"}],
        openings=[
            {
                "date": "2025-06-04",
                "name": "Jornada de pagos",
                "hours": [{"open": "09:00", "close": "14:00"}, {"open": "16:00", "close": "18:30"}],
            }
        ],
    )
    rule = cal.day(date(2025, 6, 4))
    assert rule.closed_by is None
    assert rule.hours is not None
    assert [(r.open, r.close, r.overnight) for r in rule.hours] == [
        (9 * 3600, 14 * 3600, False),
        (16 * 3600, 18 * 3600 + 1800, False),
    ]
    assert all(isinstance(r, TimeRange) for r in rule.hours)
    assert cal.day(date(2025, 6, 3)) == DayRule(closed_by="Vacaciones")
    assert cal.day(date(2025, 6, 5)) == DayRule(closed_by="Vacaciones")


def test_calendar_section_from_yaml() -> None:
    menu = area_menu(
        calendar="""
        official_holidays: true
        closures:
          - from: 2027-03-25
            to: 2027-03-26
            name: Jueves y Viernes Santo
        openings:
          - {date: 2027-02-01, name: Jornada especial, hours: [{open: "09:00", close: "14:00"}]}
        """
    )
    cal = BusinessCalendar(menu.calendar)
    assert cal.day(date(2027, 3, 24)) == DayRule()
    assert cal.day(date(2027, 3, 25)) == DayRule(closed_by="Jueves y Viernes Santo")
    assert cal.day(date(2027, 3, 26)) == DayRule(closed_by="Jueves y Viernes Santo")
    feb1 = cal.day(date(2027, 2, 1))  # Día de la Constitución, opened
    assert feb1.closed_by is None
    assert feb1.hours is not None
    assert [(r.open, r.close) for r in feb1.hours] == [(9 * 3600, 14 * 3600)]


def test_default_calendar_closes_on_official_rest_days() -> None:
    cal = BusinessCalendar(area_menu().calendar)
    assert cal.day(date(2026, 9, 16)) == DayRule(closed_by="Día de la Independencia")


def test_closure_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(
        MenuError, match="closure ends on 2025-06-01 before it starts on 2025-06-04"
    ):
        area_menu(calendar="closures: [{from: 2025-06-04, to: 2025-06-01, name: Al revés}]")
