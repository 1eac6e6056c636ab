"""Pure conversions between Discord messages and the engine's types."""

from __future__ import annotations

import re

import discord

from core.events import (
    MAIN_THREAD,
    Attachment,
    ChannelAccess,
    ConversationKey,
    Event,
    HistoryMessage,
    HistoryPage,
    Platform,
    User,
)

DM_WORKSPACE = "dm"


def key_for(guild_id: int | None, channel_id: int, thread_id: int | None = None) -> ConversationKey:
    """Threads are channels of their own (key: thread as channel and thread); DMs are one conversation."""
    if guild_id is None:
        return ConversationKey(Platform.DISCORD, DM_WORKSPACE, str(channel_id), MAIN_THREAD)
    if thread_id is not None:
        return ConversationKey(Platform.DISCORD, str(guild_id), str(thread_id), str(thread_id))
    return ConversationKey(Platform.DISCORD, str(guild_id), str(channel_id), MAIN_THREAD)


def strip_mention(text: str, bot_id: int) -> str:
    """The text without the bot's `<@id>` / `<@!id>` mention."""
    return re.sub(rf"<@!?{bot_id}>", "", text).strip()


def thread_name(text: str, limit: int = 90) -> str:
    """A thread title from the first words of the question."""
    words = " ".join(text.split())
    if not words:
        return "Conversation"
    return words if len(words) <= limit else words[: limit - 1].rsplit(" ", 1)[0] + "…"


def attachment(
    filename: str, content_type: str | None, size: int, url: str, *, voice: bool
) -> Attachment:
    """An attachment; voice messages are Ogg/Opus audio whatever their declared type."""
    mime = content_type or ("audio/ogg" if voice else "application/octet-stream")
    return Attachment(name=filename, mime_type=mime.split(";")[0], size=size, url=url)


def user(user_id: int, name: str, *, bot: bool, admin: bool) -> User:
    """Our user from a Discord author."""
    return User(id=str(user_id), name=name, is_bot=bot, is_admin=admin)


def is_admin(author: discord.abc.User) -> bool:
    """Server administrators and managers are the bot's admins."""
    permissions = getattr(author, "guild_permissions", None)
    return bool(permissions and (permissions.administrator or permissions.manage_guild))


def message_event(
    message: discord.Message, key: ConversationKey, text: str, *, addressed: bool = True
) -> Event:
    """The engine's event for a message (text without the mention); not `addressed`: a message
    in a thread that continues a conversation only if the engine already has one there."""
    voice = message.flags.voice
    return Event(
        key=key,
        user=user(
            message.author.id,
            message.author.display_name,
            bot=message.author.bot,
            admin=is_admin(message.author),
        ),
        text=text,
        delivery_id=str(message.id),
        addressed=addressed,
        attachments=tuple(
            attachment(a.filename, a.content_type, a.size, a.url, voice=voice)
            for a in message.attachments
        ),
    )


def interaction_key(interaction: discord.Interaction) -> ConversationKey:
    """The conversation of an interaction's channel or thread."""
    channel = interaction.channel
    guild = interaction.guild_id
    if isinstance(channel, discord.Thread):
        return key_for(guild, channel.parent_id or 0, channel.id)
    return key_for(guild, interaction.channel_id or 0)


def interaction_user(interaction: discord.Interaction) -> User:
    """Who interacted; server administrators and managers are admins."""
    permissions = interaction.permissions
    return user(
        interaction.user.id,
        interaction.user.display_name,
        bot=interaction.user.bot,
        admin=bool(permissions.administrator or permissions.manage_guild),
    )


def interaction_event(interaction: discord.Interaction, text: str) -> Event:
    """The engine's event for a slash command, in the conversation of its channel or thread."""
    return Event(
        key=interaction_key(interaction),
        user=interaction_user(interaction),
        text=text,
        delivery_id=f"interaction:{interaction.id}",
    )


def history_message(message: discord.Message) -> HistoryMessage:
    """One message of a channel's history."""
    return HistoryMessage(
        id=str(message.id),
        user_id=str(message.author.id),
        user_name=message.author.display_name,
        text=message.content,
        at=message.created_at,
        is_bot=message.author.bot,
        permalink=message.jump_url,
        replies=_thread_size(message),
    )


def _thread_size(message: discord.Message) -> int:
    """How many messages the thread started from `message` has (0: none, or not cached)."""
    thread = getattr(message, "thread", None)
    count = getattr(thread, "message_count", 0) if thread is not None else 0
    return count if isinstance(count, int) and count > 0 else 0


def history_page(messages: list[discord.Message], limit: int) -> HistoryPage:
    """Messages as read newest first, as a page oldest first; a full page pages on from its
    oldest message."""
    ordered = sorted(messages, key=lambda m: m.id)
    cursor = str(ordered[0].id) if len(messages) >= limit and ordered else None
    return HistoryPage(tuple(history_message(m) for m in ordered), cursor)


def channel_access(
    *, bot_can_read: bool, everyone_can_view: bool, member_can_read: bool, direct: bool, name: str
) -> ChannelAccess:
    """Our access facts from a channel's computed permissions."""
    return ChannelAccess(
        readable=bot_can_read,
        private=direct or not everyone_can_view,
        member=member_can_read,
        direct=direct,
        name=name,
    )
