"""The local knowledge base's tables: one row per ingested file, its chunks with embeddings."""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.store.db import Database, Tx
from core.store.text import storable


@dataclass(frozen=True, slots=True)
class KnowledgeChunk:
    """One embedded piece of a file (`embedding` is float32 bytes)."""

    position: int
    heading: str
    text: str
    embedding: bytes
    path: str = ""


class Knowledge:
    """Files and chunks of the local knowledge base."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def digest(self, path: str) -> str | None:
        """The SHA-256 of the file as last ingested, or None."""
        row = await self._db.fetchone("SELECT sha256 FROM knowledge_files WHERE path = ?", (path,))
        return None if row is None else str(row[0])

    async def replace_file(
        self, path: str, digest: str, model: str, chunks: list[KnowledgeChunk]
    ) -> None:
        """Store a file's new chunks in place of its old ones, atomically."""

        async def store(tx: Tx) -> None:
            await tx.execute("DELETE FROM knowledge_chunks WHERE path = ?", (path,))
            await tx.execute(
                "INSERT INTO knowledge_files VALUES (?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                "sha256 = excluded.sha256, chunks = excluded.chunks, "
                "updated_at = excluded.updated_at",
                (path, digest, len(chunks), time.time()),
            )
            await tx.executemany(
                "INSERT INTO knowledge_chunks (path, position, heading, text, model, embedding) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (path, c.position, storable(c.heading), storable(c.text), model, c.embedding)
                    for c in chunks
                ],
            )

        await self._db.write(store)

    async def revision(self) -> tuple[int, int, int]:
        """A fingerprint of the ingested files that changes whenever one is added or re-ingested:
        (files, the sum of their `updated_at` in milliseconds, their chunks). One read of the small
        files table, cheap enough to ask before every search; a sum rather than the newest time,
        so a re-ingest stamped by a machine whose clock is behind still changes it."""
        row = await self._db.fetchone(
            "SELECT COUNT(*), COALESCE(SUM(CAST(updated_at * 1000 AS BIGINT)), 0), "
            "COALESCE(SUM(chunks), 0) FROM knowledge_files"
        )
        return (0, 0, 0) if row is None else (int(row[0]), int(row[1]), int(row[2]))

    async def chunks(self, model: str) -> list[KnowledgeChunk]:
        """Every chunk embedded with `model`, in ingest order."""
        rows = await self._db.fetchall(
            "SELECT path, position, heading, text, embedding FROM knowledge_chunks "
            "WHERE model = ? ORDER BY id",
            (model,),
        )
        return [KnowledgeChunk(r[1], r[2], r[3], bytes(r[4]), path=r[0]) for r in rows]
