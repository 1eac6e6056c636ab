"""Pure conversions between Slack payloads and the engine's types (no network)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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

HIDDEN_SUBTYPES = {"channel_join", "channel_leave", "message_deleted", "tombstone"}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a reply goes: channel, thread (None = the channel itself) and the asking user."""

    channel: str
    thread_ts: str | None
    user: str
    team: str
    assistant_thread: bool = False


def address_of(target: Target) -> dict[str, Any]:
    """A reply's target as stored with its turn (JSON), for any process to answer it."""
    return {
        "channel": target.channel,
        "thread_ts": target.thread_ts,
        "user": target.user,
        "team": target.team,
        "assistant_thread": target.assistant_thread,
    }


def target_from(address: Mapping[str, Any]) -> Target:
    """Inverse of `address_of`."""
    return Target(
        str(address["channel"]),
        address.get("thread_ts") or None,
        str(address.get("user") or ""),
        str(address.get("team") or ""),
        bool(address.get("assistant_thread")),
    )


def team_of(body: dict[str, Any]) -> str:
    """The workspace a request came from, as conversation keys name it (events, commands,
    interactivity payloads)."""
    team = body.get("team_id") or body.get("team")
    if isinstance(team, dict):
        team = team.get("id")
    event = body.get("event")
    if not team and isinstance(event, dict):
        team = event.get("team")
    return team if isinstance(team, str) else ""


def target_for(key: ConversationKey) -> Target:
    """Where a reply into a known conversation goes (no message to answer, e.g. after a restart)."""
    thread = None if key.thread == MAIN_THREAD else key.thread
    return Target(key.channel, thread, "", key.workspace)


def strip_mention(text: str, bot_user_id: str) -> str:
    """The text without the bot's `<@U…>` mention."""
    return re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text).strip()


def mentions(text: str, bot_user_id: str) -> bool:
    """True when the text mentions the bot."""
    return f"<@{bot_user_id}" in text


def attachments(event: dict[str, Any]) -> tuple[Attachment, ...]:
    """The files of a message as attachments (downloaded later, with the bot token)."""
    return tuple(
        Attachment(
            name=f.get("name") or f.get("title") or f.get("id", "file"),
            mime_type=f.get("mimetype") or "application/octet-stream",
            size=int(f.get("size") or 0),
            url=f.get("url_private_download") or f.get("url_private") or "",
        )
        for f in event.get("files") or []
        if f.get("mode") != "tombstone"
    )


