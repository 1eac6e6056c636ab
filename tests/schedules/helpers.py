"""What the scheduled-work tests share: a clock they move by hand, an in-memory platform port
with channels, members and history, and services wired to both."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bots.services import Services
from core.events import (
    MAIN_THREAD,
    Attachment,
    ChannelAccess,
    ConversationKey,
    Event,
    HistoryMessage,
    HistoryPage,
    OutboundFile,
    Platform,
    User,
)

WORKSPACE = "w1"


class Clock:
    """Epoch seconds that change only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += seconds


def at(text: str, zone: str = "UTC") -> datetime:
    """`2026-03-27 09:00` in a zone."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


@dataclass
class Channel:
    name: str
    members: set[str]
    private: bool = False
    bot: bool = True
    messages: list[HistoryMessage] = field(default_factory=list)


class Posted(list[tuple[ConversationKey, str]]):
    """Every message the port posted: (conversation, text)."""

    def texts(self, channel: str) -> list[str]:
        return [text for key, text in self if key.channel == channel]


class PortReply:
    """A reply into a conversation that records its final text."""

    def __init__(
        self, key: ConversationKey, posted: Posted, fail: bool, changed: asyncio.Event
    ) -> None:
        self._key, self._posted, self._fail, self._changed = key, posted, fail, changed
        self.deltas: list[str] = []

    async def begin(self) -> None:
        if self._fail:
            raise RuntimeError("channel_not_found")

    async def append(self, delta: str) -> None:
        self.deltas.append(delta)

    async def finish(self, text: str) -> None:
        self._posted.append((self._key, text))
        self._changed.set()

    async def notice(self, text: str) -> None:
        self._posted.append((self._key, f"(notice) {text}"))

    async def upload(self, file: OutboundFile) -> None:
        return None


class FakePort:
    """A platform as the engine sees it (`PlatformPort`): channels with members and history."""

    platform = Platform.CONSOLE

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.posted = Posted()
        self.changed = asyncio.Event()  # set at every post
        self.broken: set[str] = set()  # channels whose posts fail
        self.history_reads = 0
        self._ids = 0

    def add_channel(
        self, channel: str, name: str, members: set[str], *, private: bool = False
    ) -> None:
        self.channels[channel] = Channel(name, set(members), private)

    def say(self, channel: str, user: str, text: str, when: datetime, *, replies: int = 0) -> str:
        self._ids += 1
        message_id = f"{channel}-{self._ids}"
        self.channels[channel].messages.append(
            HistoryMessage(
                id=message_id,
                user_id=user,
                user_name=f"name-{user}",
                text=text,
                at=when.astimezone(UTC),
                permalink=f"https://chat.example/{channel}/{message_id}",
                replies=replies,
            )
        )
        return message_id

    def reply_to(self, key: ConversationKey) -> PortReply:
        return PortReply(key, self.posted, key.channel in self.broken, self.changed)

    async def download(self, attachment: Attachment) -> bytes:
        return b""

    async def history(
        self,
        key: ConversationKey,
        *,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> HistoryPage:
        """Newest page first, like the platforms; the cursor is an offset from the newest."""
        self.history_reads += 1
        found = [m for m in self.channels[key.channel].messages if since is None or m.at >= since]
        found.sort(key=lambda m: m.at, reverse=True)
        start = int(cursor or 0)
        page = found[start : start + limit]
        more = start + limit < len(found)
        return HistoryPage(tuple(reversed(page)), str(start + limit) if more else None)

    async def access(self, key: ConversationKey, user_id: str) -> ChannelAccess:
        channel = self.channels.get(key.channel)
        if channel is None:
            return ChannelAccess(readable=False, private=False, member=False)
        return ChannelAccess(
            readable=channel.bot,
            private=channel.private,
            member=user_id in channel.members,
            name=channel.name,
        )


def key(channel: str, thread: str = MAIN_THREAD) -> ConversationKey:
    return ConversationKey(Platform.CONSOLE, WORKSPACE, channel, thread)


def event(text: str, channel: str, user: str = "u1", *, admin: bool = False) -> Event:
    event.count += 1  # type: ignore[attr-defined]
    return Event(
        key=key(channel),
        user=User(user, f"name-{user}", is_admin=admin),
        text=text,
        delivery_id=f"cmd-{event.count}",  # type: ignore[attr-defined]
    )


event.count = 0  # type: ignore[attr-defined]


async def attach(services: Services, port: FakePort, clock: Clock) -> None:
    """Attach the port (this process serves its platform) and run everything on `clock`."""
    await services.engine.attach(port)
    assert services.scheduler is not None
    services.scheduler.clock = clock
    schedules = services.engine.commands.context.schedules
    assert schedules is not None
    schedules.clock = clock


async def command(services: Services, name: str, text: str, channel: str, **kw: object) -> str:
    """Run `/name text` in a channel; the answer's text."""
    result = await services.engine.command(event(text, channel, **kw), name, text)  # type: ignore[arg-type]
    return result.text
