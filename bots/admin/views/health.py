"""Health: the database, every process's heartbeat, whether the model endpoint answers, and the
platform connections as this process knows them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import openai
from aiohttp import web

from bots.admin.site import Route, Site
from core.llm.errors import classify
from core.store import StoreError

MODEL_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Probe:
    """One reachability check."""

    ok: bool
    detail: str
    seconds: float


def without_credentials(url: str) -> str:
    """A URL without any user:password part (a base URL may carry one)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def routes(site: Site) -> list[Route]:
    """The health page."""

    async def model_probe() -> Probe:
        started = time.perf_counter()
        client = site.services.openai.with_options(timeout=MODEL_TIMEOUT, max_retries=0)
        try:
            listed = await client.models.list()
        except openai.APIStatusError as exc:
            if exc.status_code == 404:  # a compatible server without /models still answers
                return Probe(True, "answers (no model list)", time.perf_counter() - started)
            return Probe(False, classify(exc).kind, time.perf_counter() - started)
        except openai.APIError as exc:
            return Probe(False, classify(exc).kind, time.perf_counter() - started)
        count = len(listed.data)
        return Probe(True, f"answers ({count} models listed)", time.perf_counter() - started)

    async def health(request: web.Request) -> web.StreamResponse:
        db = site.store.db
        now = time.time()
        try:
            processes = await site.store.processes.all()
            version = await db.schema_version()
            database = Probe(True, f"schema version {version}", 0.0)
        except StoreError as exc:
            processes, database = [], Probe(False, str(exc), 0.0)
        settings = site.settings
        slack, discord = settings.slack, settings.discord
        platforms = [
            (
                "Slack",
                "configured" if slack.bot_token else "not configured",
                ", ".join(
                    part
                    for part, on in (
                        ("Events API over HTTP", slack.signing_secret is not None),
                        ("Socket Mode (worker)", slack.app_token is not None),
                        ("Sign in with Slack", bool(slack.client_id and slack.client_secret)),
                    )
                    if on
                )
                or "—",
                "slack",
            ),
            (
                "Discord",
                "configured" if discord.token else "not configured",
                "gateway (worker)" if discord.token else "—",
                "discord",
            ),
        ]
        base = settings.openai.base_url or "https://api.openai.com/v1"
        return site.pages.render(
            request,
            "health.html",
            title="Health",
            now=now,
            database=database,
            backend=db.dialect,
            where=db.describe(),
            processes=processes,
            stale_after=settings.store.recovery_stale_seconds,
            me=site.store.processes.owner,
            model=await model_probe(),
            model_url=without_credentials(base),
            wire=settings.openai.wire,
            platforms=platforms,
            activity=await site.store.browse.last_activity(),
        )

    return [("GET", "/admin/health", health)]
