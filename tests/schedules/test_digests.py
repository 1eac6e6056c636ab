"""Channel digests end to end through the real services against the simulator, with a platform
port in memory and a clock the test moves: set up, posted with links, channel isolation, bad
input, an owner who left, skipped digests told once, two processes posting one digest per period,
downtime catch-up and daylight-saving changes in the runner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from core import metrics
from core.schedules.runner import Pass
from simulator import Fail, Simulator, Text
from tests.schedules.helpers import Clock, FakePort, at, attach, command, key

BERLIN = "Europe/Berlin"


def digest_answer(**items: object) -> Text:
    body = {"topics": [], "decisions": [], "open_questions": [], **items}
    return Text(json.dumps(body))


def runs_counted(kind: str, outcome: str) -> float:
    labels = {"kind": kind, "outcome": outcome}
    return REGISTRY.get_sample_value("parley_scheduled_runs_total", labels) or 0.0


@pytest.fixture
def port() -> FakePort:
    port = FakePort()
    port.add_channel("C1", "general", {"u1", "u2"})
    port.add_channel("C2", "random", {"u1", "u2"})
    port.add_channel("CP", "secret", {"u2"}, private=True)
    port.add_channel("CX", "elsewhere", {"u1"})
    port.channels["CX"].bot = False
    return port


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-03-27 08:00", BERLIN))


@pytest.fixture
async def services(
    make_settings: Callable[..., Settings], port: FakePort, clock: Clock
) -> AsyncIterator[Services]:
    built = await build_services(make_settings(openai_retry_attempts=1))
    await attach(built, port, clock)
    yield built
    await built.close()


async def tick(services: Services) -> Pass:
    assert services.scheduler is not None
    return await services.scheduler.tick()


async def test_a_digest_is_set_up_and_posted_with_links_to_its_threads(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    answer = await command(services, "digest", f"daily 09:00 {BERLIN}", "C1")
    assert answer.startswith("Digest of this channel set up by name-u1: daily 09:00 Europe/Berlin")
    assert "The first is Fri 2026-03-27 09:00 Europe/Berlin" in answer
    port.say("C1", "u2", "we ship on friday", at("2026-03-27 08:10", BERLIN))
    port.say("C1", "u1", "who tells sales?", at("2026-03-27 08:20", BERLIN), replies=3)
    port.say("C2", "u2", "the secret plan of random", at("2026-03-27 08:30", BERLIN))
    sim.enqueue(
        digest_answer(
            topics=[{"title": "Release", "summary": "Friday it is.", "messages": ["m1", "m9"]}],
            decisions=[{"text": "Ship on Friday", "messages": ["[m1]"]}],
            open_questions=[{"text": "Who tells sales?", "messages": ["m2"]}],
        )
    )
    before = runs_counted("digest", "done")
    clock.set(at("2026-03-27 08:59", BERLIN))
    assert (await tick(services)).claimed == 0, "not due yet"
    clock.set(at("2026-03-27 09:00", BERLIN))
    assert (await tick(services)).claimed == 1
    [posted] = port.posted.texts("C1")
    assert posted.splitlines()[0] == (
        "**Digest of #general** — 2 messages since Thu 2026-03-26 09:00 Europe/Berlin"
    )
    assert "• **Release** — Friday it is. ([message](https://chat.example/C1/C1-1))" in posted
    assert "• Ship on Friday ([message](https://chat.example/C1/C1-1))" in posted
    assert "• Who tells sales? ([thread](https://chat.example/C1/C1-2))" in posted
    assert "m9" not in posted, "only references to this transcript become links"
    [request] = [r.body for r in sim.requests_to("chat")]
    assert request is not None and request["response_format"]["type"] == "json_schema"
    transcript = request["messages"][-1]["content"]
    assert "[m1] [2026-03-27 07:10] name-u2: we ship on friday" in transcript
    assert "secret plan" not in json.dumps(request)
    assert runs_counted("digest", "done") == before + 1
    exposed = metrics.render()[0].decode()
    assert 'parley_scheduled_runs_total{kind="digest",outcome="done"}' in exposed
    assert 'parley_scheduled_runs_total{kind="prompt",outcome="skipped"}' in exposed
    schedule = (await services.store.schedules.in_channel(key("C1")))[0]
    [run] = await services.store.schedules.runs(schedule.id)
    assert (run.status, run.detail, run.payload) == ("done", "2 messages", "")
    assert schedule.covered_until == clock.now and schedule.last_outcome == "done"
    totals = await services.store.usage.totals("console", "w1", 0)
    assert totals.calls == 1 and totals.cost_usd > 0

    # The next day's digest covers the messages since this one only.
    port.say("C1", "u2", "friday went fine", at("2026-03-27 15:00", BERLIN))
    sim.enqueue(digest_answer())
    clock.set(at("2026-03-28 09:00", BERLIN))
    assert (await tick(services)).claimed == 1
    newest = port.posted.texts("C1")[-1]
    assert newest.startswith("**Digest of #general** — 1 message since Fri 2026-03-27 09:00")
    assert newest.endswith("Nothing to report.")
    assert "we ship on friday" not in sim.requests_to("chat")[-1].body["messages"][-1]["content"]


async def test_a_digest_never_carries_another_channels_text(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    for channel in ("C1", "C2"):
        await command(services, "digest", "daily 09:00", channel)
    moment = at("2026-03-27 08:30", BERLIN)
    port.say("C1", "u1", "alpha launch notes", moment)
    port.say("C2", "u2", "bravo hiring plans", moment)
    clock.set(at("2026-03-28 10:00", BERLIN))  # 09:00 UTC passed for both
    assert (await tick(services)).claimed == 2
    bodies = [json.dumps(r.body) for r in sim.requests_to("chat")]
    assert len(bodies) == 2
    assert sorted(("alpha" in b, "bravo" in b) for b in bodies) == [(False, True), (True, False)]
    assert all("bravo" not in text for text in port.posted.texts("C1"))
    assert all("alpha" not in text for text in port.posted.texts("C2"))
    assert {k.channel for k, _ in port.posted} == {"C1", "C2"}


async def test_bad_input_is_named_and_nothing_is_scheduled(services: Services) -> None:
    cases = {
        ("C1", "daily 25:00"): "25:00 is not a time of day (00:00-23:59)",
        ("C1", "daily 09:00 Mars/Olympus"): "unknown time zone 'Mars/Olympus'",
        ("C1", "weekly funday 09:00"): "'funday' is not a day of the week",
        ("C1", "hourly"): "'hourly' is not a digest schedule",
        ("CX", "daily 09:00"): "I can't read #elsewhere: invite me to it first",
        ("CP", "daily 09:00"): "Only members of #secret can schedule work there",
    }
    for (channel, args), problem in cases.items():
        answer = await command(services, "digest", args, channel)
        assert problem in answer and "Nothing was scheduled" in answer, answer
    for channel in ("C1", "CX", "CP"):
        assert await services.store.schedules.in_channel(key(channel)) == []
    assert (await command(services, "digest", "", "C1")).startswith("No digest is set up here.")
    assert "/summarize" in await command(services, "digest", "now", "C1")


async def test_an_owner_who_left_pauses_the_digest_with_one_notice(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    await command(services, "digest", "daily 09:00", "C1")
    port.say("C1", "u2", "hello", at("2026-03-27 08:30", BERLIN))
    port.channels["C1"].members.discard("u1")
    before = runs_counted("digest", "skipped")
    clock.set(at("2026-03-28 09:30"))
    assert (await tick(services)).claimed == 1
    [notice] = port.posted.texts("C1")
    assert notice.startswith("The digest of this channel is paused: name-u1, who set it up, is")
    schedule = (await services.store.schedules.in_channel(key("C1")))[0]
    assert schedule.status == "paused" and schedule.last_outcome == "skipped"
    [run] = await services.store.schedules.runs(schedule.id)
    assert run.detail == "the owner is no longer a member of the channel"
    assert runs_counted("digest", "skipped") == before + 1
    clock.set(at("2026-03-30 09:30"))
    assert (await tick(services)).claimed == 0, "a paused schedule does not run"
    assert len(port.posted) == 1 and sim.requests_to("chat") == []
    shown = await command(services, "digest", "", "C1", user="u2")
    assert "paused" in shown and "Set it up again to resume it" in shown
    resumed = await command(services, "digest", "daily 09:00", "C1", user="u2")
    assert resumed.startswith("Digest of this channel changed by name-u2"), "anyone takes it over"
    [taken] = await services.store.schedules.in_channel(key("C1"))
    assert (taken.status, taken.owner_id) == ("active", "u2")


async def test_a_skipped_digest_is_told_once_and_the_next_one_covers_it(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    await command(services, "digest", "daily 09:00", "C1")
    port.say("C1", "u2", "first day news", at("2026-03-27 08:30", BERLIN))
    sim.fail_next("chat", Fail(503), times=2)  # the model is down for two days
    for day in ("2026-03-28", "2026-03-29"):
        clock.set(at(f"{day} 09:05"))
        assert (await tick(services)).claimed == 1
    assert port.posted.texts("C1") == [
        "The digest of #general was skipped: the AI service is unavailable. The next digest "
        "covers these messages too."
    ]
    schedule = (await services.store.schedules.in_channel(key("C1")))[0]
    assert [r.detail for r in await services.store.schedules.runs(schedule.id)] == [
        "model: server_error",
        "model: server_error",
    ]
    port.say("C1", "u2", "third day news", at("2026-03-29 12:00", BERLIN))
    sim.enqueue(digest_answer())
    clock.set(at("2026-03-30 09:05"))
    await tick(services)
    digest = port.posted.texts("C1")[-1]
    assert digest.startswith("**Digest of #general** — 2 messages since Thu 2026-03-26 09:00 UTC")
    sim.fail_next("chat", Fail(503))
    port.say("C1", "u2", "more", at("2026-03-30 12:00", BERLIN))
    clock.set(at("2026-03-31 09:05"))
    await tick(services)
    assert port.posted.texts("C1")[-1].startswith("The digest of #general was skipped"), (
        "after a digest was posted, the next skip is told again"
    )


async def test_over_budget_a_digest_is_skipped_with_one_notice(
    make_settings: Callable[..., Settings], port: FakePort, clock: Clock, sim: Simulator
) -> None:
    services = await build_services(make_settings(budget_workspace_daily_usd=0.0))
    await attach(services, port, clock)
    try:
        await command(services, "digest", "daily 09:00", "C1")
        port.say("C1", "u2", "news", at("2026-03-27 08:30", BERLIN))
        for day in ("2026-03-28", "2026-03-29"):
            clock.set(at(f"{day} 09:05"))
            await tick(services)
        assert port.posted.texts("C1") == [
            "The digest of #general was skipped: it would go over the AI budget. The next "
            "digest covers these messages too."
        ]
        schedule = (await services.store.schedules.in_channel(key("C1")))[0]
        runs = await services.store.schedules.runs(schedule.id)
        assert [r.detail for r in runs] == ["budget: daily_workspace_budget"] * 2
        assert sim.requests_to("chat") == [], "the model is not called over budget"
    finally:
        await services.close()


async def test_two_processes_post_one_digest_per_period(
    make_settings: Callable[..., Settings],
    port: FakePort,
    clock: Clock,
    sim: Simulator,
    on_both_backends: str,
) -> None:
    first = await build_services(make_settings(database_url=on_both_backends))
    second = await build_services(make_settings(database_url=on_both_backends))
    for services in (first, second):
        await attach(services, port, clock)
    try:
        await command(first, "digest", "daily 09:00", "C1")
        await command(second, "digest", "daily 10:00", "C2")
        for day in ("2026-03-28", "2026-03-29", "2026-03-30"):
            port.say("C1", "u1", f"C1 news of {day}", at(f"{day} 08:00"))
            port.say("C2", "u1", f"C2 news of {day}", at(f"{day} 08:00"))
            clock.set(at(f"{day} 10:00"))
            passes = await asyncio.gather(tick(first), tick(second))
            assert sum(p.claimed for p in passes) == 2, day
        assert [t.split(" — ")[0] for t in port.posted.texts("C1")] == [
            "**Digest of #general**"
        ] * 3
        assert len(port.posted.texts("C2")) == 3
        for channel in ("C1", "C2"):
            [schedule] = await first.store.schedules.in_channel(key(channel))
            runs = await second.store.schedules.runs(schedule.id)
            assert [r.status for r in runs] == ["done"] * 3
    finally:
        await first.close()
        await second.close()


async def test_downtime_gives_one_catch_up_digest(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    await command(services, "digest", "daily 09:00 Europe/Berlin", "C1")
    for day in range(27, 32):
        port.say("C1", "u2", f"news of the {day}th", at(f"2026-03-{day} 12:00", BERLIN))
    sim.enqueue(digest_answer())
    clock.set(at("2026-04-01 11:00", BERLIN))  # down since the 27th, before its 09:00
    assert (await tick(services)).claimed == 1
    assert (await tick(services)).claimed == 0
    [digest] = port.posted.texts("C1")
    assert digest.splitlines()[0] == (
        "**Digest of #general** — 5 messages since Thu 2026-03-26 09:00 Europe/Berlin "
        "(catching up after a pause in service)"
    )
    schedule = (await services.store.schedules.in_channel(key("C1")))[0]
    [run] = await services.store.schedules.runs(schedule.id)
    assert run.catch_up and run.due_at == at("2026-03-27 09:00", BERLIN).timestamp()
    assert schedule.next_run_at == at("2026-04-02 09:00", BERLIN).timestamp()


@pytest.mark.parametrize(
    ("spec", "start", "end", "expected"),
    [
        (  # spring: 2026-03-29 02:00 CET -> 03:00 CEST
            "daily 09:00 Europe/Berlin",
            "2026-03-27 10:00",
            "2026-03-31 12:00",
            ["28 09:00 +0100", "29 09:00 +0200", "30 09:00 +0200", "31 09:00 +0200"],
        ),
        (  # autumn: 2026-10-25 03:00 CEST -> 02:00 CET; 02:30 happens twice, runs once
            "daily 02:30 Europe/Berlin",
            "2026-10-23 10:00",
            "2026-10-27 10:00",
            ["24 02:30 +0200", "25 02:30 +0200", "26 02:30 +0100", "27 02:30 +0100"],
        ),
    ],
)
async def test_the_runner_across_daylight_saving_changes(
    services: Services, clock: Clock, spec: str, start: str, end: str, expected: list[str]
) -> None:
    clock.set(at(start, BERLIN))
    await command(services, "digest", spec, "C1")
    stop = at(end, BERLIN).timestamp()
    while clock.now < stop:
        clock.advance(15 * 60)
        await tick(services)
    schedule = (await services.store.schedules.in_channel(key("C1")))[0]
    runs = await services.store.schedules.runs(schedule.id)
    local = [datetime.fromtimestamp(r.due_at, ZoneInfo(BERLIN)) for r in runs]
    assert [d.strftime("%d %H:%M %z") for d in local] == expected
    assert {r.status for r in runs} == {"empty"}, "a quiet channel gets no digest posted"
    assert all(r.started_at - r.due_at <= 15 * 60 for r in runs), "each ran within a pass"


async def test_digest_now_and_off(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    await command(services, "digest", "weekly mon 09:00", "C1")
    port.say("C1", "u2", "monday plans", at("2026-03-27 07:00", BERLIN))
    sim.enqueue(digest_answer())
    assert await command(services, "digest", "now", "C1") == "Posted the digest (1 message)."
    assert len(port.posted.texts("C1")) == 1
    assert await command(services, "digest", "now", "C1") == (
        "No new messages since the last digest: nothing to post."
    )
    refused = await command(services, "digest", "off", "C1", user="u2")
    assert refused.startswith("#1 belongs to name-u1: only they or an admin")
    assert await command(services, "digest", "off", "C1") == (
        "The digest of this channel is off (turned off by name-u1)."
    )
    clock.set(at("2026-03-30 09:30", BERLIN))
    assert (await tick(services)).claimed == 0


async def test_a_run_left_open_by_a_stopped_process_is_closed_once(
    services: Services, clock: Clock
) -> None:
    from core.schedules.runner import next_after
    from core.store import Store, connect

    await command(services, "digest", "daily 09:00", "C1")
    clock.set(at("2026-03-28 09:30"))
    crashed = Store(connect(services.settings.store.url), "gone-host/1/dead")
    await crashed.db.open()
    try:
        [run] = await crashed.schedules.claim_due(["console"], now=clock.now, next_after=next_after)
    finally:
        await crashed.close()  # it never beat: stopped, as far as anyone can tell
    before = runs_counted("digest", "failed")
    assert (await tick(services)).orphans == 1
    assert (await tick(services)).orphans == 0
    [closed] = await services.store.schedules.runs(run.schedule.id)
    assert (closed.status, closed.detail) == ("failed", "process stopped")
    assert runs_counted("digest", "failed") == before + 1
