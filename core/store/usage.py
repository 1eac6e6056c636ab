"""Usage rows: one per model call, with tokens and cost, and the sums reports need."""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.store.db import Database


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One model call's usage, attributed to a person and a place."""

    platform: str
    workspace: str
    channel: str
    user_id: str
    model: str
    purpose: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: float
    turn_id: int | None = None
    conversation_id: int | None = None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over usage rows."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class UsageLog:
    """Writes and sums of usage rows."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, row: UsageRow) -> None:
        """Store one usage row."""
        await self._db.execute(
            "INSERT INTO usage (turn_id, conversation_id, platform, workspace, channel, user_id, "
            "model, purpose, prompt_tokens, cached_tokens, completion_tokens, cost_usd, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.turn_id,
                row.conversation_id,
                row.platform,
                row.workspace,
                row.channel,
                row.user_id,
                row.model,
                row.purpose,
                row.prompt_tokens,
                row.cached_tokens,
                row.completion_tokens,
                row.cost_usd,
                time.time(),
            ),
        )

    async def totals(
        self, platform: str, workspace: str, since: float, user_id: str | None = None
    ) -> UsageTotals:
        """Sums for a workspace (or one user in it) since a time."""
        sql = (
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
            "COALESCE(SUM(cost_usd), 0) FROM usage WHERE platform = ? AND workspace = ? "
            "AND created_at >= ?"
        )
        params: tuple[object, ...] = (platform, workspace, since)
        if user_id is not None:
            sql += " AND user_id = ?"
            params += (user_id,)
        row = await self._db.fetchone(sql, params)
        assert row is not None
        return UsageTotals(int(row[0]), int(row[1]), int(row[2]), float(row[3]))

    async def for_turn(self, turn_id: int) -> list[UsageRow]:
        """The usage rows of one turn."""
        rows = await self._db.fetchall(
            "SELECT platform, workspace, channel, user_id, model, purpose, prompt_tokens, "
            "cached_tokens, completion_tokens, cost_usd, turn_id, conversation_id "
            "FROM usage WHERE turn_id = ? ORDER BY id",
            (turn_id,),
        )
        return [UsageRow(*row) for row in rows]

    async def top_users(
        self, platform: str, workspace: str, since: float, limit: int = 5
    ) -> list[tuple[str, float, int]]:
        """(user id, cost, tokens) of the biggest spenders since a time."""
        rows = await self._db.fetchall(
            "SELECT user_id, SUM(cost_usd), SUM(prompt_tokens + completion_tokens) FROM usage "
            "WHERE platform = ? AND workspace = ? AND created_at >= ? AND user_id != '' "
            "GROUP BY user_id ORDER BY SUM(cost_usd) DESC LIMIT ?",
            (platform, workspace, since, limit),
        )
        return [(row[0], float(row[1]), int(row[2])) for row in rows]
