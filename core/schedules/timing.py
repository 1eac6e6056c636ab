"""When a schedule runs: cron expressions (croniter does the time maths), the few phrases people
write instead (`every monday 9:00`, `every 2 hours`), IANA time zones and daylight saving.

Fire times are wall-clock times in the schedule's zone. Where the clocks go forward, a time that
does not exist that day runs at the first minute after the change (02:30 becomes 03:00). Where
they go back, a wall time that happens twice runs once, at its first occurrence, unless the
schedule runs every hour (its hour field is `*`): then each elapsed hour runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

CRON_FIELDS = "minute hour day-of-month month day-of-week"
ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
DAYS = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
PHRASES = (
    "every day HH:MM, every weekday HH:MM, every monday HH:MM (any day, or several: "
    "every mon,thu 9:00), every hour, every N hours, every N minutes"
)
_TIME = r"(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?"
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*"
_DAY_LIST = rf"({_DAY}(?:\s*(?:,|and)\s*{_DAY})*)"
_EVERY_DAY = re.compile(rf"^(?:every\s+day|daily|every\s+morning)\s+{_TIME}$")
_WEEKDAYS = re.compile(rf"^(?:every\s+weekday|weekdays|every\s+workday)\s+{_TIME}$")
_ON_DAYS = re.compile(rf"^(?:every|weekly(?:\s+on)?)\s+{_DAY_LIST}s?\s+{_TIME}$")
_HOURS = re.compile(r"^(?:every\s+hour|hourly|every\s+(\d{1,2})\s+hours?)$")
_MINUTES = re.compile(r"^every\s+(\d{1,2})\s+min(?:ute)?s?$")
# How far ahead the minimum interval is checked (fires, and time).
_CHECK_FIRES = 400
_CHECK_SPAN = timedelta(days=366)


class ScheduleError(ValueError):
    """The input cannot be scheduled; the message names the problem and the fix."""


@dataclass(frozen=True, slots=True)
class When:
    """A schedule's timing: as written, as a cron expression, and its time zone."""

    spec: str
    cron: str
    time_zone: str

    def next_after(self, moment: float) -> float:
        """The first run after `moment` (epoch seconds)."""
        return next_run(self.cron, self.time_zone, moment)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; `ScheduleError` naming it when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin, "
            "America/New_York or UTC"
        ) from None


def looks_like_zone(word: str) -> bool:
    """Whether a word is written like a time zone name (`Europe/Berlin`, `UTC`)."""
    return "/" in word or word.upper() in {"UTC", "GMT"}


def cron_of(text: str) -> str:
    """`text` as a 5-field cron expression: a phrase translated, an alias expanded, or cron
    checked as written. `ScheduleError` says what is wrong."""
    written = " ".join(text.split())
    if not written:
        raise ScheduleError(f"say when: a cron expression such as '0 9 * * mon', or {PHRASES}")
    if written.lower() in ALIASES:
        return ALIASES[written.lower()]
    phrase = phrase_cron(written.lower())
    if phrase is not None:
        return phrase
    fields = written.split()
    if written.lower().startswith(("every", "daily", "weekly", "hourly", "weekdays")):
        raise ScheduleError(f"{written!r} is not a phrase I understand; use {PHRASES}, or cron")
    if len(fields) != 5:
        raise ScheduleError(
            f"{written!r} is not a cron expression: cron has 5 fields ({CRON_FIELDS}), this has "
            f"{len(fields)}; or use a phrase: {PHRASES}"
        )
    try:
        croniter(written)
    except (CroniterError, ValueError, TypeError) as exc:
        raise ScheduleError(f"{written!r} is not a valid cron expression ({exc})") from None
    return written


def phrase_cron(text: str) -> str | None:
    """The cron expression of a phrase (lower case), or None when it is not one of them."""
    if match := _EVERY_DAY.match(text):
        return _at(match.groups(), "*")
    if match := _WEEKDAYS.match(text):
        return _at(match.groups(), "mon-fri")
    if match := _ON_DAYS.match(text):
        days = [d for d in re.split(r"\s*(?:,|and)\s*", match.group(1)) if d]
        return _at(match.groups()[1:], ",".join(day_of(d) for d in days))
    if match := _HOURS.match(text):
        every = int(match.group(1) or 1)
        if not 1 <= every <= 23:
            raise ScheduleError(f"every {every} hours: the number of hours is 1 to 23")
        return "0 * * * *" if every == 1 else f"0 */{every} * * *"
    if match := _MINUTES.match(text):
        every = int(match.group(1))
        if not 1 <= every <= 59:
            raise ScheduleError(f"every {every} minutes: the number of minutes is 1 to 59")
        return f"*/{every} * * * *"
    return None


