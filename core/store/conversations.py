"""Conversation rows: one per conversation key, with the epoch that a reset advances."""

from __future__ import annotations

import time

from core.events import ConversationKey
from core.store.db import Database, Tx
from core.store.records import Conversation

UPSERT = (
    "INSERT INTO conversations (key, platform, workspace, channel, thread, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at "
    "RETURNING id, key, epoch"
)


async def upsert(tx: Tx, key: ConversationKey, now: float) -> Conversation:
    """Create the conversation if new (inside the caller's transaction) and return it."""
    params = (str(key), key.platform.value, key.workspace, key.channel, key.thread, now, now)
    row = await tx.fetchone(UPSERT, params)
    assert row is not None
    return Conversation(row["id"], row["key"], row["epoch"])


class Conversations:
    """Reads and resets of conversations."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: ConversationKey) -> Conversation | None:
        """The conversation for `key`, if it exists."""
        row = await self._db.fetchone(
            "SELECT id, key, epoch FROM conversations WHERE key = ?", (str(key),)
        )
        return Conversation(row["id"], row["key"], row["epoch"]) if row else None

    async def ensure(self, key: ConversationKey) -> Conversation:
        """The conversation for `key`, created if needed."""
        return await self._db.write(lambda tx: upsert(tx, key, time.time()), serializable=False)

    async def reset(self, key: ConversationKey) -> int:
        """Start a new epoch: older messages stay stored but are no longer sent. Returns the epoch."""

        async def advance(tx: Tx) -> int:
            conversation = await upsert(tx, key, time.time())
            epoch = conversation.epoch + 1
            await tx.execute(
                "UPDATE conversations SET epoch = ? WHERE id = ?", (epoch, conversation.id)
            )
            return epoch

        return await self._db.write(advance)
