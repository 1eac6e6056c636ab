"""The platform's own context on Discord, through the fake gateway and REST API: channel and
thread history with the permission rules (a private channel only into itself)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bots.settings import AppSettings as Settings
from core.events import ConversationKey, Event, Platform, User
from simulator import Simulator, Text, ToolCalls
from tests.conftest import RecordingReply
from tests.discord.test_discord_client import open_rig
from tests.fakes.discord import FakeDiscord

_count = iter(range(10**6))


async def test_read_channel_through_discord_with_permissions(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    async with FakeDiscord() as fake:
        fake.add_member(42, "ada")
        fake.add_member(43, "bob")
        private = fake.add_channel("secret", private_for=[43])
        fake.post(fake.channel_id, "we ship on friday", author_id=43, name="bob")
        fake.post(fake.channel_id, "great", author_id=42, name="ada")
        fake.post(private, "bob's plan", author_id=43, name="bob")
        async with open_rig(sim, make_settings, fake) as rig:

            async def tool(arguments: dict[str, Any], *, user: int, channel: int) -> str:
                sim.enqueue(ToolCalls.of(("read_channel", arguments)), Text("ok"))
                event = Event(
                    key=ConversationKey(Platform.DISCORD, "1", str(channel), "main"),
                    user=User(str(user), "someone"),
                    text="read it",
                    delivery_id=f"dctx-{next(_count)}",
                )
                await rig.services.engine.handle(event, RecordingReply())
                body = sim.requests_to("chat")[-1].body or {}
                return [m["content"] for m in body["messages"] if m["role"] == "tool"][-1]

            here = {"channel": None, "since": None, "limit": None, "cursor": None}
            general = await tool(here, user=42, channel=fake.channel_id)
            assert general.startswith("2 messages from #general:")
            assert "bob: we ship on friday" in general and general.index("friday") < general.index(
                "great"
            )
            elsewhere = {**here, "channel": f"<#{private}>"}
            assert await tool(elsewhere, user=42, channel=fake.channel_id) == (
                "error: you are not a member of #secret, so I won't read it for you"
            )
            assert await tool(elsewhere, user=43, channel=fake.channel_id) == (
                "error: #secret is private: I only use its messages when answering in #secret "
                "itself or in a direct message with you"
            )
            assert "bob's plan" in await tool(here, user=43, channel=private)
            assert await tool(here, user=99, channel=fake.channel_id) == (
                "error: you are not a member of #general, so I won't read it for you"
            )
            limited = await tool({**here, "limit": 1}, user=42, channel=fake.channel_id)
            assert "great" in limited and "friday" not in limited and "cursor=" in limited
