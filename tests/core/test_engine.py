"""The turn path end to end: the real SDK against the simulator over loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import structlog

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from simulator import Fail, Simulator, Text
from tests.conftest import RecordingReply, make_event


@pytest.fixture
def database_url(on_both_backends: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return on_both_backends


@pytest.mark.parametrize("wire", ["chat", "responses"])
async def test_a_turn_streams_and_persists_on_both_wire_apis(
    sim: Simulator, make_settings: Callable[..., Settings], wire: str
) -> None:
    services = await build_services(make_settings(openai_wire_api=wire, moderation_enabled=False))
    sim.enqueue(Text("Hello there, how can I help you today?"))
    reply = RecordingReply()
    try:
        outcome = await services.engine.handle(make_event("hi"), reply)
        assert outcome is not None and outcome.status == "done"
        assert len(reply.deltas) > 1, "the reply was streamed in pieces"
        assert reply.streamed == reply.final == "Hello there, how can I help you today?"
        endpoint = "chat" if wire == "chat" else "responses"
        assert len(sim.requests_to(endpoint)) == 1
        conversation = await services.store.conversations.get(make_event("x").key)
        assert conversation is not None
        stored = await services.store.messages.all(conversation)
        assert [(m.role, m.content) for m in stored] == [
            ("user", "hi"),
            ("assistant", "Hello there, how can I help you today?"),
        ]
        usage = await services.store.usage.for_turn(outcome.turn_id)
        assert len(usage) == 1 and usage[0].prompt_tokens > 0 and usage[0].completion_tokens > 0
        assert usage[0].cost_usd > 0
    finally:
        await services.close()


async def test_responses_wire_is_stateless_and_sends_instructions(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(openai_wire_api="responses"))
    try:
        await services.engine.handle(make_event("hello"), RecordingReply())
        body = sim.requests_to("responses")[0].body
        assert body is not None
        assert body["store"] is False
        assert body["instructions"] == services.settings.models.system_prompt
        assert body["input"][-1] == {"role": "user", "content": "hello"}
    finally:
        await services.close()


async def test_waits_honour_retry_after_between_two_429s(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings())
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    services.model._sleep = record_sleep
    sim.fail_next("chat", Fail(429, retry_after=1.5), times=1)
    sim.fail_next("chat", Fail(429, retry_after_ms=250), times=1)
    reply = RecordingReply()
    try:
        outcome = await services.engine.handle(make_event("hi"), reply)
        assert outcome is not None and outcome.status == "done"
        assert waits == [1.5, 0.25]
        assert sim.attempts["chat"] == 3
    finally:
        await services.close()


async def test_bad_request_is_not_retried(services, sim: Simulator) -> None:
    sim.fail_next("chat", Fail(400, code="invalid_value", message="bad input"), times=5)
    reply = RecordingReply()
    outcome = await services.engine.handle(make_event("hi"), reply)
    assert outcome is not None and outcome.status == "failed"
    assert sim.attempts["chat"] == 1
    assert reply.final and "could not process" in reply.final


async def test_exhausted_retries_answer_the_user_and_record_a_failed_turn(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(openai_retry_attempts=3))
    sim.fail_next("chat", Fail(503), times=10)
    reply = RecordingReply()
    try:
        outcome = await services.engine.handle(make_event("hi"), reply)
        assert outcome is not None and outcome.status == "failed"
        # Exactly our three attempts: the SDK's own retries are off, so attempts do not multiply.
        assert sim.attempts["chat"] == 3
        assert reply.final == "The AI service is having trouble. Please try again shortly."
        turn = await services.store.turns.get(outcome.turn_id)
        assert turn is not None and turn.status == "failed" and "server_error" in turn.error
        conversation = await services.store.conversations.get(make_event("x").key)
        stored = await services.store.messages.all(conversation)  # type: ignore[arg-type]
        assert [m.content for m in stored] == ["hi"], "the user's message is kept"
    finally:
        await services.close()


async def test_insufficient_quota_is_not_retried_and_says_so(services, sim: Simulator) -> None:
    sim.fail_next("chat", Fail(429, code="insufficient_quota", retry_after=1), times=5)
    reply = RecordingReply()
    outcome = await services.engine.handle(make_event("hi"), reply)
    assert outcome is not None and outcome.status == "failed"
    assert sim.attempts["chat"] == 1
    assert reply.final and "quota" in reply.final


async def test_a_model_past_its_shutdown_date_is_warned_about(services, sim: Simulator) -> None:
    sim.models["gpt-6-luna"]["shutdown_date"] = "2026-01-14"
    warnings = await services.engine.check_models()
    assert len(warnings) == 1
    assert "gpt-6-luna was shut down" in warnings[0]


async def test_a_model_far_from_shutdown_is_not_warned_about(services, sim: Simulator) -> None:
    sim.models["gpt-6-luna"]["shutdown_date"] = "2099-01-01"
    assert await services.engine.check_models() == []


async def test_a_redelivered_event_gets_one_reply(services, sim: Simulator) -> None:
    first, second = RecordingReply(), RecordingReply()
    event = make_event("hi", delivery_id="Ev123")
    results = await asyncio.gather(
        services.engine.handle(event, first), services.engine.handle(event, second)
    )
    assert sum(r is not None for r in results) == 1
    assert len(sim.requests_to("chat")) == 1
    assert [first.final, second.final].count(None) == 1


async def test_turns_of_one_conversation_run_in_order_others_run_together(
    services, sim: Simulator
) -> None:
    sim.latency = 1.0
    same = [RecordingReply() for _ in range(2)]
    others = [RecordingReply() for _ in range(10)]
    started = time.perf_counter()
    submissions = [
        await services.engine.submit(make_event(f"q{i}", thread="same"), same[i]) for i in range(2)
    ]
    for i, reply in enumerate(others):
        submissions.append(await services.engine.submit(make_event("hi", thread=f"t{i}"), reply))
    others_done = asyncio.gather(*(s.task for s in submissions[2:]))  # type: ignore[misc]
    await others_done
    elapsed_others = time.perf_counter() - started
    await asyncio.gather(*(s.task for s in submissions[:2]))  # type: ignore[misc]
    elapsed_same = time.perf_counter() - started
    assert elapsed_others < 1.9, "ten conversations with a 1 s model finish together"
    assert elapsed_same >= 2.0, "two turns of one conversation do not overlap"
    assert [r.final for r in same] == ["You said: q0", "You said: q1"]
    second_request = next(
        r.body for r in sim.requests_to("chat") if r.body and "q1" in str(r.body["messages"][-1])
    )
    assert [m["content"] for m in second_request["messages"][1:]] == [
        "q0",
        "You said: q0",
        "q1",
    ], "the second turn saw the first one's answer"


async def test_history_survives_a_restart_on_the_same_file(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    first = await build_services(make_settings())
    await first.engine.handle(make_event("remember the number 42"), RecordingReply())
    await first.close()
    second = await build_services(make_settings())
    try:
        await second.engine.handle(make_event("what number?"), RecordingReply())
        messages = sim.requests_to("chat")[-1].body["messages"]  # type: ignore[index]
        assert [m["content"] for m in messages[1:]] == [
            "remember the number 42",
            "You said: remember the number 42",
            "what number?",
        ]
    finally:
        await second.close()


async def test_a_broken_reply_does_not_break_the_turn(services, sim: Simulator) -> None:
    class Broken(RecordingReply):
        async def append(self, delta: str) -> None:
            raise ConnectionError("platform down")

    outcome = await services.engine.handle(make_event("hi"), Broken())
    assert outcome is not None and outcome.status == "done"


async def test_a_stream_cut_after_text_is_not_retried(services, sim: Simulator) -> None:
    sim.enqueue(Text("This reply will be cut somewhere in the middle of it.", cut_after=20))
    reply = RecordingReply()
    outcome = await services.engine.handle(make_event("hi"), reply)
    assert outcome is not None and outcome.status == "failed"
    assert sim.attempts["chat"] == 1
    assert reply.final == "My reply was cut off by a connection problem. Please ask again."


async def test_no_secret_reaches_the_logs_of_a_failed_turn(
    make_settings: Callable[..., Settings],
) -> None:
    import io

    from core.logging import configure_logging

    secret = "sk-live-SECRET0123456789abcdef"
    stream = io.StringIO()
    async with Simulator(api_key="sk-a-different-key") as strict_sim:
        settings = make_settings(
            openai_api_key=secret, openai_base_url=strict_sim.base_url, moderation_enabled=False
        )
        configure_logging("debug", "json", settings.secrets(), stream=stream)
        services = await build_services(settings)
        try:
            reply = RecordingReply()
            outcome = await services.engine.handle(make_event("hi"), reply)
        finally:
            await services.close()
    assert outcome is not None and outcome.status == "failed"
    assert reply.final and "credentials" in reply.final
    logs = stream.getvalue()
    assert "turn_failed" in logs and "OPENAI_API_KEY" in logs
    assert "SECRET0123456789" not in logs


async def test_turn_logs_name_the_delivery_and_openai_request_ids(services: Services) -> None:
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        await services.engine.handle(make_event("hello", delivery_id="Ev123"), RecordingReply())
    done = next(r for r in logs if r["event"] == "turn_done")
    assert done["delivery_id"] == "Ev123"
    assert str(done["openai_request_id"]).startswith("req_")
