"""Digests through the Batch API (DIGEST_BATCH=true) against the simulator's `/v1/files` and
`/v1/batches`: one JSONL upload per pass, polling with back-off, results posted and priced at
half, a failed line retried directly, an expired or failed batch falling back to direct calls, a
restart resuming the polls, and two processes never posting the same digest."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest
from structlog.testing import capture_logs

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from core.llm.types import Usage
from core.schedules.runner import Pass
from simulator import Fail, Simulator, Text
from tests.schedules.helpers import Clock, FakePort, at, attach, command, key

CHANNELS = ("C1", "C2", "C3")


def digest_answer(topic: str) -> Text:
    return Text(
        json.dumps(
            {
                "topics": [{"title": topic, "summary": "As discussed.", "messages": ["m1"]}],
                "decisions": [],
                "open_questions": [],
            }
        )
    )


@pytest.fixture
def port() -> FakePort:
    port = FakePort()
    for channel in CHANNELS:
        port.add_channel(channel, f"team-{channel.lower()}", {"u1"})
        port.say(channel, "u1", f"news for {channel}", at("2026-03-27 08:00"))
    return port


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-03-27 08:30"))


async def _open(
    make_settings: Callable[..., Settings], port: FakePort, clock: Clock, **overrides: object
) -> Services:
    services = await build_services(make_settings(digest_batch=True, **overrides))
    await attach(services, port, clock)
    return services


@pytest.fixture
async def services(
    make_settings: Callable[..., Settings], port: FakePort, clock: Clock
) -> AsyncIterator[Services]:
    built = await _open(make_settings, port, clock)
    for channel in CHANNELS:
        await command(built, "digest", "daily 09:00", channel)
    yield built
    await built.close()


async def tick(services: Services) -> Pass:
    assert services.scheduler is not None
    return await services.scheduler.tick()


async def usage_rows(services: Services) -> list[tuple[str, int, int, int, float, str]]:
    rows = await services.store.db.fetchall(
        "SELECT purpose, prompt_tokens, cached_tokens, completion_tokens, cost_usd, model "
        "FROM usage ORDER BY id"
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_due_digests_go_in_one_batch_polled_with_back_off_and_priced_at_half(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    sim.batch_mode = "hold"
    clock.set(at("2026-03-27 09:00"))
    done = await tick(services)
    assert (done.claimed, done.batched) == (3, 3)
    [upload] = sim.requests_to("files")
    assert upload.method == "POST" and upload.body is not None and upload.body["purpose"] == "batch"
    [created] = [r for r in sim.requests_to("batches") if r.method == "POST"]
    assert created.body is not None and created.body["endpoint"] == "/v1/chat/completions"
    assert created.body["completion_window"] == "24h"
    [batch] = sim.batches.values()
    lines = [json.loads(x) for x in sim.file_contents[batch["input_file_id"]].splitlines()]
    assert [line["custom_id"] for line in lines] == ["run-1", "run-2", "run-3"]
    assert all(line["url"] == "/v1/chat/completions" for line in lines)
    assert all("stream" not in line["body"] for line in lines), "batch lines are not streamed"
    assert "news for C2" in json.dumps(lines[1]) and "news for C1" not in json.dumps(lines[1])
    assert sim.requests_to("chat") == [] and port.posted == []
    stored = await services.store.schedules.batch(batch["id"])
    assert stored is not None and stored.next_poll_at == clock.now + 60

    polls = lambda: len([r for r in sim.requests_to("batches") if r.method == "GET"])  # noqa: E731
    clock.advance(30)
    await tick(services)
    assert polls() == 0, "not polled before its time"
    clock.advance(30)
    await tick(services)
    assert polls() == 1
    stored = await services.store.schedules.batch(batch["id"])
    assert stored is not None and stored.remote_status == "in_progress"
    assert stored.next_poll_at == clock.now + 120, "the next poll backs off"
    clock.advance(120)
    await tick(services)
    stored = await services.store.schedules.batch(batch["id"])
    assert stored is not None and stored.next_poll_at == clock.now + 240

    sim.enqueue(digest_answer("Alpha"), digest_answer("Bravo"), digest_answer("Charlie"))
    await sim.finish_batches()
    clock.advance(240)
    await tick(services)
    for channel, topic in zip(CHANNELS, ("Alpha", "Bravo", "Charlie"), strict=True):
        [posted] = port.posted.texts(channel)
        assert f"**{topic}** — As discussed." in posted
        assert f"https://chat.example/{channel}/" in posted
    assert sim.requests_to("chat") == [], "every digest came from the batch"
    rows = await usage_rows(services)
    assert [r[0] for r in rows] == ["digest_batch"] * 3
    prices = services.engine.usage.prices
    for _, prompt, cached, completion, cost, model in rows:
        full = prices.cost(model, Usage(prompt, cached, completion))
        assert cost == pytest.approx(full / 2) and cost > 0
    stored = await services.store.schedules.batch(batch["id"])
    assert stored is not None and stored.status == "collected"
    for channel in CHANNELS:
        [schedule] = await services.store.schedules.in_channel(key(channel))
        [run] = await services.store.schedules.runs(schedule.id)
        assert (run.status, run.payload) == ("done", "")
    clock.advance(3600)
    await tick(services)
    assert sum(len(port.posted.texts(c)) for c in CHANNELS) == 3


async def test_a_failed_line_is_retried_directly(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    sim.fail_batch_lines("run-2")
    sim.enqueue(digest_answer("Alpha"), digest_answer("Charlie"), digest_answer("Direct"))
    clock.set(at("2026-03-27 09:00"))
    await tick(services)  # created and (complete mode) run at once
    with capture_logs() as logs:
        clock.advance(60)
        await tick(services)
    [failed] = [e for e in logs if e["event"] == "digest_batch_line_failed"]
    assert failed["run"] == 2 and failed["retry"] == "direct call"
    assert failed["error"].startswith("500: simulated batch line failure")
    assert len(sim.requests_to("chat")) == 1, "only the failed line became a direct call"
    assert "**Direct**" in port.posted.texts("C2")[0]
    assert "**Alpha**" in port.posted.texts("C1")[0] and "**Charlie**" in port.posted.texts("C3")[0]
    purposes = sorted(r[0] for r in await usage_rows(services))
    assert purposes == ["digest", "digest_batch", "digest_batch"]


@pytest.mark.parametrize(
    ("mode", "event"), [("expire", "digest_batch_expired"), ("fail", "digest_batch_failed")]
)
async def test_an_expired_or_failed_batch_falls_back_to_direct_calls(
    services: Services, port: FakePort, clock: Clock, sim: Simulator, mode: str, event: str
) -> None:
    sim.batch_mode = mode
    sim.batch_expire_after = 1  # expire: the first line ran before the window closed
    answered = 1 if mode == "expire" else 0
    sim.enqueue(*(digest_answer(f"T{i}") for i in range(3)))
    clock.set(at("2026-03-27 09:00"))
    await tick(services)
    with capture_logs() as logs:
        clock.advance(60)
        await tick(services)
    [line] = [e for e in logs if e["event"] == event]
    assert line["fallback"] == "direct calls for the digests it did not answer"
    assert line["answered"] == answered and line["log_level"] == "warning"
    assert len(sim.requests_to("chat")) == 3 - answered
    assert all(len(port.posted.texts(c)) == 1 for c in CHANNELS)
    purposes = sorted(r[0] for r in await usage_rows(services))
    assert purposes == sorted(["digest_batch"] * answered + ["digest"] * (3 - answered))


async def test_unavailable_batch_endpoints_mean_direct_calls(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    sim.fail_next("files", Fail(503))
    with capture_logs() as logs:
        clock.set(at("2026-03-27 09:00"))
        done = await tick(services)
    assert done.batched == 0
    [line] = [e for e in logs if e["event"] == "digest_batch_not_submitted"]
    assert line["fallback"] == "direct calls" and line["digests"] == 3
    assert len(sim.requests_to("chat")) == 3
    assert all(len(port.posted.texts(c)) == 1 for c in CHANNELS)
    assert await services.store.db.fetchall("SELECT id FROM schedule_batches") == []


async def test_a_restart_resumes_polling_and_two_processes_post_each_digest_once(
    make_settings: Callable[..., Settings],
    port: FakePort,
    clock: Clock,
    sim: Simulator,
    on_both_backends: str,
) -> None:
    sim.batch_mode = "hold"
    url = on_both_backends
    first = await _open(make_settings, port, clock, database_url=url)
    try:
        for channel in CHANNELS:
            await command(first, "digest", "daily 09:00", channel)
        clock.set(at("2026-03-27 09:00"))
        await tick(first)
    finally:
        await first.close()  # stopped with the batch in flight
    sim.enqueue(*(digest_answer(f"T{i}") for i in range(3)))
    await sim.finish_batches()
    second = await _open(make_settings, port, clock, database_url=url)
    third = await _open(make_settings, port, clock, database_url=url)
    try:
        clock.advance(60)
        await asyncio.gather(tick(second), tick(third))
        assert [len(port.posted.texts(c)) for c in CHANNELS] == [1, 1, 1]
        gets = [r for r in sim.requests_to("batches") if r.method == "GET"]
        assert len(gets) == 1, "one process polled the batch"
        assert sim.requests_to("chat") == []
        clock.advance(3600)
        await asyncio.gather(tick(second), tick(third))
        assert [len(port.posted.texts(c)) for c in CHANNELS] == [1, 1, 1]
    finally:
        await second.close()
        await third.close()


async def test_a_batch_open_past_its_window_is_cancelled_and_falls_back(
    services: Services, port: FakePort, clock: Clock, sim: Simulator
) -> None:
    sim.batch_mode = "hold"
    clock.set(at("2026-03-27 09:00"))
    await tick(services)
    [batch] = sim.batches.values()
    with capture_logs() as logs:
        clock.advance(26 * 3600)  # the 24 hours and the hour's grace are over
        await tick(services)
    assert sim.batches[batch["id"]]["status"] == "cancelled"
    [line] = [e for e in logs if e["event"] == "digest_batch_overdue"]
    assert line["answered"] == 0
    assert len(sim.requests_to("chat")) == 3
    assert all(len(port.posted.texts(c)) == 1 for c in CHANNELS)
