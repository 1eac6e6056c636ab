"""Aggregates for the admin site: activity and spend per day, usage by dimension, quality.

Read-only. Every range is [start, end) in Unix seconds; days are UTC days counted from `start`
(a UTC midnight). Spending holds of running turns (purpose 'reserved') are left out except where
the budget check counts them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.store.db import Database
from core.store.usage import RESERVED

DAY = 86_400
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


def day_of(dialect: str, column: str) -> str:
    """SQL for the whole UTC days from a `?` parameter (a midnight) to `column` (not before it)."""
    if dialect == "postgresql":
        return f"CAST(FLOOR(({column} - ?) / {DAY}) AS INTEGER)"
    return f"CAST(({column} - ?) / {DAY} AS INTEGER)"  # never negative here: truncation floors


class Reports:
    """The admin site's aggregate queries."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def daily(self, start: float, days: int) -> list[Day]:
        """Turns, distinct people, cost and tokens for each of `days` days from `start`."""
        end = start + days * DAY
        day = day_of(self._db.dialect, "created_at")
        turns = await self._db.fetchall(
            f"SELECT {day}, COUNT(*), COUNT(DISTINCT user_key) FROM turns "
            "WHERE created_at >= ? AND created_at < ? GROUP BY 1",
            (start, start, end),
        )
        usage = await self._db.fetchall(
            f"SELECT {day}, SUM(cost_usd), SUM(prompt_tokens + completion_tokens) FROM usage "
            f"WHERE created_at >= ? AND created_at < ? AND purpose != '{RESERVED}' GROUP BY 1",
            (start, start, end),
        )
        counts = {int(r[0]): (int(r[1]), int(r[2])) for r in turns}
        spend = {int(r[0]): (float(r[1] or 0), int(r[2] or 0)) for r in usage}
        return [Day(i, *counts.get(i, (0, 0)), *spend.get(i, (0.0, 0))) for i in range(days)]

    async def people(self, start: float, end: float) -> int:
        """Distinct people who started a turn in the range."""
        row = await self._db.fetchone(
            "SELECT COUNT(DISTINCT user_key) FROM turns WHERE created_at >= ? AND created_at < ?",
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
