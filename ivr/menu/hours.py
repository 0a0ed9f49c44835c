"""The hours engine: is an option open at an instant, why not, and when does it open.

Everything derives from one function, :meth:`Schedule.intervals`, which lists
the instants (in UTC) during which an option serves on one local date. Status
and next opening are both read from those intervals, so they cannot disagree.

Rules, in the words of the program document:

* Regular service follows the option's weekly hours (the area's own, or its
  vertiente's; Monday to Friday 08:00-20:00 by default), only on dates inside
  its service period, and never on official rest days or dated closures,
  unless a dated opening says otherwise.
* A contingency window adds service with its own hours (24/7 by default)
  between its start and end instants, on rest days too unless it says
  ``holidays_close``. Options that ``require_contingency`` (Situaciones
  emergentes) serve only through their windows.
* An option is *offered* (announced and accepted in the menu) when it is
  enabled and inside its service period or inside a window in force. An
  offered option may still be closed now: the caller is told when it opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from ivr.menu.calendar import BusinessCalendar
from ivr.menu.model import DAY_SECONDS, Area, Contingency, HoursRule, Menu, Period, TimeRange

Interval = tuple[datetime, datetime]  # [start, end) in UTC

# How far ahead to look for an opening, per source of service (regular hours or one window).
SEARCH_DAYS = 800
# Memoised (option, local date) interval lists; ~10 options x 2 years fits easily.
INTERVAL_CACHE_SIZE = 16_384


class Reason(StrEnum):
    OPEN = "open"
    OUTSIDE_HOURS = "outside_hours"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    OUTSIDE_SERVICE_PERIOD = "outside_service_period"
    NO_ACTIVE_CONTINGENCY = "no_active_contingency"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Status:
    open: bool
    reason: Reason
    next_open: datetime | None
    """First instant after now at which the option is open (None when open, or never again)."""
    offered: bool
    """Whether the menu announces and accepts the option now."""
    holiday: str | None = None
    """Name of the rest day or closure when ``reason`` is HOLIDAY."""


@dataclass(frozen=True)
class Option:
    """An area with everything it inherits from its vertiente resolved."""

    vertiente: str
    area: str
    enabled: bool
    hours: tuple[HoursRule, ...]
    period: Period | None
    requires_contingency: bool
    contingencies: tuple[Contingency, ...]


def resolve_option(menu: Menu, vertiente_key: str, area_key: str) -> Option:
    vertiente = menu.vertientes[vertiente_key]
    area: Area = vertiente.areas[area_key]
    requires = area.requires_contingency
    return Option(
        vertiente=vertiente_key,
        area=area_key,
        enabled=vertiente.enabled and area.enabled,
        hours=area.hours if area.hours is not None else vertiente.hours,
        period=area.period,
        requires_contingency=vertiente.requires_contingency if requires is None else requires,
        contingencies=vertiente.contingencies + area.contingencies,
    )


def _ensure_aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant {instant.isoformat()} has no time zone; give a UTC offset")
    return instant.astimezone(UTC)


class Schedule:
    """Hours of every option of one menu. Pure: the instant is always a parameter."""

    def __init__(self, menu: Menu) -> None:
        self.menu = menu
        self.tz: ZoneInfo = menu.line.tz
        self.calendar = BusinessCalendar(menu.calendar)
        self.options: dict[str, Option] = {
            akey: resolve_option(menu, vkey, akey)
            for vkey, vertiente in menu.vertientes.items()
            for akey in vertiente.areas
        }
        self._windows: dict[int, tuple[datetime, datetime]] = {}
        self._intervals: dict[tuple[int, date], tuple[Option, tuple[Interval, ...]]] = {}

    # --- time helpers --------------------------------------------------------

    def local_date(self, instant: datetime) -> date:
        return _ensure_aware(instant).astimezone(self.tz).date()

    def wall(self, day: date, seconds: int) -> datetime:
        """The first UTC instant whose local wall time is at least ``day`` + ``seconds``.

        Ambiguous wall times (clocks going back) give the earlier instant;
        wall times skipped by clocks going forward give the end of the gap.
        """
        naive = datetime.combine(day, time()) + timedelta(seconds=seconds)
        early = naive.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        if early.astimezone(self.tz).replace(tzinfo=None) == naive:
            return early
        # In a gap: fold=0 lands after it, fold=1 before it; bisect for the transition.
        low = naive.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        high = early
        low, high = min(low, high), max(low, high)
        while high - low > timedelta(microseconds=1):
            mid = low + (high - low) / 2
            if mid.astimezone(self.tz).replace(tzinfo=None) >= naive:
                high = mid
            else:
                low = mid
        return high

    def _window(self, window: Contingency) -> tuple[datetime, datetime]:
        cached = self._windows.get(id(window))
        if cached is None:
            starts, ends = window.starts, window.ends
            if starts.tzinfo is None:
                starts = self.wall(starts.date(), _seconds(starts))
                ends = self.wall(ends.date(), _seconds(ends))
            cached = (starts.astimezone(UTC), ends.astimezone(UTC))
            self._windows[id(window)] = cached
        return cached

    # --- intervals -----------------------------------------------------------

    def _ranges(self, day: date, ranges: tuple[TimeRange, ...]) -> list[Interval]:
        intervals = [(self.wall(day, r.open), self.wall(day, r.end_offset)) for r in ranges]
        # A range wholly inside a gap (clocks going forward) does not happen that day.
        return [(start, end) for start, end in intervals if start < end]

    def _weekly(self, day: date, rules: tuple[HoursRule, ...]) -> tuple[TimeRange, ...]:
        weekday = day.weekday()
        return tuple(rule for rule in rules if weekday in rule.days)

    def regular_intervals(self, option: Option, day: date) -> list[Interval]:
        if not option.enabled or option.requires_contingency:
            return []
        if option.period is not None and day not in option.period:
            return []
        rule = self.calendar.day(day)
        if rule.closed_by:
            return []
        ranges = rule.hours if rule.hours is not None else self._weekly(day, option.hours)
        intervals = self._ranges(day, ranges)
        if option.period is not None:
            end = self.wall(option.period.ends + timedelta(days=1), 0)
            intervals = [(s, min(e, end)) for s, e in intervals if s < end]
        return intervals

    def window_intervals(self, option: Option, window: Contingency, day: date) -> list[Interval]:
        if not option.enabled:
            return []
        starts, ends = self._window(window)
        if ends <= self.wall(day, 0) or starts >= self.wall(day + timedelta(days=2), 0):
            return []
        if window.holidays_close and self.calendar.day(day).closed_by:
            return []
        intervals = self._ranges(day, self._weekly(day, window.hours))
        return [(max(s, starts), min(e, ends)) for s, e in intervals if s < ends and e > starts]

    def intervals(self, option: Option, day: date) -> tuple[Interval, ...]:
        """Every [start, end) during which the option serves, for ranges starting on ``day``.

        Pure in (option, day) for a given menu, so results are memoised; the
        entry holds the option itself, so its id cannot be reused while cached.
        """
        key = (id(option), day)
        cached = self._intervals.get(key)
        if cached is not None and cached[0] is option:
            return cached[1]
        found = self.regular_intervals(option, day)
        for window in option.contingencies:
            found.extend(self.window_intervals(option, window, day))
        result = tuple(sorted(found))
        if len(self._intervals) >= INTERVAL_CACHE_SIZE:
            self._intervals.clear()
        self._intervals[key] = (option, result)
        return result

    # --- questions -----------------------------------------------------------

    def is_open(self, option: Option, instant: datetime) -> bool:
        now = _ensure_aware(instant)
        day = now.astimezone(self.tz).date()
        return any(
            start <= now < end
            for d in (day - timedelta(days=1), day)
            for start, end in self.intervals(option, d)
        )

    def active_windows(self, option: Option, instant: datetime) -> list[Contingency]:
        """Contingency windows of the option in force at ``instant``."""
        now = _ensure_aware(instant)
        return [w for w in option.contingencies if self._window(w)[0] <= now < self._window(w)[1]]

    def is_offered(self, option: Option, instant: datetime) -> bool:
        if not option.enabled:
            return False
        if self.active_windows(option, instant):
            return True
        if option.requires_contingency:
            return False
        return option.period is None or self.local_date(instant) in option.period

    def next_open(self, option: Option, instant: datetime) -> datetime | None:
        """First instant after ``instant`` at which the option is open, in UTC.

        UTC on purpose: arithmetic on datetimes in a zone with DST is wall-clock
        arithmetic in Python, so presentation converts, the engine does not.
        Meant for an option closed at ``instant``; None when it never opens again.
        """
        now = _ensure_aware(instant)
        today = now.astimezone(self.tz).date()
        sources: list[tuple[date, date | None]] = []
        if option.enabled and not option.requires_contingency:
            first = today - timedelta(days=1)
            last = None
            if option.period is not None:
                first = max(first, option.period.starts)
                last = option.period.ends
            sources.append((first, last))
        if option.enabled:
            for window in option.contingencies:
                starts, ends = self._window(window)
                if ends > now:
                    start_day = starts.astimezone(self.tz).date() - timedelta(days=1)
                    sources.append(
                        (max(today - timedelta(days=1), start_day), ends.astimezone(self.tz).date())
                    )
        best: datetime | None = None
        for first, last in sources:
            found = self._first_start_after(option, now, first, last)
            if found is not None and (best is None or found < best):
                best = found
        return best

    def _first_start_after(
        self, option: Option, now: datetime, first: date, last: date | None
    ) -> datetime | None:
        best: datetime | None = None
        day = first
        for _ in range(SEARCH_DAYS):
            if last is not None and day > last:
                break
            starts = [s for s, _ in self.intervals(option, day) if s > now]
            if starts:
                candidate = min(starts)
                if best is not None:  # the day after the first hit has been checked too
                    return min(best, candidate)
                best = candidate
            elif best is not None:
                return best
            day += timedelta(days=1)
        return best

    def status(self, option: Option | str, instant: datetime) -> Status:
        """Open or closed at ``instant``, why, and the next opening."""
        opt = self.options[option] if isinstance(option, str) else option
        now = _ensure_aware(instant)
        offered = self.is_offered(opt, now)
        if self.is_open(opt, now):
            return Status(open=True, reason=Reason.OPEN, next_open=None, offered=offered)
        reason, holiday = self._closed_reason(opt, now)
        return Status(
            open=False,
            reason=reason,
            next_open=self.next_open(opt, now),
            offered=offered,
            holiday=holiday,
        )

    def _closed_reason(self, option: Option, now: datetime) -> tuple[Reason, str | None]:
        if not option.enabled:
            return Reason.DISABLED, None
        day = now.astimezone(self.tz).date()
        active = self.active_windows(option, now)
        rule = self.calendar.day(day)
        if active:
            if rule.closed_by and all(w.holidays_close for w in active):
                return Reason.HOLIDAY, rule.closed_by
            # The option's regular hours still count on a day they apply to.
            has_hours_today = any(self._weekly(day, w.hours) for w in active) or bool(
                self.regular_intervals(option, day)
            )
            return self._hours_reason(day, has_hours_today), None
        if option.requires_contingency:
            return Reason.NO_ACTIVE_CONTINGENCY, None
        if option.period is not None and day not in option.period:
            return Reason.OUTSIDE_SERVICE_PERIOD, None
        if rule.closed_by:
            return Reason.HOLIDAY, rule.closed_by
        ranges = rule.hours if rule.hours is not None else self._weekly(day, option.hours)
        return self._hours_reason(day, bool(ranges)), None

    @staticmethod
    def _hours_reason(day: date, has_hours_today: bool) -> Reason:
        if day.weekday() >= 5 and not has_hours_today:
            return Reason.WEEKEND
        return Reason.OUTSIDE_HOURS


def _seconds(moment: datetime) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def status(menu: Menu, area: str, instant: datetime) -> Status:
    """Convenience: the status of one area of ``menu`` (builds a Schedule each call)."""
    return Schedule(menu).status(area, instant)


__all__ = ["DAY_SECONDS", "Option", "Reason", "Schedule", "Status", "status"]
