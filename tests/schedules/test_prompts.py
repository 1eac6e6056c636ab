"""Recurring prompts: `/schedule` runs a prompt as a turn of the engine in its channel or DM, with
the channel's settings; owners and admins list and cancel; bad input is named; an owner who left
pauses the schedule with one notice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from simulator import Simulator, Text
from tests.schedules.helpers import Clock, FakePort, at, attach, command, key

BERLIN = "Europe/Berlin"


@pytest.fixture
def port() -> FakePort:
    port = FakePort()
    port.add_channel("C1", "general", {"u1", "u2", "boss"})
    port.add_channel("CX", "elsewhere", {"u1"})
    port.channels["CX"].bot = False
    return port


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-03-27 12:00", BERLIN))  # a Friday


@pytest.fixture
async def services(
    make_settings: Callable[..., Settings], port: FakePort, clock: Clock
) -> AsyncIterator[Services]:
    built = await build_services(make_settings(admin_user_ids="boss"))
    await attach(built, port, clock)
    yield built
    await built.close()


async def test_a_scheduled_prompt_runs_as_a_turn_with_the_channels_settings(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    await command(
        services, "config", 'channel system_prompt "Answer like a ship captain."', "C1", user="boss"
    )
    answer = await command(
        services, "schedule", '"every monday 9:00 Europe/Berlin" What is on this week?', "C1"
    )
    assert answer.startswith("Scheduled #1: every monday 9:00 Europe/Berlin (cron `0 9 * * mon`")
    assert "first run Mon 2026-03-30 09:00 Europe/Berlin" in answer
    sim.enqueue(Text("Aye: the launch and the audit."))
    clock.set(at("2026-03-30 09:00", BERLIN))
    assert services.scheduler is not None
    assert (await services.scheduler.tick()).claimed == 1
    assert port.posted.texts("C1") == ["Aye: the launch and the audit."]
    [request] = [r.body for r in sim.requests_to("chat")]
    assert request is not None
    assert "Answer like a ship captain." in request["messages"][0]["content"]
    assert request["messages"][-1] == {"role": "user", "content": "What is on this week?"}
    conversation = await services.store.conversations.get(key("C1"))
    assert conversation is not None, "the turn is the channel's conversation"
    stored = await services.store.messages.all(conversation)
    assert [(m.role, m.user_id) for m in stored] == [("user", "u1"), ("assistant", "")]
    [run] = await services.store.schedules.runs(1)
    assert run.status == "done" and run.detail.endswith(": done")
    clock.set(at("2026-03-30 09:20", BERLIN))
    assert (await services.scheduler.tick()).claimed == 0, "once per period"


async def test_owners_and_admins_list_and_cancel(services: Services, clock: Clock) -> None:
    await command(services, "schedule", '"0 9 * * mon" weekly plan', "C1")
    await command(services, "schedule", '"every day 18:00" evening notes', "C1", user="u2")
    mine = await command(services, "schedule", "list", "C1")
    assert mine.splitlines()[0] == "Schedules here:"
    assert "#1 prompt 'weekly plan', 0 9 * * mon, by name-u1: next Mon 2026-03-30 09:00 UTC" in mine
    assert "evening notes" not in mine, "people see their own"
    everything = await command(services, "schedule", "list", "C1", user="boss")
    assert "weekly plan" in everything and "evening notes" in everything
    assert (await command(services, "schedule", "list", "C1", user="u3")).startswith(
        "No schedules of yours here."
    )
    refused = await command(services, "schedule", "cancel 1", "C1", user="u2")
    assert refused == "#1 belongs to name-u1: only they or an admin can change or cancel it."
    assert await command(services, "schedule", "cancel 1", "C1") == "Cancelled #1 (0 9 * * mon)."
    assert await command(services, "schedule", "cancel 2", "C1", user="boss") == (
        "Cancelled #2 (every day 18:00)."
    )
    assert await command(services, "schedule", "cancel 2", "C1") == "There is no schedule #2."
    assert await command(services, "schedule", "cancel x", "C1") == (
        "usage: /schedule cancel <number> (the numbers are in /schedule list)"
    )
    clock.set(at("2026-04-06 12:00"))
    assert services.scheduler is not None
    assert (await services.scheduler.tick()).claimed == 0


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ("every monday 9:00 hello", "put the time in quotes"),
        ('"every monday 9:00 hello', 'the quoted time has no closing "'),
        ('"every monday 9:00"', "the prompt is missing"),
        ('"*/5 * * * *" hello', "runs as often as every 5 minutes"),
        ('"0 9 * * * *" hello', "cron has 5 fields"),
        ('"0 25 * * *" hello', "is not a valid cron expression"),
        ('"every day 9:00 Moon/Base" hello', "unknown time zone 'Moon/Base'"),
        ("“every fortnight” hello", "is not a phrase I understand"),
    ],
)
async def test_bad_input_is_named_and_nothing_is_scheduled(
    services: Services, args: str, problem: str
) -> None:
    answer = await command(services, "schedule", args, "C1")
    assert problem in answer and "Nothing was scheduled" in answer, answer
    assert await services.store.schedules.in_channel(key("C1")) == []


async def test_a_channel_the_bot_cannot_read_is_refused(services: Services) -> None:
    answer = await command(services, "schedule", '"every day 9:00" hi', "CX")
    assert answer.startswith("I can't read #elsewhere: invite me to it first")
    assert answer.endswith("Nothing was scheduled.")


async def test_an_owner_who_left_pauses_the_schedule_with_one_notice(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    await command(services, "schedule", '"every day 9:00" status report', "C1")
    port.channels["C1"].members.discard("u1")
    assert services.scheduler is not None
    for day in ("2026-03-28", "2026-03-29"):
        clock.set(at(f"{day} 09:30"))
        await services.scheduler.tick()
    assert port.posted.texts("C1") == [
        "Schedule #1 is paused: name-u1, who set it up, is no longer a member here. Anyone "
        "here can schedule it again with `/schedule`."
    ]
    assert sim.requests_to("chat") == [], "no turn on behalf of someone who left"
    [run] = await services.store.schedules.runs(1)
    assert (run.status, run.detail) == (
        "skipped",
        "the owner is no longer a member of the conversation",
    )
    listed = await command(services, "schedule", "list", "C1", user="boss")
    assert "status report" in listed and ": paused; last run: skipped" in listed


async def test_erasing_a_person_cancels_their_schedules_and_removes_their_prompts(
    services: Services, clock: Clock
) -> None:
    await command(services, "schedule", '"every day 9:00" my private question', "C1")
    await command(services, "digest", "daily 09:00", "C1")
    erased = await services.store.erasure.erase_person("u1")
    assert erased.schedules == 2
    for number in (1, 2):
        schedule = await services.store.schedules.get(number)
        assert schedule is not None and schedule.status == "cancelled"
        assert (schedule.prompt, schedule.owner_name) == ("", "")
    assert (await services.store.erasure.erase_person("u1")).schedules == 0, "idempotent"
    clock.set(at("2026-03-28 09:30"))
    assert services.scheduler is not None
    assert (await services.scheduler.tick()).claimed == 0


async def test_the_scheduler_loop_runs_passes_until_stopped(
    make_settings: Callable[..., Settings], port: FakePort, clock: Clock, sim: Simulator
) -> None:
    services = await build_services(make_settings(schedule_poll_seconds=0.05))
    await attach(services, port, clock)
    try:
        await command(services, "schedule", '"every day 9:00" good morning', "C1")
        stop = asyncio.Event()
        assert services.scheduler is not None
        loop = asyncio.create_task(services.scheduler.run(stop))
        clock.set(at("2026-03-28 09:00"))
        await asyncio.wait_for(port.changed.wait(), 10)
        assert port.posted.texts("C1") == ["You said: good morning"]
        stop.set()
        await asyncio.wait_for(loop, 10)
    finally:
        await services.close()
