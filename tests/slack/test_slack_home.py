"""The App Home tab (views.publish), agent messaging's DM-open signal, and Markdown tables as
Slack markdown blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bots.settings import AppSettings as Settings
from bots.slack.blocks import MARKDOWN_LIMIT, message_blocks
from bots.slack.reply import MESSAGE_LIMIT
from core.events import ConversationKey, Platform
from simulator import Simulator, Text
from tests.slack.rig import Rig, mention, open_rig


@pytest.fixture
async def rig(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> AsyncIterator[Rig]:
    async with open_rig(
        sim,
        make_settings,
        aiohttp_server_factory,
        admin_user_ids="UADMIN",
        budget_user_monthly_usd=5.0,
    ) as opened:
        yield opened


def _home_opened(user: str, tab: str = "home", channel: str = "D1") -> dict[str, Any]:
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": channel,
        "tab": tab,
        "event_ts": "1.1",
    }


async def test_the_home_tab_shows_usage_limits_channels_and_prompts(rig: Rig) -> None:
    await rig.event(mention("hello"))
    await rig.slack.wait_for("chat.stopStream")
    await rig.services.engine.drain()
    await rig.event(_home_opened("U1"))
    await rig.slack.wait_for("views.publish")
    home = str(rig.slack.homes["U1"])
    assert "This month:" in home and "of $5.00" in home
    assert "<#C1>" in home and "Summarize" in home
    assert "Workspace" not in home, "admins only"


async def test_admins_also_see_the_workspace_settings_and_top_channels(rig: Rig) -> None:
    await rig.services.store.scoped.set("channel:slack:T1:C1", "model", "gpt-6-sol", "UADMIN")
    await rig.event(mention("hello"))
    await rig.slack.wait_for("chat.stopStream")
    await rig.services.engine.drain()
    await rig.event(_home_opened("UADMIN"))
    await rig.slack.wait_for("views.publish")
    home = str(rig.slack.homes["UADMIN"])
    assert "channel:slack:T1:C1" in home and "gpt-6-sol" in home
    assert "Top-spending channels" in home and "<#C1> $" in home


async def test_opening_the_dm_greets_once_with_quick_prompts(rig: Rig) -> None:
    await rig.event(_home_opened("U1", tab="messages"))
    await rig.event(_home_opened("U1", tab="messages"))
    posts = await rig.slack.wait_for("chat.postMessage")
    assert posts[0].args["channel"] == "D1" and "Summarize this thread" in posts[0].args["text"]
    assert len(rig.slack.calls_to("chat.postMessage")) == 1
    assert rig.slack.calls_to("views.publish") == []


async def test_assistant_threads_still_get_suggested_prompts(rig: Rig) -> None:
    await rig.event(
        {
            "type": "assistant_thread_started",
            "assistant_thread": {"user_id": "U1", "channel_id": "D1", "thread_ts": "9.1"},
            "event_ts": "9.1",
        }
    )
    await rig.slack.wait_for("assistant.threads.setSuggestedPrompts")


async def test_a_markdown_table_is_a_markdown_block_with_clickable_links(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> None:
    answer = "Sources: [the spec](https://example.com/spec)\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    async with open_rig(
        sim,
        make_settings,
        aiohttp_server_factory,
        slack_native_streaming=False,
        reply_controls=False,
    ) as rig:
        sim.enqueue(Text(answer))
        await rig.event(mention("a table please"))
        await rig.services.engine.drain()
        final = (rig.slack.calls_to("chat.update") or rig.slack.calls_to("chat.postMessage"))[-1]
        blocks = final.args["blocks"]
        blocks = __import__("json").loads(blocks) if isinstance(blocks, str) else blocks
        assert blocks == [{"type": "markdown", "text": answer}]
        assert "<https://example.com/spec|the spec>" in final.args["text"], "mrkdwn fallback"


def test_markdown_past_the_block_limit_falls_back_to_split_messages() -> None:
    table = "| a | b |\n|---|---|\n"
    assert message_blocks(table + "| x | y |\n" * 10, None) is not None
    too_long = table + "| x | y |\n" * (MARKDOWN_LIMIT // 10)
    assert message_blocks(too_long, None) is None  # the sink's messages are split first
    assert MESSAGE_LIMIT < MARKDOWN_LIMIT  # so every message of a split reply fits one block


def test_reply_controls_can_be_switched_off_per_channel() -> None:
    from core.conversation.overrides import parse_override

    assert parse_override("reply_controls", "off") is False
    with pytest.raises(ValueError, match="on or off"):
        parse_override("reply_controls", "maybe")
    assert ConversationKey(Platform.SLACK, "T1", "C1", "main")