def is_dm(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


def target_of(body: dict[str, Any], event: dict[str, Any]) -> Target:
    """Where the answer to `event` goes: always a thread in channels; DMs answer where asked."""
    team = body.get("team_id") or event.get("team") or ""
    thread = _text_or_none(event.get("thread_ts"))
    if not is_dm(event):
        thread = thread or _text_or_none(event.get("ts"))
    return Target(
        event["channel"],
        thread,
        event.get("user", ""),
        team,
        assistant_thread=is_dm(event) and bool(thread),
    )


def _text_or_none(value: Any) -> str | None:
    """A payload id that must be a string (a malformed payload may carry anything)."""
    return value if isinstance(value, str) and value else None


def to_event(
    body: dict[str, Any], event: dict[str, Any], user: User, *, bot_user_id: str, addressed: bool
) -> Event:
    """Our event for a Slack message or mention; the delivery id is Slack's `event_id`."""
    target = target_of(body, event)
    thread = target.thread_ts or MAIN_THREAD
    text = strip_mention(event.get("text") or "", bot_user_id)
    received = received_at(body, event)
    return Event(
        key=ConversationKey(Platform.SLACK, target.team, target.channel, thread),
        user=user,
        text=text,
        delivery_id=body.get("event_id") or f"{target.channel}:{event.get('ts')}",
        addressed=addressed,
        attachments=attachments(event),
        received_at=received,
        starts_thread=_text_or_none(event.get("thread_ts")) in (None, event.get("ts")),
    )


def received_at(body: dict[str, Any], event: dict[str, Any]) -> datetime:
    """When Slack received the event: `event_time`, else the message's `ts`, else now (UTC).

    Total: a value that is not a number, not finite, not positive or beyond what a datetime holds
    (`10**20`, `"abc"`, `"NaN"`) is skipped rather than raised on.
    """
    for raw in (body.get("event_time"), event.get("ts")):
        moment = timestamp(raw)
        if moment is not None:
            return moment
    return datetime.now(UTC)


def timestamp(raw: Any) -> datetime | None:
    """A Slack timestamp (seconds since the epoch, number or string) as a UTC datetime, or None."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        seconds = float(raw)
        if not math.isfinite(seconds) or seconds <= 0:
            return None
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def user_from_info(info: dict[str, Any], user_id: str) -> User:
    """Our user from a `users.info` user object (`user_id` asked for; fields read defensively)."""
    profile = info.get("profile")
    profile = profile if isinstance(profile, dict) else {}
    names = (profile.get("display_name"), profile.get("real_name"), info.get("name"))
    name = next((n for n in names if isinstance(n, str) and n), user_id)
    return User(
        id=user_id,
        name=name,
        is_bot=info.get("is_bot") is True,
        is_admin=info.get("is_admin") is True or info.get("is_owner") is True,
    )


def command_name(command: str, names: dict[str, str]) -> str | None:
    """The engine command a Slack slash command maps to."""
    return names.get(command)


def command_event(command: dict[str, Any], user: User) -> Event:
    """Our event for a slash command, in the channel's main conversation."""
    key = ConversationKey(
        Platform.SLACK, command.get("team_id", ""), command["channel_id"], MAIN_THREAD
    )
    text = str(command.get("text") or "").strip()
    return Event(key=key, user=user, text=text, delivery_id=f"cmd:{command.get('trigger_id', '')}")


def ask_event(command: dict[str, Any], user: User, text: str, thread_ts: str) -> Event:
    """Our event for `/ask`: the question, in the thread of the message that posted it."""
    team = command.get("team_id", "")
    return Event(
        key=ConversationKey(Platform.SLACK, team, command["channel_id"], thread_ts),
        user=user,
        text=text,
        delivery_id=f"cmd:{command.get('trigger_id') or thread_ts}",
    )


def history_page(
    data: dict[str, Any], names: dict[str, str], *, channel: str = "", team_url: str = ""
) -> HistoryPage:
    """A `conversations.history` or `.replies` answer as a page, oldest first (history answers
    newest first); `names` maps user ids to display names. With the workspace's URL (auth.test's
    `url`), each message carries its permalink."""
    messages = []
    for raw in data.get("messages") or []:
        if not isinstance(raw, dict) or raw.get("subtype") in HIDDEN_SUBTYPES:
            continue
        moment = timestamp(raw.get("ts"))
        if moment is None:
            continue
        user_id = str(raw.get("user") or raw.get("bot_id") or "")
        messages.append(
            HistoryMessage(
                id=str(raw.get("ts")),
                user_id=user_id,
                user_name=names.get(user_id) or str(raw.get("username") or user_id),
                text=str(raw.get("text") or ""),
                at=moment,
                is_bot=bool(raw.get("bot_id")),
                permalink=permalink(team_url, channel, raw) if team_url and channel else "",
                replies=_count(raw.get("reply_count")),
            )
        )
    messages.sort(key=lambda m: m.at)
    cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
    return HistoryPage(tuple(messages), cursor if data.get("has_more") or cursor else None)


def permalink(team_url: str, channel: str, raw: dict[str, Any]) -> str:
    """The link that opens a message (Slack's permalink form), in its thread for a reply."""
    ts = str(raw.get("ts") or "")
    link = f"{team_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    thread = raw.get("thread_ts")
    if isinstance(thread, str) and thread and thread != ts:
        link += f"?thread_ts={thread}&cid={channel}"
    return link


def _count(raw: Any) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else 0


def history_users(data: dict[str, Any]) -> set[str]:
    """The user ids whose names a history page needs."""
    return {
        str(m["user"]) for m in data.get("messages") or [] if isinstance(m, dict) and m.get("user")
    }


def channel_access(channel: dict[str, Any], *, member: bool) -> ChannelAccess:
    """A `conversations.info` channel object as our access facts (`member`: the user's)."""
    direct = channel.get("is_im") is True
    private = direct or channel.get("is_private") is True or channel.get("is_mpim") is True
    return ChannelAccess(
        readable=direct or channel.get("is_member") is True,
        private=private,
        member=member,
        direct=direct,
        name=str(channel.get("name") or ""),
    )
