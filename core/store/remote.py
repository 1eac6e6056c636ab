"""Mappings from our conversations to server-side OpenAI conversations, and vector stores."""

from __future__ import annotations

import time

from core.store.db import Database
from core.store.records import Conversation


class RemoteConversations:
    """One live remote conversation per conversation epoch; replaced ones are kept for audit."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def live(self, conversation: Conversation) -> str | None:
        """The remote conversation id in use, if any."""
        row = await self._db.fetchone(
            "SELECT remote_id FROM remote_conversations "
            "WHERE conversation_id = ? AND epoch = ? AND replaced_at IS NULL",
            (conversation.id, conversation.epoch),
        )
        return row[0] if row else None

    async def claim(self, conversation: Conversation, remote_id: str) -> str:
        """Record `remote_id` as live unless another creator won; returns the live id."""
        await self._db.execute(
            "INSERT INTO remote_conversations (conversation_id, epoch, remote_id, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (conversation.id, conversation.epoch, remote_id, time.time()),
        )
        live = await self.live(conversation)
        assert live is not None
        return live

    async def replace(self, conversation: Conversation, old_id: str) -> None:
        """Retire a remote id (e.g. it no longer exists remotely)."""
        await self._db.execute(
            "UPDATE remote_conversations SET replaced_at = ? WHERE remote_id = ?",
            (time.time(), old_id),
        )

    async def history(self, conversation: Conversation) -> list[str]:
        """Every remote id this conversation used, oldest first."""
        rows = await self._db.fetchall(
            "SELECT remote_id FROM remote_conversations WHERE conversation_id = ? "
            "ORDER BY created_at",
            (conversation.id,),
        )
        return [row[0] for row in rows]


class VectorStores:
    """Named vector stores and the files ingested into them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, name: str) -> str | None:
        """The remote id of a named vector store."""
        row = await self._db.fetchone("SELECT remote_id FROM vector_stores WHERE name = ?", (name,))
        return row[0] if row else None

    async def save(self, name: str, remote_id: str) -> None:
        """Remember a vector store."""
        await self._db.execute(
            "INSERT INTO vector_stores VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "remote_id = excluded.remote_id",
            (name, remote_id, time.time()),
        )

    async def file_hash(self, store: str, path: str) -> str | None:
        """The hash of the file last ingested from `path`."""
        row = await self._db.fetchone(
            "SELECT sha256 FROM ingested_files WHERE vector_store = ? AND path = ?", (store, path)
        )
        return row[0] if row else None

    async def record_file(self, store: str, path: str, sha256: str, file_id: str) -> None:
        """Remember an ingested file."""
        await self._db.execute(
            "INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?) ON CONFLICT (vector_store, path) "
            "DO UPDATE SET sha256 = excluded.sha256, file_id = excluded.file_id",
            (store, path, sha256, file_id, time.time()),
        )
