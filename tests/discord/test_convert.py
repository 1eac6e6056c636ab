"""Discord payloads (as the gateway sends them) converted into the engine's types."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import discord
import pytest

from bots.discord import convert
from core.events import ConversationKey, Platform

PAYLOADS = Path(__file__).parent / "payloads"
BOT_ID = 1000


def _message(name: str) -> discord.Message:
    data = json.loads((PAYLOADS / f"{name}.json").read_text())
    state = discord.Client(intents=discord.Intents.default())._connection
    channel = discord.PartialMessageable(state=state, id=int(data["channel_id"]))
    return discord.Message(state=state, channel=channel, data=data)


def test_a_mention_becomes_a_question_and_a_thread_title() -> None:
    message = _message("mention_in_channel")
    text = convert.strip_mention(message.content, BOT_ID)
    assert text == "what's on the   roadmap for Q1, and who owns the billing migration?"
    title = convert.thread_name(text, limit=40)
    assert title == "what's on the roadmap for Q1, and who…"
    assert len(title) <= 40
    key = convert.key_for(1, message.channel.id, message.id)
    event = convert.message_event(message, key, text)
    assert event.key == ConversationKey(
        Platform.DISCORD, "1", "1310475513354375239", "1310475513354375239"
    )
    assert (event.user.id, event.user.name, event.user.is_bot) == (
        "42",
        "Ada at work",
        False,
    )  # the server nickname
    assert event.delivery_id == "1310475513354375239"
    assert event.addressed and event.attachments == ()


def test_a_voice_message_is_audio_to_transcribe() -> None:
    message = _message("voice_message_dm")
    event = convert.message_event(message, convert.key_for(None, message.channel.id), "")
    assert event.key == ConversationKey(Platform.DISCORD, "dm", "1310470000000000100", "main")
    [audio] = event.attachments
    assert (audio.name, audio.mime_type, audio.size) == ("voice-message.ogg", "audio/ogg", 15360)
    assert audio.url.startswith("https://cdn.discordapp.com/attachments/")


def test_an_image_keeps_its_media_type_without_parameters() -> None:
    message = _message("image_in_thread")
    key = convert.key_for(1, 10, message.channel.id)
    [image] = convert.message_event(message, key, message.content).attachments
    assert image.mime_type == "image/png"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@1000> hi", "hi"),
        ("<@!1000>hi", "hi"),
        ("hi <@1000>", "hi"),
        ("<@1001> hi", "<@1001> hi"),
    ],
)
def test_only_the_bots_own_mention_is_removed(text: str, expected: str) -> None:
    assert convert.strip_mention(text, BOT_ID) == expected


def test_an_empty_question_gets_a_default_thread_title() -> None:
    assert convert.thread_name("   ") == "Conversation"


def test_a_declared_type_wins_and_voice_without_one_is_ogg() -> None:
    assert convert.attachment("a.bin", None, 3, "u", voice=True).mime_type == "audio/ogg"
    assert convert.attachment("a.bin", None, 3, "u", voice=False).mime_type == (
        "application/octet-stream"
    )


def test_a_message_in_someone_elses_thread_is_not_addressed() -> None:
    message = _message("image_in_thread")
    key = convert.key_for(1, 10, message.channel.id)
    assert not convert.message_event(message, key, "", addressed=False).addressed


def _interaction(channel: dict[str, object], permissions: str) -> discord.Interaction:
    state = discord.Client(intents=discord.Intents.default())._connection
    bot = {"id": str(BOT_ID), "username": "parley", "discriminator": "0", "avatar": None}
    state.user = discord.ClientUser(state=state, data=bot)  # type: ignore[arg-type]
    data = {
        "id": "77",
        "application_id": "2000",
        "type": 2,
        "token": "itoken",
        "version": 1,
        "guild_id": "1",
        "channel_id": channel["id"],
        "channel": channel,
        "locale": "en-US",
        "app_permissions": "0",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "context": 0,
        "attachment_size_limit": 8_000_000,
        "member": {
            "user": {
                "id": "42",
                "username": "ada",
                "global_name": "Ada",
                "discriminator": "0",
                "avatar": None,
            },
            "roles": [],
            "joined_at": "2026-01-01T00:00:00+00:00",
            "permissions": permissions,
            "deaf": False,
            "mute": False,
            "flags": 0,
        },
        "data": {"id": "9", "name": "ask", "type": 1, "options": []},
    }
    return discord.Interaction(data=data, state=state)  # type: ignore[arg-type]


def test_a_slash_command_in_a_thread_belongs_to_the_threads_conversation() -> None:
    thread = {
        "id": "500",
        "type": 11,
        "guild_id": "1",
        "parent_id": "10",
        "owner_id": str(BOT_ID),
        "name": "a thread",
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-11-24T12:00:00+00:00",
            "locked": False,
        },
    }
    event = convert.interaction_event(_interaction(thread, permissions="32"), "hi")  # Manage Server
    assert event.key == ConversationKey(Platform.DISCORD, "1", "500", "500")
    assert (event.user.id, event.user.name, event.user.is_admin) == ("42", "Ada", True)
    assert (event.text, event.delivery_id) == ("hi", "interaction:77")


def test_a_slash_command_in_a_channel_belongs_to_the_channels_conversation() -> None:
    channel = {"id": "10", "type": 0, "guild_id": "1", "name": "general", "position": 0}
    event = convert.interaction_event(_interaction(channel, permissions="0"), "")
    assert event.key == ConversationKey(Platform.DISCORD, "1", "10", "main")
    assert not event.user.is_admin


def test_building_the_adapter_logs_no_voice_warnings(caplog: pytest.LogCaptureFixture) -> None:
    from bots.discord.client import DiscordAdapter
    from bots.discord.settings import DiscordSettings

    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = True  # as at a fresh start
    with caplog.at_level(logging.WARNING, logger="discord"):
        DiscordAdapter(DiscordSettings(_env_file=None), engine=None)  # type: ignore[arg-type, call-arg]
    assert not [r for r in caplog.records if "voice will NOT be supported" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="discord"):
        logging.getLogger("discord.client").warning("another warning")
    assert any(r.getMessage() == "another warning" for r in caplog.records)
