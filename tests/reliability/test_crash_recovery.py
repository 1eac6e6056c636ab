"""kill -9 before, during and after a streamed reply has started: the next process runs the turn
again, once, replacing what was half shown; a turn that keeps dying is closed with the notice
(on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from core.conversation.recovery import INTERRUPTED
from core.store import connect
from core.store.processes import MAX_RUNS
from simulator import Fail, Simulator, Text, ToolCalls
from tests.fakes.slack import FakeSlack, sign
from tests.reliability.processes import BotProcess
from tests.slack.rig import event_callback, mention

SECRET = "test-signing-secret"


def _env(slack: FakeSlack, sim: Simulator, db: Path | str) -> dict[str, str]:
    """A `web` process's environment; `db` is a SQLite file or a PostgreSQL URL."""
    return {
        "PORT": "0",
        "DATABASE_URL": f"sqlite:///{db}" if isinstance(db, Path) else db,
        "OPENAI_API_KEY": "sk-test-key-0123456789",
        "OPENAI_BASE_URL": sim.base_url,
        "OPENAI_WIRE_API": "chat",
        "OPENAI_RETRY_INITIAL_WAIT": "0",
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "MODERATION_ENABLED": "false",
    }


async def _mention(
    port: int, text: str, ts: str, event_id: str, thread_ts: str | None = None
) -> None:
    body = json.dumps(event_callback(mention(text, ts, thread_ts), event_id)).encode()
    headers = {**sign(SECRET, body), "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as response,
    ):
        assert response.status == 200


def _interrupted_posts(slack: FakeSlack) -> list[tuple[str, str]]:
    return [
        (m["text"], m.get("thread_ts"))
        for m in slack.messages.values()
        if "interrupted" in m["text"]
    ]


def _in_thread(slack: FakeSlack, thread: str) -> list[dict[str, object]]:
    """The bot's messages in a thread (posted or streamed), oldest first."""
    found = [m for m in slack.messages.values() if m.get("thread_ts") == thread]
    return sorted(found, key=lambda m: str(m["ts"]))


async def test_a_turn_killed_mid_stream_is_run_again_replacing_the_partial_reply(
    sim: Simulator, on_both_backends: str
) -> None:
    db = on_both_backends
    async with FakeSlack() as slack:
        env = _env(slack, sim, db)
        first = await BotProcess.start("web", env)
        try:
            sim.enqueue(Text("A long answer that streams slowly. " * 40, pace=0.2))
            await _mention(await first.port(), "tell me everything", "100.000001", "Ev1")
            await slack.wait_for("chat.appendStream", timeout=30)  # the reply is half-posted
        finally:
            first.kill()
            await first.stop()
        [partial] = _in_thread(slack, "100.000001")

        second = await BotProcess.start("web", env)
        try:
            sim.enqueue(Text("The whole answer, from the start."))
            await second.wait_for_log("turns_requeued")
            await _wait_for_turns(db, 1)
            rerun = await second.wait_for_log("turn_rerun")
            assert rerun["replacing"] == partial["ts"]
            sim.enqueue(Text("Here it is again, in short."))
            await _mention(await second.port(), "again please", "100.000002", "Ev2", "100.000001")
            await _wait_for_turns(db, 2)
        finally:
            assert await second.stop() == 0

        third = await BotProcess.start("web", env)  # a clean stop leaves nothing to recover
        try:
            await third.port()
        finally:
            assert await third.stop() == 0
            assert not [r for r in third.logs if r.get("event") == "turns_requeued"]
        assert _interrupted_posts(slack) == []
        first_answer, second_answer = _in_thread(slack, "100.000001")
        assert first_answer["ts"] == partial["ts"], "the half-streamed message was rewritten"
        assert first_answer["text"] == "The whole answer, from the start."
        assert first_answer.get("streaming") is False
        assert second_answer["text"] == "Here it is again, in short."

    async with connect(db) as store:
        turns = await store.fetchall("SELECT status, runs FROM turns ORDER BY id")
        contents = [r[0] for r in await store.fetchall("SELECT content FROM messages ORDER BY id")]
    assert [tuple(t) for t in turns] == [("done", 2), ("done", 1)], "started twice, then once"
    assert contents == [
        "tell me everything",
        "The whole answer, from the start.",
        "again please",
        "Here it is again, in short.",
    ]
    sent = sim.requests_to("chat")[-1].body["messages"]  # type: ignore[index]
    assert [m["content"] for m in sent[1:]] == contents[:3], "the conversation carries on"


