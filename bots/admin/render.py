"""Pages from Jinja2 templates: autoescaped (stored messages are attacker-controlled), with the
signed-in admin, the CSRF token and the navigation in every page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
from aiohttp import web

from core.store.sessions import AdminSession

# (path, title) of the pages in the navigation, in order.
PAGES = (
    ("/admin", "Overview"),
    ("/admin/usage", "Usage"),
    ("/admin/quality", "Quality"),
    ("/admin/moderation", "Moderation"),
    ("/admin/conversations", "Conversations"),
    ("/admin/settings", "Settings"),
    ("/admin/health", "Health"),
    ("/admin/data", "Data"),
)
SESSION_KEY = web.RequestKey("admin_session", AdminSession)


def when(moment: float | None) -> str:
    """A Unix time as `2026-05-01 12:03 UTC` ('—' for none)."""
    if moment is None:
        return "—"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def usd(value: float) -> str:
    """Dollars with enough decimals for small model calls."""
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:,.4f}"


def seconds(value: float | None) -> str:
    """A duration in s or ms ('—' for none)."""
    if value is None:
        return "—"
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def build_environment() -> jinja2.Environment:
    """The template environment: HTML autoescaped everywhere, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bots.admin", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, usd=usd, seconds=seconds, num=lambda n: f"{n:,}")
    return env


class Pages:
    """Renders a template into a response for one request."""

    def __init__(self, env: jinja2.Environment | None = None) -> None:
        self.env = env or build_environment()

    def render(
        self, request: web.Request, template: str, *, status: int = 200, **context: Any
    ) -> web.Response:
        """The page as an HTML response."""
        session = request.get(SESSION_KEY)
        context.setdefault("csrf", session.csrf_token if session else "")
        html = self.env.get_template(template).render(
            pages=PAGES, path=request.path, admin=session, **context
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)
