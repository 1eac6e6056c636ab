"""The rows exports read: conversations by key or channel, their messages with each turn's
status and model, and the verdict of the feedback on each turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from core.llm.types import ToolCall
from core.store.db import Database
from core.store.records import Conversation, decode_tool_calls

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

    @property
    def record(self) -> Conversation:
        """The store's record of it (for its redaction placeholders)."""
        return Conversation(self.id, self.key, self.epoch)


@dataclass(frozen=True, slots=True)
class ExportMessage:
    """One message with its turn's status and model."""

    id: int
    conversation_id: int
    epoch: int
    turn_id: int | None
    role: str
    user_id: str
    user_name: str
    content: str
    tool_calls: tuple[ToolCall, ...]
    tool_call_id: str
    tokens: int
    created_at: float
    removed: str
    turn_status: str
    model: str


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

    async def messages(
        self, conversations: Sequence[ExportConversation]
    ) -> AsyncIterator[tuple[ExportConversation, list[ExportMessage]]]:
        """Each conversation with its messages (every epoch, in conversation order), reading
        `CONVERSATION_BATCH` conversations per query."""
        for start in range(0, len(conversations), CONVERSATION_BATCH):
            batch = conversations[start : start + CONVERSATION_BATCH]
            marks = ", ".join("?" * len(batch))
            rows = await self._db.fetchall(
                "SELECT m.id, m.conversation_id, m.epoch, m.turn_id, m.role, m.user_id, "
                "m.user_name, m.content, m.tool_calls, m.tool_call_id, m.tokens, m.created_at, "
                "m.removed, COALESCE(t.status, ''), COALESCE(t.model, '') FROM messages m "
                "LEFT JOIN turns t ON t.id = m.turn_id "
                f"WHERE m.conversation_id IN ({marks}) "
                "ORDER BY m.conversation_id, m.epoch, COALESCE(m.turn_id, 0), m.id",
                tuple(c.id for c in batch),
            )
            grouped: dict[int, list[ExportMessage]] = {c.id: [] for c in batch}
            for r in rows:
                calls = decode_tool_calls(r[8])
                grouped[r[1]].append(
                    ExportMessage(
                        r[0],
                        r[1],
                        r[2],
                        r[3],
                        r[4],
                        r[5],
                        r[6],
                        r[7],
                        calls,
                        r[9],
                        r[10],
                        r[11],
                        r[12],
                        r[13],
                        r[14],
                    )
                )
            for conversation in batch:
                yield conversation, grouped[conversation.id]

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
