"""Spending limits per user and workspace (day and month, UTC) and per-user request rates."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.events import Event
from core.settings import Settings
from core.store import Store
from core.store.turns import user_key
from core.store.usage import Limit, UsageRow


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a turn may not call the model, and when that changes."""

    reason: str
    message: str
    resets_at: float


def day_start(now: float) -> float:
    """00:00 UTC of the day containing `now`."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def month_start(now: float) -> float:
    """00:00 UTC on the first of the month containing `now`."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def next_month(now: float) -> float:
    """00:00 UTC on the first of the next month."""
    first = datetime.fromtimestamp(month_start(now), UTC)
    return (first + timedelta(days=32)).replace(day=1).timestamp()


def _when(resets_at: float, now: float) -> str:
    moment = datetime.fromtimestamp(resets_at, UTC)
    seconds = int(resets_at - now)
    if seconds < 120:
        return f"in {max(seconds, 1)} s"
    hours, minutes = divmod(seconds // 60, 60)
    span = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"at {moment:%Y-%m-%d %H:%M} UTC (in {span})"


class Budgets:
    """Checks limits before a model call, from the usage rows and turn rows in the store."""

    def __init__(
        self, settings: Settings, store: Store, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock

    @property
    def enabled(self) -> bool:
        s = self._settings
        limits = (
            s.budgets.user_daily_usd,
            s.budgets.user_monthly_usd,
            s.budgets.workspace_daily_usd,
            s.budgets.workspace_monthly_usd,
            s.budgets.rate_limit_per_minute,
        )
        return any(limit is not None for limit in limits)

    async def check_rate(self, event: Event, turn_id: int) -> Refusal | None:
        """Refuse when the user started more turns in the last minute than allowed."""
        limit = self._settings.budgets.rate_limit_per_minute
        if limit is None:
            return None
        now = self._clock()
        recent = await self._store.turns.count_before(user_key(event), now - 60, turn_id)
        if recent < limit:
            return None
        return Refusal(
            "rate",
            f"You're sending messages faster than the limit of {limit} per minute. "
            f"Try again {_when(now + 60, now)}.",
            now + 60,
        )

    def _limits(self, now: float, user: str) -> list[tuple[Limit, str, float]]:
        """The configured spending limits for `user`: (limit, period, when it resets)."""
        s = self._settings
        day, month = day_start(now), month_start(now)
        limits = (
            (s.budgets.user_daily_usd, day, user, "daily", day + 86_400),
            (s.budgets.user_monthly_usd, month, user, "monthly", next_month(now)),
            (s.budgets.workspace_daily_usd, day, None, "daily", day + 86_400),
            (s.budgets.workspace_monthly_usd, month, None, "monthly", next_month(now)),
        )
        return [
            (Limit(usd, since, who), period, resets_at)
            for usd, since, who, period, resets_at in limits
            if usd is not None
        ]

    def _refusal(
        self, limit: Limit, spent: float, checks: list[tuple[Limit, str, float]], now: float
    ) -> Refusal:
        period, resets_at = next((p, r) for c, p, r in checks if c == limit)
        whose, scope = ("your", "user") if limit.user_id else ("this workspace's", "workspace")
        return Refusal(
            f"{period}_{scope}_budget",
            f"This would go over {whose} {period} AI budget of ${limit.usd:.2f} "
            f"(${spent:.2f} used). It resets {_when(resets_at, now)}.",
            resets_at,
        )

    async def reserve_spend(
        self, event: Event, turn_id: int, model: str, estimate_usd: float
    ) -> Refusal | None:
        """Refuse when this call (at its estimated cost) would pass a spending limit; otherwise
        hold the estimate for the turn, so concurrent turns in any process count it too."""
        now = self._clock()
        user = event.user.id
        checks = self._limits(now, user)
        if not checks:
            return None
        hold = UsageRow(
            event.platform.value,
            event.workspace,
            event.key.channel,
            user,
            model,
            "chat",
            0,
            0,
            0,
            estimate_usd,
            turn_id=turn_id,
        )
        passed = await self._store.usage.reserve(hold, [limit for limit, _, _ in checks])
        if passed is None:
            return None
        return self._refusal(*passed, checks, now)

    async def check_spend(
        self, platform: str, workspace: str, user_id: str, estimate_usd: float
    ) -> Refusal | None:
        """Refuse a call outside a turn (a scheduled digest, billed to its owner) that would
        pass a spending limit at its estimated cost. A check only: nothing is held."""
        now = self._clock()
        checks = self._limits(now, user_id)
        for limit, _, _ in checks:
            spent = await self._store.usage.totals(platform, workspace, limit.since, limit.user_id)
            if spent.cost_usd + estimate_usd > limit.usd:
                return self._refusal(limit, spent.cost_usd, checks, now)
        return None
