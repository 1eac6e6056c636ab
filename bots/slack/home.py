"""The App Home tab: a person's usage against limits, their channels, quick prompts, and for
admins the workspace's settings and top-spending channels (pure Block Kit)."""

from __future__ import annotations

import json
from typing import Any

from core.interactive.home import HomeSummary

JSON = dict[str, Any]


def _limit(spent: float, limit: float | None) -> str:
    if limit is None:
        return f"${spent:.4f} (no limit)"
    share = spent / limit if limit else 1.0
    return f"${spent:.4f} of ${limit:.2f} ({share:.0%})"


def _section(text: str) -> JSON:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def home_view(summary: HomeSummary) -> JSON:
    """The Home tab for one person."""
    blocks: list[JSON] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your assistant"}},
        _section(
            f"*This month:* {_limit(summary.month_usd, summary.monthly_limit_usd)}, "
            f"{summary.month_tokens:,} tokens\n"
            f"*Today:* {_limit(summary.today_usd, summary.daily_limit_usd)}"
        ),
        _section(
            "*Where you talk to me:* "
            + (", ".join(f"<#{c}>" for c in summary.channels) or "nowhere yet — mention me!")
        ),
        _section(
            "*Try asking:*\n"
            + "\n".join(f"• *{title}* — {text}" for title, text in summary.prompts)
        ),
    ]
    if summary.admin:
        blocks.append({"type": "divider"})
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": "Workspace"}})
        settings = [
            f"`{scope}`: " + ", ".join(f"{k}={json.dumps(v)[:80]}" for k, v in values.items())
            for scope, values in summary.overrides.items()
        ]
        blocks.append(_section("*Settings set here:*\n" + ("\n".join(settings) or "none")))
        top = ", ".join(f"<#{c}> ${cost:.4f}" for c, cost in summary.top_channels)
        blocks.append(_section("*Top-spending channels this month:* " + (top or "none")))
    return {"type": "home", "blocks": blocks[:100]}
