"""The earlier messages of a thread the bot is mentioned into ("summarize this thread"): when a
conversation in a thread is new to the bot, its first turn also sees what was said before."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import structlog

from core.context.ports import Ports
from core.context.reader import ChannelReader
from core.events import MAIN_THREAD, Event, HistoryUnavailable
from core.llm.tokens import TokenCounter
from core.llm.types import Message

log = structlog.get_logger(__name__)

HEADER = "Earlier messages in this thread, from before I was mentioned (for context):\n"
SAME_MESSAGE = timedelta(seconds=5)  # the mention itself: the asker's last message, this recent


class ThreadBackfill:
    """Adds a thread's earlier messages to the first turn of a conversation in it."""

    def __init__(self, ports: Ports, tokens: TokenCounter, *, max_tokens: int = 4000) -> None:
        self._ports = ports
        self._tokens = tokens
        self._max_tokens = max_tokens

    async def messages(
        self, event: Event, messages: tuple[Message, ...], budget: int
    ) -> tuple[Message, ...]:
        """`messages` with the thread's earlier messages before this turn's, when the
        conversation is new (only this turn's message) and in a thread of a platform with
        history that this message did not start; otherwise unchanged. A failed read is logged
        and skipped."""
        if (
            event.starts_thread
            or event.key.thread == MAIN_THREAD
            or len(messages) != 1
            or messages[0].role != "user"
        ):
            return messages
        port = self._ports.get(event.platform)
        if port is None:
            return messages
        try:
            page = await port.history(event.key, limit=100)
        except HistoryUnavailable as exc:
            log.info("thread_backfill_skipped", reason=str(exc))
            return messages
        earlier = list(page.messages)
        newest_allowed = event.received_at + timedelta(seconds=1)
        earlier = [m for m in earlier if m.at <= newest_allowed]
        last = earlier[-1] if earlier else None
        if (
            last
            and last.user_id == event.user.id
            and (
                last.at >= event.received_at - SAME_MESSAGE
                or (event.text and event.text in last.text)
            )
        ):
            earlier.pop()  # the mention that started this turn
        if not earlier:
            return messages
        reader = ChannelReader(
            port,
            event.key,
            event.user.id,
            self._tokens,
            max_tokens=min(self._max_tokens, budget // 4),
        )
        transcript = reader.render(
            replace(page, messages=tuple(earlier), next_cursor=None), "this thread"
        )
        return (Message(role="user", text=HEADER + transcript.text), *messages)
