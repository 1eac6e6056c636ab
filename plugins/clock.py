"""Dates and times: now in a time zone, date arithmetic and differences."""

from __future__ import annotations

import calendar
import difflib
from datetime import UTC, datetime, timedelta
from datetime import date as Date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from core.plugin import ToolError, tool


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "America"
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ToolError(f"unknown time zone {name[:64]!r}.{hint}") from None


def _parse(value: str) -> Date:
    try:
        return Date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise ToolError(f"{value!r} is not a date in YYYY-MM-DD form") from None


def current_time(timezone: str, now: datetime | None = None) -> str:
    """The time in `timezone` (a clock can be passed for tests)."""
    moment = (now or datetime.now(UTC)).astimezone(_zone(timezone))
    return f"{moment.isoformat(timespec='seconds')} ({moment:%A}, {timezone})"


@tool(name="now")
def now(timezone: str = "UTC") -> str:
    """The current date and time in an IANA time zone.

    Args:
        timezone: an IANA zone such as Europe/Paris or America/New_York
    """
    return current_time(timezone)


@tool
def date_add(date: str, days: int = 0, weeks: int = 0, months: int = 0, years: int = 0) -> str:
    """Add (or with negative numbers subtract) days, weeks, months and years to a date.

    Args:
        date: the starting date, YYYY-MM-DD
        days: days to add
        weeks: weeks to add
        months: months to add (the day is clamped to the month's last day)
        years: years to add
    """
    start = _parse(date)
    month_index = start.month - 1 + months + 12 * years
    year, month = start.year + month_index // 12, month_index % 12 + 1
    if not 1 <= year <= 9999:
        raise ToolError("the result is outside the supported years 1-9999")
    day = min(start.day, calendar.monthrange(year, month)[1])
    result = Date(year, month, day) + timedelta(days=days, weeks=weeks)
    return f"{result.isoformat()} ({result:%A})"


@tool
def date_diff(start: str, end: str) -> str:
    """The number of days from one date to another.

    Args:
        start: the first date, YYYY-MM-DD
        end: the second date, YYYY-MM-DD
    """
    delta = (_parse(end) - _parse(start)).days
    weeks, days = divmod(abs(delta), 7)
    sign = "-" if delta < 0 else ""
    return f"{delta} days ({sign}{weeks} weeks and {days} days)"
