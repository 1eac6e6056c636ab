"""The platform-neutral inbound event, the conversation key, and the reply interface adapters implement."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeGuard, runtime_checkable

from core.interactive.controls import ApprovalPrompt, Controls
from core.unicode import clean_text

MAIN_THREAD = "main"  # the thread part of a key for a conversation outside any thread (a DM)


class Platform(StrEnum):
    """Where an event came from."""

    SLACK = "slack"
    DISCORD = "discord"
    CONSOLE = "console"


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Identifies one conversation: platform + workspace + channel + thread.

    Slack's ``thread_ts`` is unique only within a channel, so the channel is always part of the key.
    Discord threads are channels of their own: their key uses the thread id as channel and thread.
    """

    platform: Platform
    workspace: str
    channel: str
    thread: str

    def __post_init__(self) -> None:
        # Ids come from payloads too: the same cleaning as text keeps every key storable.
        for name in ("workspace", "channel", "thread"):
            value = getattr(self, name)
            if (clean := clean_text(value)) is not value:
                object.__setattr__(self, name, clean)

    def __str__(self) -> str:
        parts = (self.platform.value, self.workspace, self.channel, self.thread)
        return ":".join(_escape(part) for part in parts)

    @classmethod
    def parse(cls, text: str) -> ConversationKey:
        """Inverse of ``str(key)``."""
        platform, workspace, channel, thread = (_unescape(part) for part in text.split(":"))
        return cls(Platform(platform), workspace, channel, thread)


def _escape(part: str) -> str:
    """Platform ids never contain these; when a part does, the key stays unambiguous."""
    return part.replace("%", "%25").replace(":", "%3A")


def _unescape(part: str) -> str:
    return part.replace("%3A", ":").replace("%25", "%")


