"""Aggregates for the admin site: activity and spend per day, usage by dimension, quality.

Read-only. Every range is [start, end) in Unix seconds; days are UTC days counted from `start`
(a UTC midnight). Spending holds of running turns (purpose 'reserved') are left out except where
the budget check counts them too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Literal

from core.store.db import Database, Tx
from core.store.usage import RESERVED

DAY = 86_400
CLOSED_AFTER = 600.0  # seconds after a day's end from which it is kept as a rollup
Dimension = Literal["workspace", "channel", "user", "model"]
# Each dimension's grouping columns (fixed names: never built from input).
DIMENSIONS: dict[Dimension, tuple[str, ...]] = {
    "workspace": ("platform", "workspace"),
    "channel": ("platform", "workspace", "channel"),
    "user": ("platform", "workspace", "user_id"),
    "model": ("model",),
}


@dataclass(frozen=True, slots=True)
class Day:
    """One UTC day's activity."""

    index: int  # days since the range's start
    turns: int = 0
    users: int = 0
    cost_usd: float = 0.0
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """Usage summed over one value of a dimension (e.g. one channel)."""

    key: tuple[str, ...]
    calls: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class Spend:
    """Spending of one workspace (user_id '') or one person in it since a time."""

    platform: str
    workspace: str
    user_id: str
    cost_usd: float


@dataclass(frozen=True, slots=True)
class FailedTurn:
    """A turn that failed, was refused or was interrupted."""

    id: int
    conversation_id: int
    conversation_key: str
    status: str
    model: str
    error: str
    created_at: float


@dataclass(frozen=True, slots=True)
class FeedbackRate:
    """Answers and the feedback on them for one channel and model."""

    platform: str
    workspace: str
    channel: str
    model: str
    answers: int
    positive: int
    negative: int


async def _keep(tx: Tx, days: list[tuple[float, Day]], now: float) -> None:
    await tx.executemany(
        "INSERT INTO daily_rollups (day_start, turns, people, cost_usd, tokens, computed_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day_start) DO NOTHING",
        [(start, d.turns, d.users, d.cost_usd, d.tokens, now) for start, d in days],
    )


