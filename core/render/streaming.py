"""A Reply for platforms that stream by editing messages: post once, then edit at most once per
interval, coalescing deltas; text past the platform's length limit continues in new messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from core.events import OutboundFile
from core.render.text import split_message

log = structlog.get_logger(__name__)

TYPING = "…"


class MessageSink(Protocol):
    """The few platform calls a streamed reply needs; each adapter implements them."""

    async def post(self, text: str) -> str:
        """Post a new message into the conversation; returns its id."""

    async def edit(self, message_id: str, text: str) -> None:
        """Replace the text of a message posted by `post`."""

    async def delete(self, message_id: str) -> None:
        """Remove a message posted by `post`."""

    async def typing(self) -> None:
        """Show that a reply is being prepared (may do nothing)."""

    async def notice(self, text: str) -> None:
        """A short message visible only to the user where the platform allows it."""

    async def upload(self, file: OutboundFile) -> None:
        """Upload a file into the conversation."""


class EditingReply:
    """Streams a reply into one or more messages, editing them no faster than `interval`."""

    def __init__(
        self,
        sink: MessageSink,
        *,
        limit: int,
        interval: float = 1.0,
        render: Callable[[str], str] = lambda text: text,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._limit = limit
        self._interval = interval
        self._render = render
        self._clock = clock
        self._text: list[str] = []
        self._posted: list[tuple[str, str]] = []  # (message id, text shown)
        self._last_flush = -float("inf")
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._finished = False

    @property
    def message_ids(self) -> list[str]:
        """Ids of the messages this reply posted, in order."""
        return [message_id for message_id, _ in self._posted]

    async def begin(self) -> None:
        await self._sink.typing()

    async def append(self, delta: str) -> None:
        self._text.append(delta)
        due = self._last_flush + self._interval - self._clock()
        if due <= 0:
            await self._flush("".join(self._text) + " " + TYPING)
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_later(due))

    async def finish(self, text: str) -> None:
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._flush(text, final=True)

    async def notice(self, text: str) -> None:
        await self._sink.notice(text)

    async def upload(self, file: OutboundFile) -> None:
        await self._sink.upload(file)

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timer = None
        if self._finished:
            return
        try:
            await self._flush("".join(self._text) + " " + TYPING)
        except Exception as exc:  # the final flush will try again; a failed edit must not be lost
            log.warning("stream_edit_failed", error=f"{type(exc).__name__}: {exc}")

    async def _flush(self, text: str, *, final: bool = False) -> None:
        """Make the posted messages show `text`: edit what changed, post what is new."""
        async with self._lock:
            if self._finished and not final:
                return
            self._last_flush = self._clock()
            chunks = split_message(self._render(text), self._limit) if text.strip() else []
            for index, chunk in enumerate(chunks):
                if index < len(self._posted):
                    message_id, shown = self._posted[index]
                    if shown != chunk:
                        await self._sink.edit(message_id, chunk)
                        self._posted[index] = (message_id, chunk)
                else:
                    self._posted.append((await self._sink.post(chunk), chunk))
            if final:
                for message_id, _ in self._posted[len(chunks) :]:
                    await self._sink.delete(message_id)
                del self._posted[len(chunks) :]
