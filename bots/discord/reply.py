"""Rendering replies into Discord: send, then edit at most ~1/s; over 2,000 characters, new messages."""

from __future__ import annotations

import io
from typing import Any

import discord

from bots.discord.components import approval_view, controls_view
from bots.discord.errors import explained
from core.commands import CommandResult
from core.events import OutboundFile
from core.interactive.controls import ApprovalPrompt, Controls
from core.render.streaming import EditingReply
from core.render.tables import fence_tables

MESSAGE_LIMIT = 2_000
NOTICE_ROOM = MESSAGE_LIMIT - 32  # a notice starts with the user's mention


def _file(file: OutboundFile) -> discord.File:
    return discord.File(io.BytesIO(file.data), filename=file.name, description=file.title or None)


KEEP: Any = object()  # an edit without a controls argument keeps the message's components


def _components(controls: Controls | None) -> dict[str, Any]:
    return {"view": controls_view(controls)} if controls is not None else {}


def _replaced(controls: Controls | None) -> dict[str, Any]:
    """The `view` argument of an edit: the controls' components, or none at all."""
    if controls is KEEP:
        return {}
    return {"view": controls_view(controls) if controls is not None else None}


class ChannelSink:
    """Messages in a channel or thread (MessageSink, with controls as message components)."""

    def __init__(self, channel: Any, user_id: int) -> None:
        self._channel = channel
        self._user_id = user_id

    async def post(self, text: str, controls: Controls | None = None) -> str:
        none = discord.AllowedMentions.none()
        message = await explained(
            self._channel.send(text, allowed_mentions=none, **_components(controls))
        )
        return str(message.id)

    async def edit(self, message_id: str, text: str, controls: Controls | None = KEEP) -> None:
        message = self._channel.get_partial_message(int(message_id))
        await explained(message.edit(content=text, **_replaced(controls)))

    async def approval(self, prompt: ApprovalPrompt) -> None:
        """Post a tool call's approval prompt with Approve and Deny."""
        users = discord.AllowedMentions(users=True)
        await explained(
            self._channel.send(
                f"<@{self._user_id}> {prompt.text}",
                allowed_mentions=users,
                view=approval_view(prompt),
            )
        )

    async def delete(self, message_id: str) -> None:
        await explained(self._channel.get_partial_message(int(message_id)).delete())

    async def typing(self) -> None:
        await explained(self._channel.typing())

    async def notice(self, text: str) -> None:
        # Messages cannot be ephemeral outside interactions: address the user instead.
        users = discord.AllowedMentions(users=True)
        await explained(self._channel.send(f"<@{self._user_id}> {text}", allowed_mentions=users))

    async def upload(self, file: OutboundFile) -> None:
        await explained(self._channel.send(file=_file(file)))


class InteractionSink:
    """Follow-ups of a deferred slash command (MessageSink): the first post fills the original."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction
        self._original_used = False

    async def post(self, text: str, controls: Controls | None = None) -> str:
        extra = _components(controls)
        if not self._original_used:
            self._original_used = True
            await explained(self._interaction.edit_original_response(content=text, **extra))
            return "original"
        message = await explained(self._interaction.followup.send(text, wait=True, **extra))
        return str(message.id)

    async def edit(self, message_id: str, text: str, controls: Controls | None = KEEP) -> None:
        view = _replaced(controls)
        if message_id == "original":
            await explained(self._interaction.edit_original_response(content=text, **view))
        else:
            followup = self._interaction.followup
            await explained(followup.edit_message(int(message_id), content=text, **view))

    async def approval(self, prompt: ApprovalPrompt) -> None:
        """Post a tool call's approval prompt with Approve and Deny."""
        await explained(self._interaction.followup.send(prompt.text, view=approval_view(prompt)))

    async def delete(self, message_id: str) -> None:
        if message_id == "original":
            await explained(self._interaction.delete_original_response())
        else:
            await explained(self._interaction.followup.delete_message(int(message_id)))

    async def typing(self) -> None:
        return None  # the deferred response already shows "thinking…"

    async def notice(self, text: str) -> None:
        await explained(self._interaction.followup.send(text, ephemeral=True))

    async def upload(self, file: OutboundFile) -> None:
        await explained(self._interaction.followup.send(file=_file(file)))


def channel_reply(channel: Any, user_id: int, *, existing: str | None = None) -> EditingReply:
    """A streamed reply into a channel or thread (with `existing`, rewriting that message);
    Markdown tables, which Discord does not render, go in code fences."""
    return EditingReply(
        ChannelSink(channel, user_id), limit=MESSAGE_LIMIT, render=fence_tables, existing=existing
    )


def interaction_reply(interaction: discord.Interaction) -> EditingReply:
    """A streamed reply into a deferred interaction."""
    return EditingReply(InteractionSink(interaction), limit=MESSAGE_LIMIT, render=fence_tables)


async def post_result(channel: Any, user_id: int, result: CommandResult) -> None:
    """A command typed in a message, answered in its channel: public results for everyone,
    others addressed to the user who typed it; then its files."""
    sink = ChannelSink(channel, user_id)
    if result.public:
        await sink.post(result.text[:MESSAGE_LIMIT])
    else:
        await sink.notice(result.text[:NOTICE_ROOM])
    for file in result.files:
        await sink.upload(file)
