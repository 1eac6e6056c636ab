"""The server-side backend: OpenAI Conversations + Responses, mapped from our conversations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from core.conversation.remote import RECREATED_NOTICE
from core.knowledge.vector_ingest import ingest_to_openai
from simulator import Simulator
from tests.conftest import RecordingReply, make_event


@pytest.fixture
def database_url(on_both_backends: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return on_both_backends


@pytest.fixture
async def remote(make_settings: Callable[..., Settings]) -> AsyncIterator[Services]:
    services = await build_services(make_settings(conversation_backend="openai"))
    yield services
    await services.close()


async def _say(services: Services, text: str, **kw: str) -> RecordingReply:
    reply = RecordingReply()
    await services.engine.handle(make_event(text, **kw), reply)
    return reply


def _responses(sim: Simulator) -> list[dict]:
    return [r.body for r in sim.requests_to("responses") if r.body]


async def test_one_remote_conversation_per_thread_reused_across_turns(
    remote: Services, sim: Simulator
) -> None:
    first = await _say(remote, "hello")
    second = await _say(remote, "again")
    assert first.final == "You said: hello" and second.final == "You said: again"
    assert len(sim.conversations) == 1
    conversation_id = next(iter(sim.conversations))
    bodies = _responses(sim)
    assert [b["conversation"] for b in bodies] == [conversation_id, conversation_id]
    assert bodies[1]["input"] == [{"role": "user", "content": "again"}], "only the new turn is sent"
    assert "store" not in bodies[1], "server-side state is kept"
    assert sim.conversations[conversation_id]["metadata"] == {
        "platform": "console",
        "workspace": "w1",
        "channel": "c1",
        "thread": "t1",
    }
    items = sim.conversations[conversation_id]["items"]
    assert len(items) == 4, "both turns' input and output live in the remote conversation"
    await _say(remote, "other thread", thread="t2")
    assert len(sim.conversations) == 2


async def test_concurrent_first_use_creates_exactly_one_conversation(
    remote: Services, sim: Simulator
) -> None:
    event = make_event("x", thread="fresh")
    conversation = await remote.store.conversations.ensure(event.key)
    ids = await asyncio.gather(
        *(remote.engine.backends.threads.ensure(conversation, event.key) for _ in range(5))
    )
    assert len(set(ids)) == 1
    creates = [r for r in sim.requests_to("conversations") if r.method == "POST"]
    assert len(creates) == 1


async def test_a_losing_creator_in_another_process_adopts_the_winner(
    remote: Services, sim: Simulator
) -> None:
    event = make_event("x", thread="race")
    conversation = await remote.store.conversations.ensure(event.key)
    winner = await remote.store.remote.claim(conversation, "conv_from_other_process")
    assert await remote.engine.backends.threads.ensure(conversation, event.key) == winner


async def test_a_deleted_remote_conversation_is_recreated_with_a_notice(
    remote: Services, sim: Simulator
) -> None:
    await _say(remote, "hello")
    old = next(iter(sim.conversations))
    sim.delete_conversation(old)
    reply = await _say(remote, "are you there?")
    assert reply.final == "You said: are you there?"
    assert reply.notices == [RECREATED_NOTICE]
    new = next(iter(sim.conversations))
    assert new != old
    conversation = await remote.store.conversations.get(make_event("x").key)
    assert await remote.store.remote.history(conversation) == [old, new]  # type: ignore[arg-type]


async def test_reset_starts_a_new_remote_conversation_and_keeps_the_old_id(
    remote: Services, sim: Simulator
) -> None:
    await _say(remote, "hello")
    await remote.engine.command(make_event("x"), "reset")
    await _say(remote, "fresh start")
    assert len(sim.conversations) == 2
    conversation = await remote.store.conversations.get(make_event("x").key)
    assert len(await remote.store.remote.history(conversation)) == 2  # type: ignore[arg-type]


async def test_mappings_survive_a_restart(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    for _ in range(2):
        services = await build_services(make_settings(conversation_backend="openai"))
        await _say(services, "hello")
        await services.close()
    assert len(sim.conversations) == 1


async def test_governance_and_usage_apply_to_the_remote_backend(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(
        make_settings(conversation_backend="openai", budget_user_daily_usd=0.0)
    )
    try:
        refused = await _say(services, "hello")
        assert refused.final is not None and "budget" in refused.final
        assert not sim.requests_to("responses")
    finally:
        await services.close()
    services = await build_services(make_settings(conversation_backend="openai"))
    try:
        sim.flag("dangerous", violence=0.99)
        blocked = await _say(services, "something dangerous")
        assert blocked.final is not None and "violence" in blocked.final
        assert not sim.requests_to("responses")
        done = await _say(services, "fine")
        assert done.final == "You said: fine"
        usage = await services.store.db.fetchall("SELECT purpose, prompt_tokens FROM usage")
        assert [r[0] for r in usage] == ["chat"] and usage[0][1] > 0
    finally:
        await services.close()


async def test_switching_a_channel_to_openai_seeds_the_recent_history(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(admin_user_ids="u1"))
    try:
        await _say(services, "my name is Ada")
        result = await services.engine.command(make_event("x"), "config", "channel backend openai")
        assert result.ok, result.text
        await _say(services, "what is my name?")
        conversation = next(iter(sim.conversations.values()))
        texts = [item["content"][0]["text"] for item in conversation["items"]]
        assert texts[:2] == ["my name is Ada", "You said: my name is Ada"]
    finally:
        await services.close()


async def test_builtin_tools_are_offered_when_configured(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(
        make_settings(
            conversation_backend="openai",
            openai_vector_store_ids="vs_1,vs_2",
            openai_code_interpreter=True,
        )
    )
    try:
        await _say(services, "search the handbook")
        tools = _responses(sim)[0]["tools"]
        assert {"type": "file_search", "vector_store_ids": ["vs_1", "vs_2"]} in tools
        assert {"type": "code_interpreter", "container": {"type": "auto"}} in tools
    finally:
        await services.close()


async def test_ingest_to_openai_uploads_once(
    remote: Services, sim: Simulator, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text("# Handbook\nHolidays: 25 days.")
    (docs / "faq.txt").write_text("Q: parking? A: level 2.")
    first = await ingest_to_openai(remote.openai, remote.store, [docs])
    assert sorted(Path(p).name for p in first.uploaded) == ["faq.txt", "handbook.md"]
    store = sim.vector_stores[first.vector_store_id]
    assert store["file_counts"]["completed"] == 2
    again = await ingest_to_openai(remote.openai, remote.store, [docs])
    assert again.vector_store_id == first.vector_store_id
    assert again.uploaded == [] and len(again.unchanged) == 2
