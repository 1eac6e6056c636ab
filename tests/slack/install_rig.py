"""A rig for the multi-workspace install: the real web app with SLACK_CLIENT_ID, the fake Slack
with its OAuth endpoints, a browser that follows the install links, and signed events per team."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from bots.services import Services, build_services
from bots.settings import AppSettings
from bots.slack.app import SlackAdapter
from bots.slack.setup import build_slack_adapter
from bots.web import build_web_app
from tests.fakes.slack import FakeSlack, Grant, Workspace, sign
from tests.slack.rig import SECRET

SECRET_KEY = "test-secret-key-0123456789-abcdefghij"
_ids = iter(range(1, 10**9))


@dataclass
class Server:
    """One `web` process's worth: services, the adapter, the URL it serves on."""

    services: Services
    adapter: SlackAdapter
    url: str


@dataclass
class InstallRig:
    slack: FakeSlack
    server: Server
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.server.url

    async def open_install_page(self) -> tuple[int, str, str, str]:
        """GET /slack/install: status, page, the Add to Slack link and the state cookie."""
        async with self.http.get(f"{self.url}/slack/install") as response:
            page = await response.text()
            cookie = response.headers.get("Set-Cookie", "").split(";")[0]
        link = re.search(r'href="([^"]+/oauth/v2/authorize[^"]*)"', page)
        return response.status, page, (link.group(1).replace("&amp;", "&") if link else ""), cookie

    async def install(self, grant: Grant | str, *, cookie: str | None = None) -> tuple[int, str]:
        """Open the install page, approve (or refuse, when `grant` is an error) at the fake
        Slack, and follow the redirect back with the browser's cookie; status and page."""
        _, _, link, browser_cookie = await self.open_install_page()
        self.slack.next_install = grant
        async with self.http.get(link, allow_redirects=False) as authorize:
            back = authorize.headers["Location"]
        return await self.redirect(back, cookie=browser_cookie if cookie is None else cookie)

    async def redirect(self, location: str, *, cookie: str) -> tuple[int, str]:
        headers = {"Cookie": cookie} if cookie else {}
        async with self.http.get(location, headers=headers, allow_redirects=False) as response:
            return response.status, await response.text()

    async def event(self, workspace: Workspace, event: dict[str, Any], **body: Any) -> int:
        return await post_event(self.http, self.url, workspace, event, **body)


async def post_event(
    http: aiohttp.ClientSession,
    url: str,
    workspace: Workspace,
    event: dict[str, Any],
    **body: Any,
) -> int:
    """Sign and post an event of `workspace` (team, enterprise, authorizations as Slack sends)."""
    team = event.get("team") or workspace.team_id
    payload = {
        "token": "legacy",
        "team_id": team,
        "enterprise_id": workspace.enterprise_id,
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": f"EvI{next(_ids)}",
        "event_time": int(time.time()),
        "event": event,
        "is_enterprise_install": workspace.org_wide,
        "authorizations": [
            {
                "enterprise_id": workspace.enterprise_id,
                "team_id": None if workspace.org_wide else team,
                "user_id": workspace.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": workspace.org_wide,
            }
        ],
        **body,
    }
    raw = json.dumps(payload).encode()
    headers = {**sign(SECRET, raw), "Content-Type": "application/json"}
    async with http.post(f"{url}/slack/events", data=raw, headers=headers) as response:
        await response.read()
        return response.status


def mention_in(
    workspace: Workspace, text: str, *, team: str | None = None, ts: str = ""
) -> dict[str, Any]:
    """An app_mention of the bot of `workspace` (in `team`, for an org-wide install)."""
    ts = ts or f"{int(time.time())}.{next(_ids):06d}"
    return {
        "type": "app_mention",
        "user": "U1",
        "text": f"<@{workspace.bot_user_id}> {text}",
        "ts": ts,
        "channel": "C1",
        "team": team or workspace.team_id,
        "event_ts": ts,
    }


def install_settings(
    make_settings: Callable[..., AppSettings], slack: FakeSlack, **overrides: object
) -> AppSettings:
    return make_settings(
        slack_client_id=slack.client_id,
        slack_client_secret=slack.client_secret,
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
        secret_key=SECRET_KEY,
        **({"moderation_enabled": False} | overrides),
    )


@asynccontextmanager
async def open_server(
    settings: AppSettings, serve: Callable[[Any], Awaitable[str]]
) -> AsyncIterator[Server]:
    """Services, the adapter built as `web` builds it, and the web app on loopback."""
    services = await build_services(settings)
    adapter = build_slack_adapter(settings, services.engine)
    await services.engine.attach(adapter)
    url = await serve(build_web_app(services, [adapter.install]))
    try:
        yield Server(services, adapter, url)
    finally:
        await adapter.drain()
        await services.close()
        await adapter.close()


@asynccontextmanager
async def open_install_rig(
    make_settings: Callable[..., AppSettings],
    serve: Callable[[Any], Awaitable[str]],
    **overrides: object,
) -> AsyncIterator[InstallRig]:
    async with FakeSlack() as slack:
        settings = install_settings(make_settings, slack, **overrides)
        async with open_server(settings, serve) as server, aiohttp.ClientSession() as http:
            slack.redirect_uri = f"{server.url}/slack/oauth_redirect"
            yield InstallRig(slack, server, http)
