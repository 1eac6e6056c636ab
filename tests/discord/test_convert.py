"""Discord payloads (as the gateway sends them) converted into the engine's types."""

from __future__ import annotations

import json
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
