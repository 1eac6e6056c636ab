"""The data's lifecycle on SQLite and PostgreSQL: erasing one person's text (and their
server-side conversations), the hourly retention pass claimed by one process, and exports."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from core.events import ConversationKey, Platform
from core.lifecycle import Exporter, Retention, erase_person
from core.store import Database
from core.store.erasure import REMOVED_EXCERPT, REMOVED_TEXT
from simulator import Fail, Simulator
from tests.admin.finetune import check_fine_tune_file
from tests.conftest import RecordingReply, make_event

DAY = 86_400


@pytest.fixture
async def make(
    make_settings: Callable[..., Settings], on_both_backends: str
) -> AsyncIterator[Callable[..., Any]]:
    """Services on the backend under test (several share one database: several processes)."""
    built: list[Services] = []

    async def build(**overrides: object) -> Services:
        values: dict[str, object] = {"database_url": on_both_backends, **overrides}
        services = await build_services(make_settings(**values))
        built.append(services)
        return services

    yield build
    for services in built:
        await services.close()


async def turn(services: Services, text: str, **event: Any) -> int:
    outcome = await services.engine.handle(make_event(text, **event), RecordingReply())
    assert outcome is not None
    return outcome.turn_id


async def rows(services: Services, sql: str, *params: object) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await services.store.db.fetchall(sql, params)]


async def spend(services: Services) -> tuple[int, int, float]:
    [(prompt, completion, cost)] = await rows(
        services,
        "SELECT SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd) FROM usage",
    )
    return int(prompt), int(completion), float(cost)


async def test_erasing_a_person_removes_their_text_everywhere_and_keeps_the_accounts(
    make, sim: Simulator
) -> None:  # type: ignore[no-untyped-def]
    services = await make(moderation_keep_text=True)
    store = services.store
    mine = await turn(services, "my secret plan is pancakes", user="u1", thread="shared")
    theirs = await turn(services, "and I like waffles", user="u2", thread="shared")
    await store.scoped.set("channel:console:w1:remote", "backend", "openai", "admin")
    await turn(services, "server-side hello", user="u1", channel="remote", thread="r")
    await turn(services, "another workspace", user="u1", workspace="w2", thread="x")
    sim.flag("forbidden-words", harassment=0.99)
    await turn(services, "forbidden-words from u1", user="u1", thread="mod")
    shared = await store.conversations.get(ConversationKey(Platform.CONSOLE, "w1", "c1", "shared"))
    assert shared is not None
    await store.pins.add(shared, "u1's pinned note", 4, "u1")
    await store.pins.add(shared, "u2's pinned note", 4, "u2")
    await store.interactive.rate(mine, "u1", "positive", "great answer, pancakes")
    await store.interactive.rate(theirs, "u2", "negative", "waffles deserve better")
    from core.store.memory import Summary

    await store.summaries.save(shared, Summary("u1 wants pancakes", ("pancakes",)), "m")
    [remote_id] = await store.remote.history(
        await store.conversations.get(ConversationKey(Platform.CONSOLE, "w1", "remote", "r"))  # type: ignore[arg-type]
    )
    assert remote_id in sim.conversations
    before = await spend(services)

    report = await erase_person(store, services.engine.backends.threads, "u1", actor="tester")

    assert report.complete and report.remote_deleted == 1
    assert report.erased.messages == 4 and report.erased.answers >= 3
    assert report.erased.pins == 1 and report.erased.moderation_excerpts == 1
    assert report.erased.feedback_comments == 1 and report.erased.summaries == 1
    everything = " ".join(str(r) for r in await rows(services, "SELECT * FROM messages"))
    assert "pancakes" not in everything and "server-side hello" not in everything
    assert "waffles" in everything, "the other person's messages stay"
    for content, removed, name in await rows(
        services, "SELECT content, removed, user_name FROM messages WHERE user_id = 'u1'"
    ):
        assert (content, removed, name) == (REMOVED_TEXT, "erasure", "")
    answers = await rows(
        services,
        "SELECT m.content FROM messages m JOIN turns t ON t.id = m.turn_id "
        "WHERE m.role = 'assistant' AND t.id = ?",
        theirs,
    )
    assert answers and all(a[0] != REMOVED_TEXT for a in answers), "u2's answers stay"
    assert [p.text for p in await store.pins.list(shared)] == ["u2's pinned note"]
    [(excerpt,)] = await rows(services, "SELECT excerpt FROM moderation_events")
    assert excerpt == REMOVED_EXCERPT
    comments = dict(await rows(services, "SELECT user_id, comment FROM feedback"))
    assert comments == {"u1": "", "u2": "waffles deserve better"}
    assert (await store.summaries.get(shared)).empty
    assert remote_id not in sim.conversations, "deleted at OpenAI"
    assert await rows(services, "SELECT * FROM remote_conversations") == []
    assert await spend(services) == before, "tokens and cost still add up"
    [entry] = await store.audit.recent(action_prefix="purge.")
    assert (entry.actor, entry.action, entry.target) == ("tester", "purge.user", "u1")
    assert entry.detail["messages"] == 4 and entry.detail["remote_deleted"] == 1

    again = await erase_person(store, services.engine.backends.threads, "u1", actor="tester")
    assert again.erased == type(again.erased)() and again.remote_deleted == 0, "idempotent"
    await turn(services, "life goes on", user="u2", channel="remote", thread="r")
    assert (
        len(
            await store.remote.history(
                await store.conversations.get(
                    ConversationKey(Platform.CONSOLE, "w1", "remote", "r")
                )  # type: ignore[arg-type]
            )
        )
        == 1
    ), "a new server-side conversation for what remains"


async def test_an_unreachable_openai_leaves_the_mapping_to_try_again(make, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    services = await make(openai_retry_attempts=1)
    await services.store.scoped.set("workspace:console:w1", "backend", "openai", "admin")
    await turn(services, "remote words", user="u1")
    sim.fail_next("conversations", Fail(503, message="down"), times=5)
    report = await erase_person(services.store, services.engine.backends.threads, "u1", actor="t")
    assert not report.complete and len(report.remote_failed) == 1
    assert "run it again" in report.summary()
    assert len(await rows(services, "SELECT * FROM remote_conversations")) == 1
    sim.reset()
    done = await erase_person(services.store, services.engine.backends.threads, "u1", actor="t")
    assert done.complete and done.remote_deleted == 1
    assert await rows(services, "SELECT * FROM remote_conversations") == []


async def age(db: Database, days: float) -> None:
    """Make everything stored so far `days` older."""
    shift = days * DAY
    for table, column in (
        ("messages", "created_at"),
        ("turns", "created_at"),
        ("usage", "created_at"),
        ("moderation_events", "created_at"),
        ("pins", "created_at"),
        ("summaries", "updated_at"),
        ("feedback", "created_at"),
        ("conversations", "updated_at"),
    ):
        await db.execute(f"UPDATE {table} SET {column} = {column} - ?", (shift,))


async def test_retention_removes_old_text_keeps_new_text_and_usage(make, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    services = await make(moderation_keep_text=True)
    store = services.store
    await store.scoped.set("channel:console:w1:old", "backend", "openai", "admin")
    old = await turn(services, "an old message about tulips", channel="old")
    sim.flag("nasty", harassment=0.99)
    await turn(services, "nasty old words", channel="old", thread="m")
    conversation = await store.conversations.get(
        ConversationKey(Platform.CONSOLE, "w1", "old", "t1")
    )
    assert conversation is not None
    await store.pins.add(conversation, "old pin", 2, "u1")
    await store.interactive.rate(old, "u1", "positive", "old comment")
    [remote_id] = await store.remote.history(conversation)
    await age(services.store.db, 40)
    await turn(services, "a fresh message about roses", channel="new")
    before = await spend(services)

    report = await Retention(store, services.engine.backends.threads, days=30).purge()

    # the tulips question and its answer, the blocked question (a refusal stores no answer)
    assert report.expired.messages == 3 and report.remote_deleted == 1
    text = " ".join(str(r) for r in await rows(services, "SELECT content FROM messages"))
    assert "tulips" not in text and "nasty" not in text and "roses" in text
    assert await store.pins.list(conversation) == []
    [(excerpt,)] = await rows(services, "SELECT excerpt FROM moderation_events")
    assert excerpt == REMOVED_EXCERPT
    assert await rows(services, "SELECT comment FROM feedback") == [("",)]
    assert remote_id not in sim.conversations
    assert await spend(services) == before
    removed = await rows(services, "SELECT DISTINCT removed FROM messages WHERE removed != ''")
    assert removed == [("retention",)]
    [entry] = await store.audit.recent(action_prefix="purge.retention")
    assert entry.actor == "retention" and entry.detail["messages"] == report.expired.messages
    quiet = await Retention(store, services.engine.backends.threads, days=30).purge()
    assert not quiet.expired.anything
    assert len(await store.audit.recent(action_prefix="purge.")) == 1, "quiet passes: no entry"


async def test_one_process_at_a_time_runs_the_hourly_pass(make) -> None:  # type: ignore[no-untyped-def]
    first, second = await make(), await make()
    passes = [
        Retention(s.store, s.engine.backends.threads, days=30) for s in (first, second, first)
    ]
    results = await asyncio.gather(*(p.run_once() for p in passes))
    assert sum(r is not None for r in results) == 1, "claimed once"
    assert await passes[1].run_once() is None, "not due again within the hour"
    assert await first.store.jobs.last_done("retention") is not None
    await first.store.db.execute("UPDATE job_leases SET last_done_at = last_done_at - 3601")
    assert await passes[1].run_once() is not None, "due an hour later, whichever process"


async def test_a_lease_held_by_a_process_that_died_runs_out(make) -> None:  # type: ignore[no-untyped-def]
    services = await make()  # claims the pass, then "dies" without finishing it
    assert await services.store.jobs.claim("retention", interval=3600, lease=60)
    other = await make()
    live = Retention(other.store, other.engine.backends.threads, days=1, lease=60)
    assert await live.run_once() is None, "held"
    await services.store.db.execute("UPDATE job_leases SET lease_until = ?", (time.time() - 1,))
    assert await live.run_once() is not None, "the lease ran out"


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_a_conversation_and_a_channel_export_as_json_lines(make, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    services = await make()
    await turn(services, "mail me at ada@example.com", thread="a")
    await turn(services, "second question", thread="a")
    await turn(services, "another thread", thread="b")
    await turn(services, "elsewhere", channel="c2")
    exporter = Exporter(services.store, services.settings)
    out = io.StringIO()
    report = await exporter.conversation("console:w1:c1:a", out, actor="tester")
    assert report is not None and report.turns == 2 and report.lines == 4
    records = lines(out.getvalue())
    assert [r["role"] for r in records] == ["user", "assistant", "user", "assistant"]
    assert {r["conversation"] for r in records} == {"console:w1:c1:a"}
    assert records[0]["content"].startswith("mail me at [EMAIL_")
    assert "ada@example.com" not in out.getvalue(), "redacted by default"
    assert records[0]["turn_status"] == "done" and records[1]["model"]
    raw = io.StringIO()
    await exporter.conversation("console:w1:c1:a", raw, actor="tester", redacted=False)
    assert "ada@example.com" in raw.getvalue()
    channel = io.StringIO()
    report = await exporter.channel("c1", channel, actor="tester")
    assert report.conversations == 2 and report.turns == 3
    assert "elsewhere" not in channel.getvalue()
    assert await exporter.conversation("console:w1:c1:nope", io.StringIO(), actor="t") is None
    actions = [e.action for e in await services.store.audit.recent(action_prefix="export.")]
    assert actions == ["export.channel", "export.conversation", "export.conversation"]


async def test_fine_tuning_data_comes_from_liked_answers_in_openais_format(
    make, sim: Simulator
) -> None:  # type: ignore[no-untyped-def]
    services = await make(system_prompt="You are the team assistant.")
    store = services.store
    await store.scoped.set("channel:console:w1:c1", "system_prompt", "Be brief here.", "admin")
    first = await turn(services, "what is 2+2? mail bob@example.com", thread="liked")
    second = await turn(services, "and 3+3?", thread="liked")
    third = await turn(services, "thanks", thread="liked")
    disputed = await turn(services, "disputed", thread="mixed")
    await turn(services, "never rated", thread="none")
    await store.interactive.rate(second, "u1", "positive")
    await store.interactive.rate(disputed, "u1", "positive")
    await store.interactive.rate(disputed, "u2", "negative")
    del first, third
    out = io.StringIO()
    report = await Exporter(store, services.settings).fine_tune(out, actor="tester")
    examples = check_fine_tune_file(out.getvalue())
    assert report.lines == 1 == len(examples)
    [chat] = [e["messages"] for e in examples]
    assert chat[0] == {
        "role": "system",
        "content": "You are the team assistant.\n\nBe brief here.",
    }
    assert [m["role"] for m in chat[1:]] == ["user", "assistant", "user", "assistant"]
    assert [m.get("weight") for m in chat if m["role"] == "assistant"] == [0, 1]
    assert "bob@example.com" not in out.getvalue() and "[EMAIL_1]" in chat[1]["content"]
    assert "thanks" not in out.getvalue(), "the example ends with the last liked answer"
    [entry] = await store.audit.recent(action_prefix="export.")
    assert entry.action == "export.fine-tune" and entry.detail["lines"] == 1


async def test_erased_and_failed_turns_are_left_out_of_fine_tuning(make, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    services = await make()
    store = services.store
    kept = await turn(services, "keep me", user="u1", thread="t")
    sim.fail_next("chat", Fail(400, message="bad request"))
    failed = await turn(services, "this one fails", user="u1", thread="t")
    gone = await turn(services, "erase me", user="u2", thread="t")
    for turn_id in (kept, failed, gone):
        await store.interactive.rate(turn_id, "u3", "positive")
    await erase_person(store, services.engine.backends.threads, "u2", actor="t")
    out = io.StringIO()
    await Exporter(store, services.settings).fine_tune(out, actor="t")
    [example] = check_fine_tune_file(out.getvalue())
    texts = [m["content"] for m in example["messages"]]
    assert "keep me" in texts and "this one fails" not in texts and "erase me" not in texts
    assert REMOVED_TEXT not in out.getvalue()