async def test_a_turn_killed_before_anything_was_shown_is_answered_by_the_next_process(
    sim: Simulator, on_both_backends: str
) -> None:
    db = on_both_backends
    async with FakeSlack() as slack:
        env = _env(slack, sim, db)
        first = await BotProcess.start("web", env)
        try:
            sim.enqueue(Text("never sent", delay=60))  # the model takes a minute to start
            await _mention(await first.port(), "what's new?", "150.000001", "EvQ")
            await sim.wait_for("chat", timeout=30)
        finally:
            first.kill()
            await first.stop()
        assert _in_thread(slack, "150.000001") == [], "nothing was shown"
        second = await BotProcess.start("web", env)
        try:
            sim.enqueue(Text("Answered after the restart."))
            await second.wait_for_log("turns_requeued")
            await _wait_for_turns(db, 1)
        finally:
            assert await second.stop() == 0
        assert [m["text"] for m in _in_thread(slack, "150.000001")] == [
            "Answered after the restart."
        ]
        assert _interrupted_posts(slack) == []
    async with connect(db) as store:
        assert [tuple(r) for r in await store.fetchall("SELECT status FROM turns")] == [("done",)]


async def test_a_turn_killed_while_a_tool_runs_is_run_again_after_restart(
    sim: Simulator, on_both_backends: str
) -> None:
    db = on_both_backends
    async with FakeSlack() as slack:
        env = _env(slack, sim, db)
        first = await BotProcess.start("web", env)
        try:
            sim.enqueue(ToolCalls.of(("generate_image", {"prompt": "a lighthouse at dusk"})))
            sim.fail_next("images", Fail(500, delay=60))  # the tool is busy for a minute
            await _mention(await first.port(), "draw a lighthouse", "200.000001", "EvTool")
            await sim.wait_for("images", timeout=30)  # the tool is running: its call is out
        finally:
            first.kill()
            await first.stop()
        second = await BotProcess.start("web", env)
        try:
            sim.enqueue(Text("I can describe it instead: a white tower, orange sky."))
            await second.wait_for_log("turns_requeued")
            await _wait_for_turns(db, 1)
        finally:
            assert await second.stop() == 0
        assert _interrupted_posts(slack) == []
        assert [m["text"] for m in _in_thread(slack, "200.000001")] == [
            "I can describe it instead: a white tower, orange sky."
        ]
    async with connect(db) as store:
        assert [tuple(r) for r in await store.fetchall("SELECT status FROM turns")] == [("done",)]


async def test_a_turn_that_keeps_killing_its_process_is_closed_with_the_notice(
    sim: Simulator, on_both_backends: str
) -> None:
    """A turn started MAX_RUNS times without finishing is not run again: it is closed once."""
    db = on_both_backends
    async with FakeSlack() as slack:
        env = _env(slack, sim, db)
        for attempt in range(MAX_RUNS):
            process = await BotProcess.start("web", env)
            try:
                sim.enqueue(Text("never sent", delay=60))
                if attempt == 0:
                    await _mention(await process.port(), "crash me", "250.000001", "EvP")
                else:
                    await process.wait_for_log("turns_requeued")
                await sim.wait_for("chat", count=attempt + 1, timeout=30)
            finally:
                process.kill()
                await process.stop()
        last = await BotProcess.start("web", env)
        try:
            await last.wait_for_log("turns_interrupted")
            await slack.wait_for("chat.postMessage", timeout=30)
        finally:
            assert await last.stop() == 0
        assert _interrupted_posts(slack) == [(INTERRUPTED, "250.000001")]
    async with connect(db) as store:
        rows = await store.fetchall("SELECT status, runs FROM turns")
    assert [tuple(r) for r in rows] == [("interrupted", MAX_RUNS)]


async def _wait_for_turns(db: str, done: int) -> None:
    deadline = time.monotonic() + 30
    async with connect(db) as store:
        while time.monotonic() < deadline:
            row = await store.fetchone(
                "SELECT COUNT(*) FROM turns WHERE status IN ('done', 'interrupted')"
            )
            if row is not None and row[0] >= done:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the turn did not finish")
