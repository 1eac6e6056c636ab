"""The platform's own context on Slack, through the fake Web API: read_channel / read_thread with
the permission rules, rate limits, the earlier messages of a thread the bot is mentioned into,
and /summarize."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bots.settings import AppSettings as Settings
from core.events import ConversationKey, Event, Platform, User
from simulator import Simulator, Text, ToolCalls
from tests.conftest import RecordingReply
from tests.slack.rig import Rig, mention, open_rig

_count = iter(range(10**6))


@pytest.fixture
async def rig(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> AsyncIterator[Rig]:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as opened:
        slack = opened.slack
        slack.add_channel("C1", "general", members=["U1", "U2"])
        slack.add_channel("C2", "random", members=["U2"])
        slack.add_channel("CP", "secret", private=True, members=["U1"])
        slack.add_channel("CX", "elsewhere", members=["U1"], bot=False)
        slack.add_dm("D1", "U1")
        slack.post("C1", "U2", "we ship on friday", ts="90.000001")
        slack.post("C1", "U1", "great", ts="91.000001")
        slack.post("CP", "U1", "the secret plan", ts="92.000001")
        slack.post("C2", "U2", "cats", ts="93.000001")
        yield opened


async def _tool(
    rig: Rig, name: str, arguments: dict[str, Any], *, channel: str = "C1", thread: str = "main"
) -> str:
    """Run one tool call the model makes in a conversation of user U1 there; its output."""
    rig.sim.enqueue(ToolCalls.of((name, arguments)), Text("ok"))
    event = Event(
        key=ConversationKey(Platform.SLACK, "T1", channel, thread),
        user=User("U1", "ada"),
        text=f"use {name}",
        delivery_id=f"ctx-{next(_count)}",
    )
    await rig.services.engine.handle(event, RecordingReply())
    body = rig.sim.requests_to("chat")[-1].body or {}
    return [m["content"] for m in body["messages"] if m["role"] == "tool"][-1]


def _channel(channel: str | None = None, since: str | None = None) -> dict[str, Any]:
    return {"channel": channel, "since": since, "limit": None, "cursor": None}


async def test_read_channel_and_read_thread(rig: Rig) -> None:
    here = await _tool(rig, "read_channel", _channel())
    assert here.startswith("2 messages from #general:\n")
    assert "User U2: we ship on friday" in here and here.index("friday") < here.index("great")
    rig.slack.post("C1", "U2", "the thread starts", ts="95.000001")
    rig.slack.post("C1", "U1", "a reply", ts="95.000002", thread_ts="95.000001")
    thread = await _tool(rig, "read_thread", {"limit": None, "cursor": None}, thread="95.000001")
    assert "the thread starts" in thread and "a reply" in thread and "friday" not in thread
    main = await _tool(rig, "read_thread", {"limit": None, "cursor": None})
    assert main == "error: this conversation is not in a thread; use read_channel instead"


async def test_paging_and_the_token_cap(rig: Rig) -> None:
    for i in range(30):
        rig.slack.post("C1", "U2", f"message number {i} " + "word " * 200, ts=f"{100 + i}.000001")
    first = await _tool(rig, "read_channel", {**_channel(), "limit": 10})
    assert "message number 29" in first and "message number 19" not in first
    assert "call again with cursor='10'" in first
    older = await _tool(rig, "read_channel", {**_channel(), "limit": 10, "cursor": "10"})
    assert "message number 19" in older and "message number 29" not in older
    capped = await _tool(rig, "read_channel", {**_channel(), "limit": 200})
    assert "older ones left out to stay within 4000 tokens" in capped


async def test_only_channels_the_asker_is_in_and_private_ones_only_privately(rig: Rig) -> None:
    assert await _tool(rig, "read_channel", _channel("<#C2|random>")) == (
        "error: you are not a member of #random, so I won't read it for you"
    )
    assert await _tool(rig, "read_channel", _channel("CP")) == (
        "error: #secret is private: I only use its messages when answering in #secret itself "
        "or in a direct message with you"
    )
    assert "the secret plan" in await _tool(rig, "read_channel", _channel("CP"), channel="D1")
    assert "the secret plan" in await _tool(rig, "read_channel", _channel(), channel="CP")
    assert await _tool(rig, "read_channel", _channel("CX")) == (
        "error: I can't read #elsewhere: I'm not a member of it (invite me) or it does not exist"
    )
    assert (await _tool(rig, "read_channel", _channel("C404"))).startswith("error: I can't read")
    assert (await _tool(rig, "read_channel", _channel("not a channel!"))).startswith(
        "error: 'not a channel!' is not a channel I can look up"
    )
    leaked = json.dumps([r.body for r in rig.sim.requests_to("chat")])
    assert leaked.count("the secret plan") == 2, "only the DM and the channel itself saw it"


async def test_slack_rate_limits_on_history_are_said_with_the_wait(rig: Rig) -> None:
    rig.slack.fail_next("conversations.history", "ratelimited", status=429, retry_after=0, times=4)
    output = await _tool(rig, "read_channel", _channel())
    assert output == "error: Slack is rate limiting history reads; try again in 1 s"
    assert len(rig.slack.calls_to("conversations.history")) == 4, "slack_sdk retried 3 times"


async def test_a_mention_into_a_thread_sees_its_earlier_messages(rig: Rig) -> None:
    rig.slack.post("C1", "U2", "Should we move the launch?", ts="300.000001")
    rig.slack.post("C1", "U3", "Only if QA is not done", ts="300.000002", thread_ts="300.000001")
    rig.slack.post(
        "C1", "U1", "<@UBOT> summarize this thread", ts="300.000003", thread_ts="300.000001"
    )
    await rig.event(mention("summarize this thread", ts="300.000003", thread_ts="300.000001"))
    await rig.slack.wait_for("chat.stopStream")
    first = rig.sim.requests_to("chat")[-1].body or {}
    contents = [m["content"] for m in first["messages"][1:]]
    assert contents[0].startswith("Earlier messages in this thread, from before I was mentioned")
    assert "Should we move the launch?" in contents[0] and "Only if QA is not done" in contents[0]
    assert "summarize this thread" not in contents[0], "the mention itself is the question"
    assert contents[1] == "summarize this thread"
    await rig.event(mention("thanks", ts="300.000009", thread_ts="300.000001"))
    await rig.slack.wait_for("chat.stopStream", count=2)
    later = rig.sim.requests_to("chat")[-1].body or {}
    assert not any("Earlier messages" in str(m["content"]) for m in later["messages"]), (
        "only a conversation's first turn reads the thread"
    )


async def test_summarize_a_channel(rig: Rig) -> None:
    now = time.time()
    rig.slack.post("C1", "U2", "deploy went fine", ts=f"{now - 60:.6f}")
    rig.slack.post("C1", "U2", "old news", ts=f"{now - 5 * 86400:.6f}")
    await rig.command("/summarize", "<#C1|general> 3d")
    [answer] = await rig.slack.wait_for_response("r1")
    assert answer["text"].startswith("Summary of 1 messages since 3d:")
    assert "deploy went fine" in answer["text"] and "old news" not in answer["text"]
    assert answer["response_type"] == "ephemeral"
    await rig.command("/summarize", "<#C2|random>", key="r2")
    [refused] = await rig.slack.wait_for_response("r2")
    assert refused["text"] == (
        "I can't summarize that: you are not a member of #random, so I won't read it for you."
    )
    await rig.command("/summarize", "sometime", key="r3")
    [bad] = await rig.slack.wait_for_response("r3")
    assert bad["text"].startswith("since 'sometime' is not a time I understand")
