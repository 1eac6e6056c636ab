"""Conversation memory: token window, truncation, running summary, pins, resets, scoped settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from core.conversation.memory import TRUNCATION_MARKER
from core.events import User
from simulator import Fail, Simulator, Text
from tests.conftest import RecordingReply, make_event


@pytest.fixture
def database_url(on_both_backends: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return on_both_backends


def _sent(sim: Simulator) -> list[dict[str, Any]]:
    """The messages of the last chat turn request (not summaries)."""
    turns = [r for r in sim.requests_to("chat") if r.body and "response_format" not in r.body]
    return turns[-1].body["messages"]  # type: ignore[index]


def _contents(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages]


async def _say(services: Services, text: str, **event: Any) -> str | None:
    reply = RecordingReply()
    await services.engine.handle(make_event(text, **event), reply)
    return reply.final


async def test_the_window_keeps_the_newest_messages_that_fit_by_tokens(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(
        make_settings(context_budget_tokens=900, summary_enabled=False, system_prompt="Be brief.")
    )
    try:
        long_text = "lorem ipsum dolor sit amet " * 90  # ~450 tokens
        history: list[str] = []
        for text in ["short one", long_text, "short two", long_text, "short three"]:
            sim.enqueue(Text("ok"))
            await _say(services, text)
            history += [text, "ok"]
        await _say(services, "final question")
        history.append("final question")
        sent = _contents(_sent(sim))
        assert sent[0] == "Be brief."
        window = sent[1:]
        count = services.engine.tokens.count
        used = count("Be brief.") + sum(count(text) + 3 for text in window)
        assert window == history[-len(window) :], "the window is the newest part of the history"
        assert used <= 900
        next_older = history[-len(window) - 1]
        assert used + count(next_older) + 3 > 900, "nothing more would have fit"
        assert "short one" not in window and len(window) < len(history)
    finally:
        await services.close()


async def test_an_oversized_message_is_truncated_with_a_marker(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(context_budget_tokens=600))
    try:
        await _say(services, "word " * 5000)
        sent = _contents(_sent(sim))
        assert sent[-1].endswith(TRUNCATION_MARKER)
        assert services.engine.tokens.count(sent[-1]) < 600
    finally:
        await services.close()


async def test_summary_runs_past_the_threshold_and_replaces_old_turns(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(
        make_settings(context_budget_tokens=1000, summary_trigger=0.5, summary_keep=0.2)
    )
    try:
        paragraph = "we discussed the quarterly plan and the budget in detail " * 12
        for i in range(4):
            sim.enqueue(Text(f"answer {i}"))
            await _say(services, f"message {i}: {paragraph}")
            await services.engine.summarizer.drain()
        summaries = [r for r in sim.requests_to("chat") if r.body and "response_format" in r.body]
        assert summaries, "a summary call was made"
        fmt = summaries[0].body["response_format"]  # type: ignore[index]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        await _say(services, "and now?")
        sent = _contents(_sent(sim))
        assert any(text.startswith("Summary of the earlier conversation") for text in sent)
        assert not any(text.startswith("message 0:") for text in sent), "summarized turns are gone"
        assert sent[-1] == "and now?"
        usage = await services.store.db.fetchall("SELECT purpose FROM usage")
        assert {row[0] for row in usage} == {"chat", "summary"}
    finally:
        await services.close()


async def test_summary_on_the_responses_wire_uses_a_strict_text_format(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(
        make_settings(
            openai_wire_api="responses",
            context_budget_tokens=800,
            summary_trigger=0.3,
            summary_keep=0.1,
        )
    )
    try:
        for i in range(3):
            await _say(services, f"fact {i}: " + "the project codename is heron " * 20)
            await services.engine.summarizer.drain()
        calls = [r for r in sim.requests_to("responses") if r.body and "text" in r.body]
        assert calls, "a summary call was made"
        fmt = calls[0].body["text"]["format"]  # type: ignore[index]
        assert fmt["type"] == "json_schema" and fmt["strict"] is True
        conversation = await services.store.conversations.get(make_event("x").key)
        summary = await services.store.summaries.get(conversation)  # type: ignore[arg-type]
        assert summary.covers_until > 0 and summary.text
    finally:
        await services.close()


async def test_a_failed_summary_leaves_the_window_working_and_is_retried(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(
        make_settings(
            context_budget_tokens=700,
            summary_trigger=0.3,
            summary_keep=0.1,
            summary_retry_seconds=0,
            openai_retry_attempts=1,
        )
    )
    try:
        sim.enqueue(Text("first answer"))
        await _say(services, "topic one " * 60)
        sim.enqueue(Text("second answer"), Fail(500))  # the summary call after this turn fails
        await _say(services, "topic two " * 60)
        await services.engine.summarizer.drain()
        conversation = await services.store.conversations.get(make_event("x").key)
        summary = await services.store.summaries.get(conversation)  # type: ignore[arg-type]
        assert summary.failures == 1 and summary.empty
        assert await _say(services, "still there?") == "You said: still there?"
        await services.engine.summarizer.drain()
        summary = await services.store.summaries.get(conversation)  # type: ignore[arg-type]
        assert summary.failures == 0 and not summary.empty, "the retry succeeded"
    finally:
        await services.close()


async def test_pins_are_always_sent_and_survive_a_restart(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(context_budget_tokens=600))
    event = make_event("x")
    result = await services.engine.command(event, "pin", "the deadline is May 3")
    assert result.ok and "#1" in result.text
    for i in range(6):
        await _say(services, f"filler {i} " + "blah " * 80)
    await services.close()
    services = await build_services(make_settings(context_budget_tokens=600))
    try:
        await _say(services, "when is the deadline?")
        sent = _contents(_sent(sim))
        assert "the deadline is May 3" in sent[1], "pins come right after the system prompt"
        memory = await services.engine.command(event, "memory")
        assert "#1 the deadline is May 3" in memory.text
        assert (await services.engine.command(event, "unpin", "1")).ok
        await _say(services, "and now?")
        assert not any("May 3" in text for text in _contents(_sent(sim))[:2])
    finally:
        await services.close()


async def test_reset_hides_earlier_turns(services: Services, sim: Simulator) -> None:
    await _say(services, "my name is Ada")
    result = await services.engine.command(make_event("x"), "reset")
    assert result.public
    await _say(services, "what is my name?")
    assert _contents(_sent(sim))[1:] == ["what is my name?"]


async def test_two_conversations_never_see_each_other(services: Services, sim: Simulator) -> None:
    await _say(services, "secret of thread A", thread="A")
    await _say(services, "hello from B", thread="B")
    assert _contents(_sent(sim))[1:] == ["hello from B"]


async def test_scoped_overrides_apply_narrowest_last(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(admin_user_ids="admin1"))
    try:
        admin = make_event("x", user="admin1")
        for scope, value in (("workspace", "W rule"), ("channel", "C rule"), ("thread", "T rule")):
            result = await services.engine.command(
                admin, "config", f'{scope} system_prompt "{value}"'
            )
            assert result.ok, result.text
        assert (await services.engine.command(admin, "config", "channel model gpt-6.1-sol")).ok
        assert (await services.engine.command(admin, "config", "thread temperature 0.2")).ok
        await _say(services, "hi")
        body = sim.requests_to("chat")[-1].body
        assert body is not None
        prompt = body["messages"][0]["content"]
        assert prompt.index("W rule") < prompt.index("C rule") < prompt.index("T rule")
        assert body["model"] == "gpt-6.1-sol" and body["temperature"] == 0.2
        await _say(services, "elsewhere", channel="other")
        other = sim.requests_to("chat")[-1].body
        assert other is not None and other["model"] == "gpt-6-luna"
        assert "C rule" not in other["messages"][0]["content"]
    finally:
        await services.close()


async def test_only_admins_change_settings(services: Services) -> None:
    event = make_event("x")
    result = await services.engine.command(event, "config", "channel model gpt-6.1-sol")
    assert not result.ok and "admin" in result.text
    admin_event = make_event("x")
    admin_event = type(admin_event)(
        key=admin_event.key, user=User("boss", "Boss", is_admin=True), text="", delivery_id="z"
    )
    bad = await services.engine.command(admin_event, "config", "channel temperature 9")
    assert not bad.ok and "temperature" in bad.text


async def test_the_summary_survives_a_restart(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(context_budget_tokens=800, summary_trigger=0.3, summary_keep=0.1)
    services = await build_services(settings)
    for i in range(3):
        await _say(services, f"fact {i}: " + "the project codename is heron " * 20)
        await services.engine.summarizer.drain()
    await services.close()
    services = await build_services(settings)
    try:
        await _say(services, "what is the codename?")
        sent = _contents(_sent(sim))
        assert sent[1].startswith("Summary of the earlier conversation")
        assert not any(text.startswith("fact 0:") for text in sent)
    finally:
        await services.close()
