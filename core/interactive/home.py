"""What a person's home page shows (Slack's App Home): usage against limits, where they talk to
the bot, quick prompts; for admins the workspace's settings and its top-spending channels."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from core.access import is_admin
from core.events import Platform, User
from core.governance.budgets import day_start, month_start
from core.settings import Settings
from core.store import Store

QUICK_PROMPTS = (
    ("Summarize", "Summarize this thread for me."),
    ("Draft a reply", "Help me draft a reply."),
    ("Explain", "Explain this in simple terms."),
)


@dataclass(frozen=True, slots=True)
class HomeSummary:
    """One person's page."""

    user_id: str
    today_usd: float
    month_usd: float
    month_tokens: int
    daily_limit_usd: float | None
    monthly_limit_usd: float | None
    channels: list[str]
    prompts: tuple[tuple[str, str], ...] = QUICK_PROMPTS
    admin: bool = False
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    top_channels: list[tuple[str, float]] = field(default_factory=list)


async def home_summary(
    store: Store, settings: Settings, platform: Platform, workspace: str, user: User
) -> HomeSummary:
    """Gather a person's page from the store."""
    now = time.time()
    kind = platform.value
    today = await store.usage.totals(kind, workspace, day_start(now), user_id=user.id)
    month = await store.usage.totals(kind, workspace, month_start(now), user_id=user.id)
    admin = is_admin(user, settings.access.admin_user_ids)
    return HomeSummary(
        user_id=user.id,
        today_usd=today.cost_usd,
        month_usd=month.cost_usd,
        month_tokens=month.prompt_tokens + month.completion_tokens,
        daily_limit_usd=settings.budgets.user_daily_usd,
        monthly_limit_usd=settings.budgets.user_monthly_usd,
        channels=await store.interactive.channels_of(kind, workspace, user.id),
        admin=admin,
        overrides=await store.scoped.in_workspace(kind, workspace) if admin else {},
        top_channels=(
            await store.usage.top_channels(kind, workspace, month_start(now)) if admin else []
        ),
    )
