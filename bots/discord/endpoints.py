"""Where one Discord client connects: its REST base, its interaction webhooks and its gateway.

discord.py keeps the REST base (`discord.http.Route.BASE`) and the gateway
(`DiscordWebSocket.DEFAULT_GATEWAY`) in class attributes shared by every client of the process,
and has no per-client option for either. Every call still passes one of three points that belong
to one client (or to the tasks that run it), and those are rebased here; the globals stay as they
are, so clients pointed at different servers live side by side:

- REST calls: `client.http.request(route)`, wrapped on this client's `HTTPClient` instance;
- interaction callbacks and follow-ups (`interaction.response`, `interaction.followup`): discord.py
  sends them through the webhook adapter it finds in a context variable (`async_context`); the task
  that runs the client sets a rebasing adapter there, and every event task it starts inherits it;
- gateway connections: `client.http.ws_connect(url)`, wrapped on the instance; a connection to
  the default gateway goes to the configured one (a resume URL Discord handed out is kept).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context


class Endpoints:
    """The configured REST base and gateway (None: Discord's own)."""

    def __init__(self, api_url: str | None, gateway_url: str | None) -> None:
        self.api = api_url.rstrip("/") if api_url else None
        self.gateway = yarl.URL(gateway_url) if gateway_url else None
        self._webhooks = _RebasedWebhooks(self) if self.api else None

    def route(self, route: Route) -> Route:
        """`route`, pointed at the configured REST base (routes are built per call)."""
        if self.api is not None and route.url.startswith(Route.BASE):
            route.url = self.api + route.url[len(Route.BASE) :]
        return route

    def gateway_url(self, url: str) -> str:
        """The configured gateway for a connection to the default one, with its query."""
        parsed = yarl.URL(url)
        if self.gateway is None or parsed.with_query(None) != DiscordWebSocket.DEFAULT_GATEWAY:
            return url
        return str(self.gateway.update_query(parsed.query))

    def install(self, http: HTTPClient) -> None:
        """Rebase one client's REST calls and gateway connections (no other client's)."""
        request, ws_connect = http.request, http.ws_connect

        async def rebased_request(route: Route, **kwargs: Any) -> Any:
            return await request(self.route(route), **kwargs)

        async def rebased_ws_connect(
            url: str, *, compress: int = 0
        ) -> aiohttp.ClientWebSocketResponse:
            return await ws_connect(self.gateway_url(url), compress=compress)

        if self.api is not None:
            http.request = rebased_request  # type: ignore[method-assign]
        if self.gateway is not None:
            http.ws_connect = rebased_ws_connect  # type: ignore[method-assign]

    def enter(self) -> None:
        """Rebase interaction webhooks in the current task and in the tasks it starts from now."""
        if self._webhooks is not None:
            async_context.set(self._webhooks)


class _RebasedWebhooks(AsyncWebhookAdapter):
    """discord.py's webhook adapter, sending to the configured REST base."""

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__()
        self._endpoints = endpoints

    async def request(self, route: Route, session: aiohttp.ClientSession, **kwargs: Any) -> Any:
        return await super().request(self._endpoints.route(route), session, **kwargs)
