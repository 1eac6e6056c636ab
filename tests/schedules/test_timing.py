"""When schedules run: phrases and cron through croniter, bad input named, the minimum interval,
time zones and Europe/Berlin's daylight-saving changes (spring and autumn)."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.schedules.timing import ScheduleError, next_run, previous_run, when
from tests.schedules.helpers import at

NOW = at("2026-03-20 12:00").timestamp()
BERLIN = ZoneInfo("Europe/Berlin")


def cron(text: str, *, minimum: float = 15) -> str:
    return when(text, default_zone="UTC", min_minutes=minimum, now=NOW).cron


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("every day 9:00", "0 9 * * *"),
        ("every day at 21:30", "30 21 * * *"),
        ("daily 7am", "0 7 * * *"),
        ("every weekday 08:15", "15 8 * * mon-fri"),
        ("every monday 9:00", "0 9 * * mon"),
        ("every Tuesday at 5:45pm", "45 17 * * tue"),
        ("every mon, thu 8:00", "0 8 * * mon,thu"),
        ("every friday and saturday 23:59", "59 23 * * fri,sat"),
        ("every hour", "0 * * * *"),
        ("every 6 hours", "0 */6 * * *"),
        ("every 30 minutes", "*/30 * * * *"),
        ("0 9 * * mon", "0 9 * * mon"),
        ("@daily", "0 0 * * *"),
    ],
)
def test_phrases_and_cron_become_cron(written: str, expected: str) -> None:
    assert cron(written) == expected


def test_a_time_zone_may_end_the_text() -> None:
    timing = when("every day 9:00 Europe/Berlin", default_zone="UTC", min_minutes=15, now=NOW)
    assert (timing.cron, timing.time_zone) == ("0 9 * * *", "Europe/Berlin")
    plain = when("0 9 * * mon", default_zone="America/New_York", min_minutes=15, now=NOW)
    assert plain.time_zone == "America/New_York"


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("0 9 * * * *", "cron has 5 fields"),
        ("0 9 * *", "this has 4"),
        ("61 * * * *", "is not a valid cron expression"),
        ("0 9 * * funday", "is not a valid cron expression"),
        ("every fortnight", "is not a phrase I understand"),
        ("every day 25:00", "is not a time of day"),
        ("every 5 minutes", "the minimum interval is 15 minutes (SCHEDULE_MIN_MINUTES)"),
        ("*/10 * * * *", "runs as often as every 10 minutes"),
        ("0,5 9 * * *", "runs as often as every 5 minutes"),
        ("0 0 31 2 *", "never runs"),
        ("every day 9:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("", "say when"),
    ],
)
def test_bad_input_is_named(written: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        cron(written)


def test_the_minimum_interval_is_a_setting() -> None:
    assert cron("every 5 minutes", minimum=5) == "*/5 * * * *"
    with pytest.raises(ScheduleError, match="the minimum interval is 120 minutes"):
        cron("every hour", minimum=120)


def _fires(expr: str, zone: str, start: str, count: int) -> list[datetime]:
    moment, out = at(start, zone).timestamp(), []
    for _ in range(count):
        moment = next_run(expr, zone, moment)
        out.append(datetime.fromtimestamp(moment, ZoneInfo(zone)))
    return out


def test_berlin_spring_forward_keeps_nine_oclock_local() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST.
    fires = _fires("0 9 * * *", "Europe/Berlin", "2026-03-27 12:00", 4)
    assert [f.strftime("%d %H:%M %z") for f in fires] == [
        "28 09:00 +0100",
        "29 09:00 +0200",
        "30 09:00 +0200",
        "31 09:00 +0200",
    ]
    stamps = [f.timestamp() for f in fires]
    gaps = [(b - a) / 3600 for a, b in itertools.pairwise(stamps)]
    assert gaps == [23, 24, 24], "the day of the change is an hour shorter"


def test_berlin_spring_forward_runs_a_missing_time_once_after_the_change() -> None:
    fires = _fires("30 2 * * *", "Europe/Berlin", "2026-03-27 12:00", 3)
    assert [f.strftime("%d %H:%M %z") for f in fires] == [
        "28 02:30 +0100",
        "29 03:00 +0200",  # 02:30 does not exist that day
        "30 02:30 +0200",
    ]


def test_berlin_fall_back_runs_a_repeated_time_once() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice.
    fires = _fires("30 2 * * *", "Europe/Berlin", "2026-10-23 12:00", 3)
    assert [f.strftime("%d %H:%M %z") for f in fires] == [
        "24 02:30 +0200",
        "25 02:30 +0200",
        "26 02:30 +0100",
    ]
    daily = _fires("0 9 * * *", "Europe/Berlin", "2026-10-23 12:00", 2)
    assert [(f.day, f.hour) for f in daily] == [(24, 9), (25, 9)]
    assert daily[1].timestamp() - daily[0].timestamp() == 25 * 3600, "that day has 25 hours"


def test_berlin_fall_back_hourly_runs_every_elapsed_hour() -> None:
    fires = _fires("0 * * * *", "Europe/Berlin", "2026-10-24 23:30", 25)
    day = [f for f in fires if f.day == 25]
    assert len(day) == 25, "the day of the change has 25 hours, each runs"
    stamps = [f.timestamp() for f in fires]
    assert all(b - a == 3600 for a, b in itertools.pairwise(stamps))


def test_previous_run() -> None:
    due = at("2026-03-30 09:00", "Europe/Berlin").timestamp()
    assert (
        previous_run("0 9 * * *", "Europe/Berlin", due)
        == at("2026-03-29 09:00", "Europe/Berlin").timestamp()
    )


def test_an_unknown_default_time_zone_stops_the_start_naming_the_setting() -> None:
    from bots.settings import load_app_settings
    from core.settings import SettingsError

    with pytest.raises(SettingsError, match="SCHEDULE_TIME_ZONE: is not a known time zone"):
        load_app_settings(schedule_time_zone="Mars/Olympus", _env_file=None)
    with pytest.raises(SettingsError, match="SCHEDULE_MIN_MINUTES"):
        load_app_settings(schedule_min_minutes=0, _env_file=None)
    settings = load_app_settings(_env_file=None)
    assert (settings.schedules.digest_batch, settings.schedules.min_minutes) == (False, 15)