def day_of(word: str) -> str:
    """A day of the week (`monday`, `mon`, `thurs`) as cron writes it."""
    for name, short in DAYS.items():
        if name.startswith(word) or word.startswith(short):
            return short
    raise ScheduleError(f"{word!r} is not a day of the week")


def _at(groups: tuple[str | None, ...], days: str) -> str:
    hour_text, minute_text, half = groups[0], groups[1], groups[2]
    hour, minute = int(hour_text or 0), int(minute_text or 0)
    if half:
        if not 1 <= hour <= 12:
            raise ScheduleError(f"{hour}{half} is not a time; use 1-12 with am/pm, or 0-23")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ScheduleError(f"{hour_text}:{minute_text or '00'} is not a time of day (00:00-23:59)")
    return f"{minute} {hour} * * {days}"


def when(text: str, *, default_zone: str, min_minutes: float, now: float) -> When:
    """Parse `text` (cron or a phrase, optionally ending with a time zone) into a `When` that
    runs no more often than every `min_minutes`; `ScheduleError` otherwise."""
    words = text.split()
    time_zone = default_zone
    if len(words) > 1 and looks_like_zone(words[-1]):
        time_zone = words.pop()
    zone(time_zone)
    cron = cron_of(" ".join(words))
    check_interval(cron, time_zone, min_minutes, now)
    return When(" ".join(text.split()), cron, time_zone)


def check_interval(cron: str, time_zone: str, min_minutes: float, now: float) -> None:
    """Refuse a schedule that never runs, or that runs twice within `min_minutes`."""
    horizon = now + _CHECK_SPAN.total_seconds()
    shortest: float | None = None
    previous: float | None = None
    try:
        for count, fire in enumerate(fires(cron, time_zone, now)):
            if previous is not None:
                gap = fire - previous
                shortest = gap if shortest is None else min(shortest, gap)
            previous = fire
            if count >= _CHECK_FIRES or fire > horizon:
                break
    except CroniterBadDateError:
        if previous is None:
            raise ScheduleError(f"{cron!r} never runs (no such date)") from None
    if shortest is not None and shortest < min_minutes * 60:
        raise ScheduleError(
            f"{cron!r} runs as often as every {_span(shortest)}; the minimum interval is "
            f"{min_minutes:g} minutes (SCHEDULE_MIN_MINUTES)"
        )


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} minute{'s' * (minutes != 1)}"


def next_run(cron: str, time_zone: str, after: float) -> float:
    """The first fire of `cron` in `time_zone` strictly after `after` (epoch seconds)."""
    return next(fires(cron, time_zone, after))


def fires(cron: str, time_zone: str, after: float) -> Iterator[float]:
    """The fires of `cron` in `time_zone` after `after`, in order (epoch seconds), with the
    daylight-saving rules of this module."""
    place = zone(time_zone)
    hourly = cron.split()[1] == "*"
    moments = croniter(cron, datetime.fromtimestamp(after, place))
    while True:
        fire: datetime = moments.get_next(datetime)
        if fire.timestamp() <= after:
            continue
        if not hourly and _repeated(fire, place):
            continue  # the clocks went back: this wall time already ran an hour ago
        yield fire.timestamp()


def previous_run(cron: str, time_zone: str, before: float) -> float:
    """The last fire of `cron` in `time_zone` strictly before `before`."""
    place = zone(time_zone)
    fire: datetime = croniter(cron, datetime.fromtimestamp(before, place)).get_prev(datetime)
    return fire.timestamp()


def _repeated(fire: datetime, place: ZoneInfo) -> bool:
    """Whether `fire` is the second occurrence of its wall time (the hour the clocks went back)."""
    first = fire.replace(tzinfo=None).replace(tzinfo=place, fold=0)
    return first.utcoffset() != fire.utcoffset() and first.timestamp() < fire.timestamp()


def describe(moment: float, time_zone: str) -> str:
    """A run time as people read it: `Mon 2026-03-30 09:00 Europe/Berlin`."""
    return f"{datetime.fromtimestamp(moment, zone(time_zone)):%a %Y-%m-%d %H:%M} {time_zone}"
