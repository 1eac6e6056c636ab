"""kill -9 in the middle of a streamed reply; the next process closes the turn, exactly once
(on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from core.conversation.recovery import INTERRUPTED
from core.store import connect
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


async def test_a_turn_killed_mid_stream_is_closed_once_after_restart(
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

        second = await BotProcess.start("web", env)
        try:
            await second.wait_for_log("turns_interrupted")
            await slack.wait_for("chat.stopStream", timeout=30)
            assert _interrupted_posts(slack) == [(INTERRUPTED, "100.000001")], "in the thread"
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
            assert not [r for r in third.logs if r.get("event") == "turns_interrupted"]
        assert len(_interrupted_posts(slack)) == 1, "exactly once"

    async with connect(db) as store:
        turns = await store.fetchall("SELECT status FROM turns ORDER BY id")
        contents = [r[0] for r in await store.fetchall("SELECT content FROM messages ORDER BY id")]
    assert [t[0] for t in turns] == ["interrupted", "done"]
    assert contents == [
        "tell me everything",
        INTERRUPTED,
        "again please",
        "Here it is again, in short.",
    ]
    sent = sim.requests_to("chat")[-1].body["messages"]  # type: ignore[index]
    assert [m["content"] for m in sent[1:]] == contents[:3], "the conversation carries on"


async def test_a_turn_killed_while_a_tool_runs_is_closed_after_restart(
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
            await second.wait_for_log("turns_interrupted")
            await slack.wait_for("chat.stopStream", timeout=30)
            assert _interrupted_posts(slack) == [(INTERRUPTED, "200.000001")]
        finally:
            assert await second.stop() == 0
    async with connect(db) as store:
        assert [tuple(r) for r in await store.fetchall("SELECT status FROM turns")] == [
            ("interrupted",)
        ]


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
