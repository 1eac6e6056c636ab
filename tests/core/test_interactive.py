"""The interactive core on both backends: feedback (last click wins), attempts decided once,
approvals decided once, superseded answers out of memory, the metrics and /usage's feedback rate."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from bots.services import Services
from core.events import Platform, User
from core.interactive.clicks import STREAMING, SUPERSEDED, Click
from core.interactive.controls import Action, ControlId, parse_control_id
from simulator import Simulator, Text
from tests.conftest import RecordingReply, make_event


@pytest.fixture
def database_url(on_both_backends: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return on_both_backends


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _click(action: Action, turn: int, attempt: int = 1, value: str = "", user: str = "u1") -> Click:
    return Click(ControlId(action, turn, attempt, value), User(user), Platform.CONSOLE, "w1", "c1")


def test_control_ids_round_trip_and_refuse_anything_else() -> None:
    parsed = parse_control_id("parley:rate:12:3:positive")
    assert parsed == ControlId(Action.RATE, 12, 3, "positive")
    assert str(parsed) == "parley:rate:12:3:positive"
    for bad in ("parley:rate:x:1", "parley:nuke:1:1", "other:rate:1:1", "parley:rate:1:1:meh", 7):
        assert parse_control_id(bad) is None


async def test_the_last_rating_wins_and_counts(services: Services) -> None:
    outcome = await services.engine.handle(make_event("hi"), RecordingReply())
    assert outcome is not None
    before = _metric("parley_feedback_total", platform="console", value="negative")
    interactions = services.engine.interactions
    await interactions.click(_click(Action.RATE, outcome.turn_id, value="positive"))
    await interactions.click(_click(Action.RATE, outcome.turn_id, value="negative"))
    assert await services.store.interactive.rating(outcome.turn_id, "u1") == ("negative", "")
    assert _metric("parley_feedback_total", platform="console", value="negative") == before + 1
    rated = await services.store.interactive.feedback_by_channel("console", "w1", 0)
    assert [(r.channel, r.positive, r.negative) for r in rated] == [("c1", 0, 1)]


async def test_admins_see_the_feedback_rate_per_channel_in_usage(services: Services) -> None:
    outcome = await services.engine.handle(make_event("hi"), RecordingReply())
    assert outcome is not None
    await services.engine.interactions.click(_click(Action.RATE, outcome.turn_id, value="positive"))
    admin = make_event("/usage", user="boss")
    admin = type(admin)(admin.key, User("boss", is_admin=True), admin.text, "d-usage")
    result = await services.engine.command(admin, "usage")
    assert "Feedback this month (👍 share): c1 100% (1/1)." in result.text


async def test_two_regenerate_clicks_at_once_start_one_attempt(
    services: Services, sim: Simulator
) -> None:
    outcome = await services.engine.handle(make_event("hi"), RecordingReply())
    assert outcome is not None
    before = _metric("parley_regenerations_total")
    replies = [RecordingReply(), RecordingReply()]
    results = await asyncio.gather(
        *(
            services.engine.interactions.click(_click(Action.AGAIN, outcome.turn_id), lambda r=r: r)
            for r in replies
        )
    )
    await services.engine.drain()
    assert sorted(r.changed for r in results) == [False, True]
    refused = next(r.text for r in results if not r.changed)
    assert refused in (STREAMING, SUPERSEDED)  # the loser saw the turn reopened, or its new attempt
    assert _metric("parley_regenerations_total") == before + 1
    assert len(sim.requests_to("chat")) == 2
    state = await services.store.interactive.turn(outcome.turn_id)
    assert state is not None and state.attempt == 2 and state.status == "done"


async def test_superseded_answers_stay_stored_but_leave_memory(
    services: Services, sim: Simulator
) -> None:
    sim.enqueue(Text("first try"), Text("second try"))
    event = make_event("question")
    outcome = await services.engine.handle(event, RecordingReply())
    assert outcome is not None
    await services.engine.interactions.click(
        _click(Action.AGAIN, outcome.turn_id), lambda: RecordingReply()
    )
    await services.engine.drain()
    conversation = await services.store.conversations.get(event.key)
    assert conversation is not None
    current = [m.content for m in await services.store.messages.all(conversation)]
    everything = [
        m.content for m in await services.store.messages.all(conversation, superseded=True)
    ]
    assert current == ["question", "second try"]
    assert everything == ["question", "first try", "second try"]
    context = await services.engine.memory.context(conversation, instructions="", budget=10_000)
    assert [m.text for m in context.messages] == ["question", "second try"]


async def test_an_approval_is_decided_exactly_once(services: Services) -> None:
    store = services.store.interactive
    approval = await store.ask_approval(
        turn_id=1,
        conversation_id=1,
        attempt=1,
        call_id="c1",
        tool="t",
        arguments="{}",
        requested_by="u1",
        owner="x",
        expires_at=time.time() + 60,
    )
    decided = await asyncio.gather(
        *(store.decide(approval, status, "u1") for status in ("approved", "denied", "approved"))
    )
    assert sorted(decided) == [False, False, True]
    assert not await store.decide(approval, "expired", "")
    expired = await store.ask_approval(
        turn_id=1,
        conversation_id=1,
        attempt=1,
        call_id="c2",
        tool="t",
        arguments="{}",
        requested_by="u1",
        owner="x",
        expires_at=time.time() - 1,
    )
    assert not await store.decide(expired, "approved", "u1"), "too late for a click"
    assert await store.decide(expired, "expired", "")
