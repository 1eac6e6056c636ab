"""Usage rows: one per model call, with tokens and cost, and the sums reports need."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from core.store.db import Database, Tx

# The purpose of a provisional row holding a running turn's estimated cost until the turn ends.
RESERVED = "reserved"
RELEASE = f"DELETE FROM usage WHERE turn_id = ? AND purpose = '{RESERVED}'"
INSERT = (
    "INSERT INTO usage (turn_id, conversation_id, platform, workspace, channel, user_id, "
    "model, purpose, prompt_tokens, cached_tokens, completion_tokens, cost_usd, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


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
class Limit:
    """A spending limit over usage since a time: one user's, or (user_id None) a workspace's."""

    usd: float
    since: float
    user_id: str | None = None


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
        await self._db.execute(INSERT, _values(row))

    async def reserve(self, row: UsageRow, limits: Sequence[Limit]) -> tuple[Limit, float] | None:
        """Hold `row.cost_usd` for `row.turn_id` if no limit would be passed; else the first limit
        it would pass, with the amount already spent. Check and hold are one transaction, so
        concurrent turns, in any process, cannot together spend past a limit. The hold lasts
        until the turn ends (`RELEASE`, run when a turn is finished or failed)."""

        async def hold(tx: Tx) -> tuple[Limit, float] | None:
            for limit in limits:
                sql, params = _totals(row.platform, row.workspace, limit.since, limit.user_id)
                spent = await tx.fetchone(sql, params)
                assert spent is not None
                if float(spent[3]) + row.cost_usd > limit.usd:
                    return limit, float(spent[3])
            await tx.execute(INSERT, _values(replace(row, purpose=RESERVED)))
            return None

        return await self._db.write(hold)

    async def totals(
        self, platform: str, workspace: str, since: float, user_id: str | None = None
    ) -> UsageTotals:
        """Sums for a workspace (or one user in it) since a time, holds of running turns included."""
        row = await self._db.fetchone(*_totals(platform, workspace, since, user_id))
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

    async def top_channels(
        self, platform: str, workspace: str, since: float, limit: int = 5
    ) -> list[tuple[str, float]]:
        """(channel id, cost) of the biggest-spending channels since a time."""
        rows = await self._db.fetchall(
            "SELECT channel, SUM(cost_usd) FROM usage WHERE platform = ? AND workspace = ? "
            "AND created_at >= ? GROUP BY channel ORDER BY SUM(cost_usd) DESC LIMIT ?",
            (platform, workspace, since, limit),
        )
        return [(row[0], float(row[1])) for row in rows]


def _totals(
    platform: str, workspace: str, since: float, user_id: str | None
) -> tuple[str, tuple[object, ...]]:
    sql = (
        f"SELECT COALESCE(SUM(CASE WHEN purpose = '{RESERVED}' THEN 0 ELSE 1 END), 0), "
        "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
        "COALESCE(SUM(cost_usd), 0) FROM usage WHERE platform = ? AND workspace = ? "
        "AND created_at >= ?"
    )
    params: tuple[object, ...] = (platform, workspace, since)
    if user_id is not None:
        sql += " AND user_id = ?"
        params += (user_id,)
    return sql, params


def _values(row: UsageRow) -> tuple[object, ...]:
    return (
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
    )
