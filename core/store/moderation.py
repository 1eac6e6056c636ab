"""Moderation events: every flag and block, with a redacted excerpt."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from core.events import ConversationKey
from core.store.db import Database
from core.store.text import storable


@dataclass(frozen=True, slots=True)
class ModerationEvent:
    """One recorded moderation decision."""

    created_at: float
    channel: str
    user_id: str
    direction: str
    action: str
    categories: tuple[str, ...]
    excerpt: str


class ModerationLog:
    """Writes and reports of moderation events."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        key: ConversationKey,
        user_id: str,
        *,
        direction: str,
        action: str,
        scores: dict[str, float],
        categories: list[str],
        excerpt: str,
    ) -> None:
        """Store one flag, block or moderation error."""
        await self._db.execute(
            "INSERT INTO moderation_events (created_at, platform, workspace, channel, thread, "
            "user_id, direction, action, categories, scores, excerpt) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                key.platform.value,
                key.workspace,
                key.channel,
                key.thread,
                storable(user_id),
                direction,
                action,
                json.dumps(categories),
                json.dumps(scores),
                storable(excerpt),
            ),
        )

    async def counts(self, platform: str, workspace: str, since: float) -> dict[str, int]:
        """Events per category since a time."""
        rows = await self._db.fetchall(
            "SELECT categories FROM moderation_events "
            "WHERE platform = ? AND workspace = ? AND created_at >= ?",
            (platform, workspace, since),
        )
        counts: dict[str, int] = {}
        for row in rows:
            for category in json.loads(row[0]):
                counts[category] = counts.get(category, 0) + 1
        return counts

    async def recent(self, platform: str, workspace: str, limit: int = 10) -> list[ModerationEvent]:
        """The newest events of a workspace."""
        rows = await self._db.fetchall(
            "SELECT created_at, channel, user_id, direction, action, categories, excerpt "
            "FROM moderation_events WHERE platform = ? AND workspace = ? "
            "ORDER BY id DESC LIMIT ?",
            (platform, workspace, limit),
        )
        return [
            ModerationEvent(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), r[6])
            for r in rows
        ]
