"""Local calendar arithmetic in a scheme's timezone: days, weeks, months and periods.

Instants are timezone-aware `datetime`s. Every day boundary is local midnight in the scheme's
timezone, computed with zoneinfo, so daylight-saving days are 23 or 25 hours long.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from perkflow.rules.models import duration_parts as _parse_duration

# A scheme has a handful of durations; parsing one is a regular expression, so remember them.
duration_parts = lru_cache(maxsize=1024)(_parse_duration)

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day (a DST gap at midnight moves it to the first valid time)."""
    naive = datetime.combine(day, time())
    aware = naive.replace(tzinfo=tz)
    # A non-existent local midnight (DST gap) round-trips to a later wall time; take that instant.
    return aware.astimezone(tz)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, _days_in_month(year, month)))


def _days_in_month(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def add_duration_to_day(day: date, duration: str) -> date:
    """A local date plus a day-based duration (d, w, mo, y)."""
    n, unit = duration_parts(duration)
    if unit == "d":
        return day + timedelta(days=n)
    if unit == "w":
        return day + timedelta(weeks=n)
    if unit == "mo":
        return add_months(day, n)
    if unit == "y":
        return add_months(day, 12 * n)
    raise ValueError(f"{duration} is not a whole number of days")


def add_duration(instant: datetime, duration: str, tz: ZoneInfo) -> datetime:
    """An instant plus a duration: min and h are exact elapsed time, longer units are calendar
    steps on the local wall clock (so 1d after 10:00 is 10:00 the next day, across DST too)."""
    n, unit = duration_parts(duration)
    if unit == "min":
        return instant + timedelta(minutes=n)
    if unit == "h":
        return instant + timedelta(hours=n)
    local = instant.astimezone(tz)
    day = add_duration_to_day(local.date(), duration)
    return datetime.combine(day, local.timetz().replace(tzinfo=None)).replace(tzinfo=tz).astimezone(tz)


def subtract_duration(instant: datetime, duration: str, tz: ZoneInfo) -> datetime:
    """An instant less a duration, the mirror of `add_duration` (calendar steps on the local wall
    clock for days and longer; 31 Mar less 1mo is 28/29 Feb)."""
    n, unit = duration_parts(duration)
    if unit == "min":
        return instant - timedelta(minutes=n)
    if unit == "h":
        return instant - timedelta(hours=n)
    local = instant.astimezone(tz)
    days = {"d": n, "w": 7 * n}.get(unit)
    day = local.date() - timedelta(days=days) if days is not None else add_months(local.date(), -n * (12 if unit == "y" else 1))
    return datetime.combine(day, local.timetz().replace(tzinfo=None)).replace(tzinfo=tz).astimezone(tz)


def birthday_on(year: int, month: int, day: int) -> date:
    """The date of a (month, day) birthday in a year: 29 Feb falls on 28 Feb in other years."""
    if month == 2 and day == 29 and _days_in_month(year, 2) == 28:
        return date(year, 2, 28)
    return date(year, month, day)


def period_start(day: date, period: str) -> date:
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if period == "year":
        return date(day.year, 1, 1)
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "day":
        return day
    raise ValueError(period)


def period_end_exclusive(day: date, period: str, periods_after: int = 0) -> date:
    """The first day after the period containing `day`, `periods_after` periods later."""
    start = period_start(day, period)
    step = {"month": 1, "quarter": 3, "year": 12}[period]
    return add_months(start, step * (1 + periods_after))


def period_key(day: date, period: str) -> str:
    """A label of the period containing `day`: 2026-11-23, 2026-W48, 2026-11, 2026-Q4, 2026, or ''
    for lifetime."""
    if period == "lifetime":
        return ""
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    if period == "year":
        return str(day.year)
    raise ValueError(period)


def window_days(duration: str) -> int:
    """How many local days a counter window spans, today included (30d = today and the 29 before).
    Month and year windows count the days of the calendar span ending today, so they are taken as
    30 and 365 days per unit: stated in docs/semantics.md."""
    n, unit = duration_parts(duration)
    return n * {"d": 1, "w": 7, "mo": 30, "y": 365}[unit]


def duration_delta(duration: str) -> timedelta:
    """A duration as elapsed time; months and years as 30 and 365 days (for limits, not calendars)."""
    n, unit = duration_parts(duration)
    if unit == "min":
        return timedelta(minutes=n)
    if unit == "h":
        return timedelta(hours=n)
    return timedelta(days=window_days(duration))
