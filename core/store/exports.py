"""The rows exports read: conversations by key or channel, their messages with each turn's
status and model, and the verdict of the feedback on each turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from core.store.db import Database
from core.store.records import MESSAGE_ORDER, MESSAGE_RECORD, MessageRecord

CONVERSATION_BATCH = 200  # conversations whose messages are read in one query


@dataclass(frozen=True, slots=True)
class ExportConversation:
    """A conversation to export."""

    id: int
    key: str
    platform: str
    workspace: str
    channel: str
    thread: str
    epoch: int


_CONVERSATION = "SELECT id, key, platform, workspace, channel, thread, epoch FROM conversations"


class Exports:
    """Reads for `python -m bots export`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def by_key(self, key: str) -> ExportConversation | None:
        """The conversation with this key (as shown on the admin site), if any."""
        row = await self._db.fetchone(f"{_CONVERSATION} WHERE key = ?", (key,))
        return ExportConversation(*row) if row else None

    async def in_channel(self, channel: str) -> list[ExportConversation]:
        """Every conversation in a channel id (on any platform and workspace), oldest first."""
        rows = await self._db.fetchall(f"{_CONVERSATION} WHERE channel = ? ORDER BY id", (channel,))
        return [ExportConversation(*row) for row in rows]

    async def with_feedback(self, value: str) -> list[ExportConversation]:
        """Conversations with at least one turn that got feedback of this value, oldest first."""
        rows = await self._db.fetchall(
            f"{_CONVERSATION} WHERE id IN (SELECT t.conversation_id FROM feedback f "
            "JOIN turns t ON t.id = f.turn_id WHERE f.value = ?) ORDER BY id",
            (value,),
        )
        return [ExportConversation(*row) for row in rows]

    async def batches(
        self, conversations: Sequence[ExportConversation]
    ) -> AsyncIterator[list[tuple[ExportConversation, list[MessageRecord]]]]:
        """The conversations with their messages (every epoch, in conversation order),
        `CONVERSATION_BATCH` conversations per query and per batch yielded."""
        for start in range(0, len(conversations), CONVERSATION_BATCH):
            batch = conversations[start : start + CONVERSATION_BATCH]
            marks = ", ".join("?" * len(batch))
            rows = await self._db.fetchall(
                f"{MESSAGE_RECORD} WHERE m.conversation_id IN ({marks}) "
                f"ORDER BY m.conversation_id, {MESSAGE_ORDER}",
                tuple(c.id for c in batch),
            )
            grouped: dict[int, list[MessageRecord]] = {c.id: [] for c in batch}
            for row in rows:
                message = MessageRecord.from_row(row)
                grouped[message.conversation_id].append(message)
            yield [(conversation, grouped[conversation.id]) for conversation in batch]

    async def verdicts(self, conversation_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """Per turn of these conversations: (👍 count, 👎 count)."""
        if not conversation_ids:
            return {}
        marks = ", ".join("?" * len(conversation_ids))
        rows = await self._db.fetchall(
            "SELECT f.turn_id, SUM(CASE WHEN f.value = 'positive' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN f.value = 'negative' THEN 1 ELSE 0 END) FROM feedback f "
            f"JOIN turns t ON t.id = f.turn_id WHERE t.conversation_id IN ({marks}) "
            "GROUP BY f.turn_id",
            tuple(conversation_ids),
        )
        return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}
