"""Overview (the last 30 days and budget use), Usage (by dimension, as CSV too) and Quality."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import get_args

from aiohttp import web

from bots.admin.charts import bar_chart, count, meter
from bots.admin.dates import last_days, parse_range
from bots.admin.render import usd
from bots.admin.site import Route, Site
from core.governance.budgets import day_start, month_start
from core.store.reports import Dimension

DAYS = 30


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """One spender against one limit."""

    limit_name: str
    who: str
    spent: float
    limit: float

    @property
    def fraction(self) -> float:
        return self.spent / self.limit if self.limit else 0.0


def _day_labels(first: datetime, days: int) -> list[str]:
    return [(first + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]


def _spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (ids and names are user-controlled)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def routes(site: Site) -> list[Route]:
    """The report pages."""

    async def budget_use(now: float) -> list[BudgetUse]:
        budgets = site.settings.budgets
        limits = (
            ("workspace per day", budgets.workspace_daily_usd, day_start(now), False),
            ("workspace per month", budgets.workspace_monthly_usd, month_start(now), False),
            ("person per day", budgets.user_daily_usd, day_start(now), True),
            ("person per month", budgets.user_monthly_usd, month_start(now), True),
        )
        uses = []
        for name, limit, since, per_user in limits:
            if limit is None:
                continue
            for spend in await site.store.reports.spend_since(since, per_user=per_user, limit=10):
                who = f"{spend.platform}:{spend.workspace}" + (
                    f" {spend.user_id}" if per_user else ""
                )
                uses.append(BudgetUse(name, who, spend.cost_usd, limit))
        return uses

    async def overview(request: web.Request) -> web.StreamResponse:
        now = time.time()
        days = last_days(DAYS, now)
        series = await site.store.reports.daily(days.start, DAYS)
        labels = _day_labels(datetime.fromtimestamp(days.start, UTC), DAYS)
        charts = [
            (title, bar_chart(title, labels, values, fmt=usd if money else count))
            for title, values, money in (
                ("Turns per day", [d.turns for d in series], False),
                ("Active people per day", [d.users for d in series], False),
                ("Cost per day (USD)", [d.cost_usd for d in series], True),
                ("Tokens per day", [d.tokens for d in series], False),
            )
        ]
        uses = await budget_use(now)
        return site.pages.render(
            request,
            "overview.html",
            title="Overview",
            charts=charts,
            totals={
                "turns": sum(d.turns for d in series),
                "people": await site.store.reports.people(days.start, days.end),
                "cost": sum(d.cost_usd for d in series),
                "tokens": sum(d.tokens for d in series),
            },
            uses=[(use, meter(use.fraction, f"{use.fraction:.0%} of the limit")) for use in uses],
            budgets=site.settings.budgets,
            first=labels[0],
            last=labels[-1],
        )

    def dimension_of(request: web.Request) -> Dimension | None:
        by = request.query.get("by", "")
        return by if by in get_args(Dimension) else None  # type: ignore[return-value]

    async def usage(request: web.Request) -> web.StreamResponse:
        span, error = parse_range(
            request.query.get("from", ""), request.query.get("to", ""), time.time()
        )
        tables = {
            dimension: await site.store.reports.usage_by(dimension, span.start, span.end)
            for dimension in get_args(Dimension)
        }
        return site.pages.render(
            request, "usage.html", title="Usage", span=span, error=error, tables=tables
        )

    async def usage_csv(request: web.Request) -> web.StreamResponse:
        dimension = dimension_of(request)
        if dimension is None:
            return web.Response(status=400, text="by= must be workspace, channel, user or model\n")
        span, _ = parse_range(
            request.query.get("from", ""), request.query.get("to", ""), time.time()
        )
        groups = await site.store.reports.usage_by(dimension, span.start, span.end, limit=100_000)
        key_columns = {
            "workspace": ["platform", "workspace"],
            "channel": ["platform", "workspace", "channel"],
            "user": ["platform", "workspace", "user_id"],
            "model": ["model"],
        }[dimension]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                *key_columns,
                "calls",
                "prompt_tokens",
                "cached_tokens",
                "completion_tokens",
                "cost_usd",
            ]
        )
        for g in groups:
            writer.writerow(
                [
                    *(_spreadsheet_safe(part) for part in g.key),
                    g.calls,
                    g.prompt_tokens,
                    g.cached_tokens,
                    g.completion_tokens,
                    f"{g.cost_usd:.6f}",
                ]
            )
        name = f"usage-by-{dimension}-{span.first}-{span.last}.csv"
        return web.Response(
            text=out.getvalue(),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def quality(request: web.Request) -> web.StreamResponse:
        since = time.time() - DAYS * 86_400
        reports = site.store.reports
        rates = await reports.feedback_rates(since) if await reports.has_table("feedback") else []
        return site.pages.render(
            request,
            "quality.html",
            title="Quality",
            rates=rates,
            kinds=await reports.error_kinds(since),
            failed=await reports.failed_turns(50),
            days=DAYS,
        )

    return [
        ("GET", "/admin", overview),
        ("GET", "/admin/usage", usage),
        ("GET", "/admin/usage.csv", usage_csv),
        ("GET", "/admin/quality", quality),
    ]
