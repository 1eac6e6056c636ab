"""Per-conversation placeholder mappings of redacted values."""

from __future__ import annotations

import time
from collections.abc import Sequence

from core.governance.redaction import Placeholders
from core.store.db import Database
from core.store.records import Conversation
from core.store.text import storable


class Redactions:
    """Reads and writes of each conversation's placeholders."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, conversation: Conversation) -> Placeholders:
        """The conversation's placeholders (empty when nothing was redacted yet)."""
        row = await self._db.fetchone(
            "SELECT mapping FROM redactions WHERE conversation_id = ?", (conversation.id,)
        )
        return Placeholders.from_json(row["mapping"] if row else None)

    async def of_many(self, conversation_ids: Sequence[int]) -> dict[int, Placeholders]:
        """The placeholders of several conversations (those without any are left out)."""
        if not conversation_ids:
            return {}
        marks = ", ".join("?" * len(conversation_ids))
        rows = await self._db.fetchall(
            f"SELECT conversation_id, mapping FROM redactions WHERE conversation_id IN ({marks})",
            tuple(conversation_ids),
        )
        return {int(row[0]): Placeholders.from_json(row[1]) for row in rows}

    async def put(self, conversation: Conversation, placeholders: Placeholders) -> None:
        """Replace the conversation's placeholders."""
        await self._db.execute(
            "INSERT INTO redactions (conversation_id, mapping, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (conversation_id) DO UPDATE SET mapping = excluded.mapping, "
            "updated_at = excluded.updated_at",
            (conversation.id, storable(placeholders.to_json()), time.time()),
        )
