"""A Reply for platforms that stream by editing messages: post once, then edit at most once per
interval, coalescing deltas; text past the platform's length limit continues in new messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from core.events import OutboundFile
from core.interactive.controls import ApprovalPrompt, Controls
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
    """Streams a reply into one or more messages, editing them no faster than `interval`.

    With controls (`live`, `finish_with`; the sink's `post` and `edit` then take a `controls`
    argument, and its `approval` posts an approval prompt) the last message of the reply
    carries them: Stop while it streams, feedback and regenerate once finished. With
    `existing`, the first message is one posted before (a regenerated answer replaces the old
    one in place).
    """

    def __init__(
        self,
        sink: MessageSink,
        *,
        limit: int,
        interval: float = 1.0,
        render: Callable[[str], str] = lambda text: text,
        clock: Callable[[], float] = time.monotonic,
        existing: str | None = None,
    ) -> None:
        self._sink = sink
        self._limit = limit
        self._interval = interval
        self._render = render
        self._clock = clock
        self._text: list[str] = []
        self._posted: list[tuple[str, str]] = []  # (message id, text shown)
        if existing is not None:
            self._posted.append((existing, ""))
        self._controls: Controls | None = None
        self._controlled = False  # controls were used: every post and edit says which it has
        self._marked: str | None = None  # the message that shows controls now
        self._last_flush = -float("inf")
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._finished = False
        self._on_shown: Callable[[str], None] | None = None

    @property
    def message_ids(self) -> list[str]:
        """Ids of the messages this reply posted, in order."""
        return [message_id for message_id, _ in self._posted]

    def on_shown(self, callback: Callable[[str], None]) -> None:
        """Be told the id of the first message posted before the reply finished."""
        self._on_shown = callback

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

    async def live(self, controls: Controls) -> None:
        """Show Stop on the streaming message (from its first post)."""
        self.show_live(controls)

    def show_live(self, controls: Controls) -> None:
        """`live`, for a caller that cannot await (a reply that falls back to this one)."""
        self._controls, self._controlled = controls, True

    async def finish_with(self, text: str, controls: Controls | None) -> None:
        """Finish, with the finished reply's controls on its last message."""
        self._controls = controls
        self._controlled = self._controlled or controls is not None
        await self.finish(text)

    async def ask_approval(self, prompt: ApprovalPrompt) -> None:
        """Post a tool call's approval prompt (a notice where the sink has no buttons)."""
        approval = getattr(self._sink, "approval", None)
        if approval is None:
            await self._sink.notice(prompt.text)
        else:
            await approval(prompt)

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
            last = len(chunks) - 1
            for index, chunk in enumerate(chunks):
                marked = self._controlled and index == last
                if index < len(self._posted):
                    message_id, shown = self._posted[index]
                    moved = self._controlled and (message_id == self._marked) != marked
                    if shown != chunk or moved or (final and marked):
                        await self._sink.edit(message_id, chunk, **self._extra(marked))
                        self._posted[index] = (message_id, chunk)
                else:
                    message_id = await self._sink.post(chunk, **self._extra(marked))
                    self._posted.append((message_id, chunk))
                    if self._on_shown is not None and not final:
                        self._on_shown(message_id)
                        self._on_shown = None
                if marked:
                    self._marked = message_id
            if final:
                for message_id, _ in self._posted[len(chunks) :]:
                    await self._sink.delete(message_id)
                del self._posted[len(chunks) :]

    def _extra(self, marked: bool) -> dict[str, Controls | None]:
        """The controls argument of a post or edit: only for sinks of replies with controls."""
        if not self._controlled:
            return {}
        return {"controls": self._controls if marked else None}
