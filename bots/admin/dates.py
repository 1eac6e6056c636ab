"""Date ranges typed into the admin site's forms (UTC days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DAY = 86_400


@dataclass(frozen=True, slots=True)
class Range:
    """The UTC days `first` to `last`, both included."""

    first: date
    last: date

    @property
    def start(self) -> float:
        """Midnight UTC at the start of the first day."""
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC).timestamp()

    @property
    def end(self) -> float:
        """Midnight UTC after the last day."""
        return self.start + ((self.last - self.first).days + 1) * DAY

    @property
    def days(self) -> int:
        """How many days."""
        return (self.last - self.first).days + 1


def last_days(days: int, now: float) -> Range:
    """The `days` UTC days up to and including today."""
    today = datetime.fromtimestamp(now, UTC).date()
    return Range(today - timedelta(days=days - 1), today)


def parse_range(first: str, last: str, now: float, *, default_days: int = 30) -> tuple[Range, str]:
    """The range typed (YYYY-MM-DD each, empty for the default), and an error to show ('' when
    fine); a bad range falls back to the last `default_days` days."""
    fallback = last_days(default_days, now)
    try:
        start = date.fromisoformat(first) if first else fallback.first
        end = date.fromisoformat(last) if last else fallback.last
    except ValueError:
        return fallback, "Dates are YYYY-MM-DD; showing the last 30 days."
    if end < start:
        return fallback, "The range ends before it starts; showing the last 30 days."
    if (end - start).days > 3660:
        return fallback, "Ranges are at most ten years; showing the last 30 days."
    return Range(start, end), ""