@dataclass(frozen=True, slots=True)
class User:
    """The person who wrote a message."""

    id: str
    name: str = ""
    is_bot: bool = False
    is_admin: bool = False

    def __post_init__(self) -> None:
        # Lone surrogates and NUL become U+FFFD (core/unicode.py): storable and encodable.
        for field_name in ("id", "name"):
            value = getattr(self, field_name)
            if (clean := clean_text(value)) is not value:
                object.__setattr__(self, field_name, clean)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with a message. ``data`` is filled by the adapter when it downloads the file."""

    name: str
    mime_type: str
    size: int
    url: str = ""
    data: bytes | None = field(default=None, repr=False)
    text: str | None = field(default=None, repr=False)  # a document's text, once extracted

    @property
    def kind(self) -> str:
        """``image``, ``audio``, ``video`` or ``file``."""
        major = self.mime_type.split("/", 1)[0]
        return major if major in {"image", "audio", "video"} else "file"


@dataclass(frozen=True, slots=True)
class Event:
    """One message addressed to the engine, whatever platform it came from."""

    key: ConversationKey
    user: User
    text: str
    delivery_id: str
    addressed: bool = True
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    starts_thread: bool = False  # the first message of its thread: nothing earlier to read there

    def __post_init__(self) -> None:
        # Lone surrogates and NUL become U+FFFD (core/unicode.py), so neither the store nor the
        # model is handed text it cannot take.
        for field_name in ("text", "delivery_id"):
            value = getattr(self, field_name)
            if (clean := clean_text(value)) is not value:
                object.__setattr__(self, field_name, clean)

    @property
    def platform(self) -> Platform:
        return self.key.platform

    @property
    def workspace(self) -> str:
        return self.key.workspace

    @property
    def channel(self) -> str:
        return self.key.channel

    @property
    def thread(self) -> str:
        return self.key.thread

    def to_json(self) -> str:
        """The event as stored with its turn, so any process can run the turn (attachments
        without their bytes: they are downloaded again through the platform's port)."""
        return json.dumps(
            {
                "key": str(self.key),
                "user": [self.user.id, self.user.name, self.user.is_bot, self.user.is_admin],
                "text": self.text,
                "delivery_id": self.delivery_id,
                "addressed": self.addressed,
                "attachments": [[a.name, a.mime_type, a.size, a.url] for a in self.attachments],
                "received_at": self.received_at.timestamp(),
                "starts_thread": self.starts_thread,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Event:
        """Inverse of `to_json`."""
        data = json.loads(text)
        user_id, name, is_bot, is_admin = data["user"]
        return cls(
            key=ConversationKey.parse(data["key"]),
            user=User(user_id, name, is_bot, is_admin),
            text=data["text"],
            delivery_id=data["delivery_id"],
            addressed=data["addressed"],
            attachments=tuple(
                Attachment(name, mime, size, url) for name, mime, size, url in data["attachments"]
            ),
            received_at=datetime.fromtimestamp(data["received_at"], UTC),
            starts_thread=bool(data.get("starts_thread")),
        )


@dataclass(frozen=True, slots=True)
class OutboundFile:
    """A file the engine asks an adapter to upload into the conversation (for example a generated image)."""

    name: str
    mime_type: str
    data: bytes = field(repr=False)
    title: str = ""


@runtime_checkable
class Reply(Protocol):
    """How the engine answers one event. Adapters implement it; the engine never sees a platform type.

    The engine calls ``begin`` once, ``append`` for each streamed piece of text, then exactly one of
    ``finish`` (the whole final text, which may differ from what was streamed, e.g. after moderation).
    ``notice`` posts a short message visible only to the user where the platform allows it.
    """

    async def begin(self) -> None: ...

    async def append(self, delta: str) -> None: ...

    async def finish(self, text: str) -> None: ...

    async def notice(self, text: str) -> None: ...

    async def upload(self, file: OutboundFile) -> None: ...


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """One message of a channel's or thread's history, as the platform reports it: with the
    link that opens it (`permalink`, "" where the platform has none) and how many replies its
    thread has."""

    id: str
    user_id: str
    user_name: str
    text: str
    at: datetime
    is_bot: bool = False
    permalink: str = ""
    replies: int = 0


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Messages oldest first; `next_cursor` pages on to older ones (None: no more)."""

    messages: tuple[HistoryMessage, ...]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelAccess:
    """What a user and the bot may do with a channel: whether the bot can read it, whether it is
    private (or a DM), whether the user is a member, and whether it is a DM with that user."""

    readable: bool
    private: bool
    member: bool
    direct: bool = False
    name: str = ""


class HistoryUnavailable(Exception):
    """The platform would not give the history now; the message says why (and, rate limited,
    when to try again: `retry_after` seconds)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class InteractiveReply(Protocol):
    """What a Reply adds where its platform has buttons (the engine never asks which platform).

    ``live`` offers a Stop control while the reply streams (called once, before the text);
    ``finish_with`` is ``finish`` with the finished reply's controls (feedback, regenerate), or
    None when controls are off here; ``ask_approval`` shows a tool call waiting for a person,
    with Approve and Deny. A Reply without them gets plain ``finish`` and a notice instead.
    """

    async def live(self, controls: Controls) -> None: ...

    async def finish_with(self, text: str, controls: Controls | None) -> None: ...

    async def ask_approval(self, prompt: ApprovalPrompt) -> None: ...


@runtime_checkable
class Addressable(Protocol):
    """A Reply that can be rebuilt in another process: its turn can wait in the database's queue
    and be run by any process with the platform's port.

    ``address`` says where it answers, as JSON-able values that the platform's
    ``PlatformPort.reply_to(key, address)`` turns back into the same reply; ``on_shown`` asks to
    be told, once, the platform's id of the first message the reply shows before it finishes
    (a re-run after a crash replaces that message).
    """

    def address(self) -> dict[str, Any]: ...

    def on_shown(self, callback: Callable[[str], None]) -> None: ...


def address_of(reply: object) -> dict[str, Any] | None:
    """The reply's address when it is `Addressable`, else None.

    Attribute look-ups rather than `isinstance` with the protocol: a runtime protocol check walks
    the class's members on every call (tens of microseconds), on the path of every event.
    """
    address = getattr(reply, "address", None)
    return address() if callable(address) else None


def is_interactive(reply: object) -> TypeGuard[InteractiveReply]:
    """Whether the reply is an `InteractiveReply` (checked as `address_of` checks)."""
    return all(callable(getattr(reply, name, None)) for name in INTERACTIVE)


INTERACTIVE = ("live", "finish_with", "ask_approval")


@runtime_checkable
class PlatformPort(Protocol):
    """What the engine may ask of a platform without an event in hand; each adapter registers one.

    ``reply_to`` answers into a conversation (after a restart, for a recovered turn); with the
    ``address`` of an `Addressable` reply it rebuilds that reply (a queued turn run here), and
    with ``replacing``, the id of a message a crashed run left half-shown, the reply replaces
    that message;
    ``download`` fetches an attachment's bytes with the platform's credentials; ``history``
    reads a channel (``key.thread`` is ``MAIN_THREAD``) or a thread, newest page first;
    ``access`` says what a user and the bot may do with a channel. Both raise
    ``HistoryUnavailable``.
    """

    platform: Platform

    def reply_to(
        self,
        key: ConversationKey,
        address: Mapping[str, Any] | None = None,
        *,
        replacing: str = "",
    ) -> Reply: ...

    async def download(self, attachment: Attachment) -> bytes: ...

    async def history(
        self,
        key: ConversationKey,
        *,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> HistoryPage: ...

    async def access(self, key: ConversationKey, user_id: str) -> ChannelAccess: ...