class Reports:
    """The admin site's aggregate queries."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def daily(self, start: float, days: int, *, now: float | None = None) -> list[Day]:
        """Turns, distinct people, cost and tokens for each of `days` days from `start`.

        A day over (`CLOSED_AFTER` past its end, so no transaction still writes into it) is
        computed once and kept in `daily_rollups`: its turns and usage rows never change
        afterwards (erasure and retention keep them). The open days are computed each time.
        """
        now = time.time() if now is None else now
        stored = {
            float(r[0]): Day(0, int(r[1]), int(r[2]), float(r[3]), int(r[4]))
            for r in await self._db.fetchall(
                "SELECT day_start, turns, people, cost_usd, tokens FROM daily_rollups "
                "WHERE day_start >= ? AND day_start < ?",
                (start, start + days * DAY),
            )
        }
        result, closed = [], []
        for index in range(days):
            day_start = start + index * DAY
            day = stored.get(day_start) or await self._one_day(day_start)
            if day_start not in stored and day_start + DAY + CLOSED_AFTER <= now:
                closed.append((day_start, day))
            result.append(replace(day, index=index))
        if closed:
            await self._db.write(lambda tx: _keep(tx, closed, now), serializable=False)
        return result

    async def _one_day(self, day_start: float) -> Day:
        end = day_start + DAY
        turns = await self._db.fetchone(
            "SELECT COUNT(*), COUNT(DISTINCT user_key) FROM turns "
            "WHERE created_at >= ? AND created_at < ?",
            (day_start, end),
        )
        usage = await self._db.fetchone(
            "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(prompt_tokens + completion_tokens), 0) "
            f"FROM usage WHERE created_at >= ? AND created_at < ? AND purpose != '{RESERVED}'",
            (day_start, end),
        )
        assert turns is not None and usage is not None
        return Day(0, int(turns[0]), int(turns[1]), float(usage[0]), int(usage[1]))

    async def people(self, start: float, end: float) -> int:
        """Distinct people who started a turn in the range."""
        # DISTINCT in a subquery lets SQLite skip along the (user_key, created_at) index.
        row = await self._db.fetchone(
            "SELECT COUNT(*) FROM (SELECT DISTINCT user_key FROM turns "
            "WHERE created_at >= ? AND created_at < ?) AS people",
            (start, end),
        )
        return int(row[0]) if row else 0

    async def usage_by(
        self, dimension: Dimension, start: float, end: float, *, limit: int = 500
    ) -> list[UsageGroup]:
        """Usage in the range grouped by a dimension, the most expensive first."""
        columns = ", ".join(DIMENSIONS[dimension])
        rows = await self._db.fetchall(
            f"SELECT {columns}, COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), "
            "SUM(completion_tokens), SUM(cost_usd) FROM usage "
            f"WHERE created_at >= ? AND created_at < ? AND purpose != '{RESERVED}' "
            f"GROUP BY {columns} ORDER BY SUM(cost_usd) DESC, {columns} LIMIT ?",
            (start, end, limit),
        )
        width = len(DIMENSIONS[dimension])
        return [
            UsageGroup(
                tuple(str(v) for v in tuple(row)[:width]),
                int(row[width]),
                int(row[width + 1]),
                int(row[width + 2]),
                int(row[width + 3]),
                float(row[width + 4]),
            )
            for row in rows
        ]

    async def spend_since(self, since: float, *, per_user: bool, limit: int = 20) -> list[Spend]:
        """The biggest spenders since a time (holds of running turns included, as the budget
        check counts them): workspaces, or people within their workspace."""
        who = "platform, workspace, user_id" if per_user else "platform, workspace"
        rows = await self._db.fetchall(
            f"SELECT {who}, SUM(cost_usd) FROM usage WHERE created_at >= ? "
            + ("AND user_id != '' " if per_user else "")
            + f"GROUP BY {who} ORDER BY SUM(cost_usd) DESC LIMIT ?",
            (since, limit),
        )
        if per_user:
            return [Spend(r[0], r[1], r[2], float(r[3])) for r in rows]
        return [Spend(r[0], r[1], "", float(r[2])) for r in rows]

    async def failed_turns(self, limit: int = 50) -> list[FailedTurn]:
        """The newest turns that did not end with an answer, with their errors."""
        rows = await self._db.fetchall(
            "SELECT t.id, t.conversation_id, c.key, t.status, t.model, t.error, t.created_at "
            "FROM turns t JOIN conversations c ON c.id = t.conversation_id "
            "WHERE t.status IN ('failed', 'interrupted') ORDER BY t.id DESC LIMIT ?",
            (limit,),
        )
        return [FailedTurn(*row) for row in rows]

    async def error_kinds(self, since: float, *, limit: int = 100_000) -> dict[str, int]:
        """Failed and interrupted turns since a time, by the kind their error starts with
        (`rate_limited: …` counts as rate_limited), the most frequent first."""
        rows = await self._db.fetchall(
            "SELECT error FROM turns WHERE status IN ('failed', 'interrupted') "
            "AND created_at >= ? LIMIT ?",
            (since, limit),
        )
        kinds: dict[str, int] = {}
        for row in rows:
            kind = str(row[0]).partition(":")[0].strip() or "unknown"
            kinds[kind] = kinds.get(kind, 0) + 1
        return dict(sorted(kinds.items(), key=lambda item: (-item[1], item[0])))

    async def has_table(self, name: str) -> bool:
        """Whether a table exists (the feedback table is read only where it does)."""
        if self._db.dialect == "postgresql":
            row = await self._db.fetchone("SELECT to_regclass(?) IS NOT NULL", (name,))
            return bool(row and row[0])
        row = await self._db.fetchone(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        )
        return row is not None

    async def feedback_rates(self, since: float) -> list[FeedbackRate]:
        """Per channel and model since a time: answers given, and the 👍 and 👎 on them."""
        answers = await self._db.fetchall(
            "SELECT c.platform, c.workspace, c.channel, t.model, COUNT(*) FROM turns t "
            "JOIN conversations c ON c.id = t.conversation_id "
            "WHERE t.created_at >= ? AND t.status = 'done' GROUP BY 1, 2, 3, 4",
            (since,),
        )
        votes = await self._db.fetchall(
            "SELECT c.platform, c.workspace, c.channel, t.model, "
            "SUM(CASE WHEN f.value = 'positive' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN f.value = 'negative' THEN 1 ELSE 0 END) FROM feedback f "
            "JOIN turns t ON t.id = f.turn_id JOIN conversations c ON c.id = t.conversation_id "
            "WHERE t.created_at >= ? GROUP BY 1, 2, 3, 4",
            (since,),
        )
        given = {(r[0], r[1], r[2], r[3]): int(r[4]) for r in answers}
        return sorted(
            (
                FeedbackRate(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    given.get((r[0], r[1], r[2], r[3]), 0),
                    int(r[4]),
                    int(r[5]),
                )
                for r in votes
            ),
            key=lambda rate: (-(rate.positive + rate.negative), rate.channel, rate.model),
        )
