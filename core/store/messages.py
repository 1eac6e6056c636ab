"""Messages of a conversation and the newest-first window query."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence

from core.llm.types import ToolCall
from core.store.db import Database, Row, Tx
from core.store.records import Conversation, StoredMessage, decode_tool_calls, encode_tool_calls
from core.store.text import storable

INSERT = (
    "INSERT INTO messages (conversation_id, epoch, turn_id, role, user_id, user_name, content, "
    "tool_calls, tool_call_id, attachments, tokens, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)


async def insert(
    tx: Tx,
    conversation: Conversation,
    *,
    role: str,
    content: str,
    tokens: int,
    turn_id: int | None = None,
    user_id: str = "",
    user_name: str = "",
    tool_calls: tuple[ToolCall, ...] = (),
    tool_call_id: str = "",
    attachments: Sequence[dict[str, object]] = (),
) -> int:
    """Insert one message inside the caller's transaction; returns its id.

    Free text (content, names, tool calls) is stored as `storable` makes it: the same on both
    backends, never refused.
    """
    calls = tuple(
        ToolCall(storable(c.id), storable(c.name), storable(c.arguments), c.kind, c.server)
        for c in tool_calls
    )
    params = (
        conversation.id,
        conversation.epoch,
        turn_id,
        role,
        storable(user_id),
        storable(user_name),
        storable(content),
        encode_tool_calls(calls),
        storable(tool_call_id),
        json.dumps(list(attachments)) if attachments else None,
        tokens,
        time.time(),
    )
    row = await tx.fetchone(INSERT, params)
    assert row is not None
    return int(row[0])


def message_from_row(row: Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        role=row["role"],
        content=row["content"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        tokens=row["tokens"],
        tool_calls=decode_tool_calls(row["tool_calls"]),
        tool_call_id=row["tool_call_id"],
    )


class Messages:
    """Reads of stored messages."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def newest_first(
        self, conversation: Conversation, *, up_to_turn: int | None = None, after_turn: int = 0
    ) -> AsyncIterator[StoredMessage]:
        """Messages of the current epoch from the newest turn back; stop iterating when you have enough.

        Only turns in (`after_turn`, `up_to_turn`] are read, through the (conversation, epoch, turn,
        id) index in chunks, so the cost follows how many rows the caller consumes, not the history.
        """
        sql = (
            "SELECT id, role, content, user_id, user_name, tokens, tool_calls, tool_call_id "
            "FROM messages WHERE conversation_id = ? AND epoch = ? AND turn_id > ? "
            "AND turn_id <= ? AND superseded = 0 ORDER BY turn_id DESC, id DESC"
        )
        upper = up_to_turn if up_to_turn is not None else 2**62
        params = (conversation.id, conversation.epoch, after_turn, upper)
        async for row in self._db.iterate(sql, params):
            yield message_from_row(row)

    async def all(
        self, conversation: Conversation, *, superseded: bool = False
    ) -> list[StoredMessage]:
        """Every message of the current epoch, oldest first (for small conversations and tests);
        answers of earlier attempts of a regenerated turn only with `superseded`."""
        rows = await self._db.fetchall(
            "SELECT id, role, content, user_id, user_name, tokens, tool_calls, tool_call_id "
            "FROM messages WHERE conversation_id = ? AND epoch = ? "
            + ("" if superseded else "AND superseded = 0 ")
            + "ORDER BY turn_id, id",
            (conversation.id, conversation.epoch),
        )
        return [message_from_row(row) for row in rows]

    async def update_text(self, message_id: int, text: str, tokens: int) -> None:
        """Replace a stored message's text (e.g. with a voice clip's transcript)."""
        await self._db.execute(
            "UPDATE messages SET content = ?, tokens = ? WHERE id = ?",
            (storable(text), tokens, message_id),
        )
