"""Which days the line closes: Mexico's official rest days plus the menu's own dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import holidays

from ivr.menu.model import Calendar, TimeRange


@dataclass(frozen=True)
class DayRule:
    """What the calendar says about one day.

    ``closed_by`` names the holiday or closure that shuts the day, or is None.
    ``hours`` replaces the weekly hours when an opening gives hours of its own.
    """

    closed_by: str | None = None
    hours: tuple[TimeRange, ...] | None = None


_ORDINARY = DayRule()


class BusinessCalendar:
    """Answers 'is this local date a working day?' for a menu's calendar section."""

    def __init__(self, calendar: Calendar) -> None:
        # Spanish names: they appear in records and in what admins read.
        self._official = (
            holidays.country_holidays("MX", language="es") if calendar.official_holidays else None
        )
        self._closures: dict[date, str] = {}
        for closure in calendar.closures:
            day, last = closure.starts, closure.ends or closure.starts
            while day <= last:
                self._closures.setdefault(day, closure.name)
                day += timedelta(days=1)
        self._openings = {opening.day: opening for opening in calendar.openings}

    def holiday_name(self, day: date) -> str | None:
        """The official rest day on ``day``, if any (regardless of openings)."""
        if self._official is None:
            return None
        name = self._official.get(day)
        return str(name) if name else None

    def day(self, day: date) -> DayRule:
        opening = self._openings.get(day)
        if opening is not None:
            return DayRule(hours=opening.hours)
        closed_by = self._closures.get(day) or self.holiday_name(day)
        return DayRule(closed_by=closed_by) if closed_by else _ORDINARY
