"""The HTTP server: health check and metrics, platform endpoints mounted by the adapters, and the
optional separate metrics listener (METRICS_PORT)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiohttp import web
from pydantic import SecretStr

from bots.errors import UsageError
from bots.services import Services
from core.metrics import render
from core.settings import ServerSettings, Settings

log = structlog.get_logger(__name__)

RouteInstaller = Callable[[web.Application], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def bearer_ok(header: str | None, token: str) -> bool:
    """True when `header` is `Bearer <token>`; compared in constant time (over fixed-size digests,
    so not even the token's length leaks)."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    matches = hmac.compare_digest(_digest(credentials.strip()), _digest(token))
    return scheme.lower() == "bearer" and matches


def metrics_handler(token: SecretStr | None) -> Handler:
    """`GET /metrics`: Prometheus' text format; with a token, only for `Authorization: Bearer`."""
    secret = token.get_secret_value() if token is not None else ""

    async def metrics(request: web.Request) -> web.Response:
        if secret and not bearer_ok(request.headers.get("Authorization"), secret):
            error = ', error="invalid_token"' if "Authorization" in request.headers else ""
            return web.Response(
                status=401,
                text="unauthorized: send Authorization: Bearer <METRICS_TOKEN>\n",
                headers={"WWW-Authenticate": f'Bearer realm="metrics"{error}'},
            )
        body, content_type = render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    return metrics


def build_web_app(services: Services, installers: Sequence[RouteInstaller] = ()) -> web.Application:
    """An aiohttp application with `/healthz`, `/metrics` (unless METRICS_PORT moves it to its
    own listener) and whatever the adapters install."""
    app = web.Application(client_max_size=2 * 1024 * 1024)
    server = services.settings.server

    async def healthz(_request: web.Request) -> web.Response:
        db = services.store.db
        ok = await db.ping()
        body: dict[str, Any] = {
            "status": "ok" if ok else "unavailable",
            "database": "ok" if ok else "unreachable",
            "backend": db.dialect,
        }
        if services.connectors is not None:  # each MCP server's state; a down server is no 503
            body["mcp"] = services.connectors.health()
        # Which process answered: with WEB_CONCURRENCY several share the port.
        headers = {"X-Process-Id": str(os.getpid())}
        return web.json_response(body, status=200 if ok else 503, headers=headers)

    app.router.add_get("/healthz", healthz)
    if server.metrics_port is None:
        app.router.add_get("/metrics", metrics_handler(server.metrics_token))
    for install in installers:
        install(app)
    return app


def build_metrics_app(settings: Settings | ServerSettings) -> web.Application:
    """The application for the metrics listener on METRICS_PORT: `GET /metrics` only, with the
    METRICS_TOKEN rule when one is set. Serve it on `settings.metrics_host` (127.0.0.1 unless set).

    Raises `UsageError` when METRICS_PORT is unset or equals PORT (the two would collide).
    """
    server = settings.server if isinstance(settings, Settings) else settings
    if server.metrics_port is None:
        raise UsageError("METRICS_PORT is not set: /metrics is served on PORT")
    if server.metrics_port == server.port and server.port != 0:
        raise UsageError(
            f"METRICS_PORT and PORT are both {server.port}: give the metrics listener its own "
            "port, or unset METRICS_PORT to serve /metrics on PORT"
        )
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get("/metrics", metrics_handler(server.metrics_token))
    return app


async def serve(
    app: web.Application,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    reuse_port: bool = False,
    on_bound: Callable[[int], None] | None = None,
) -> None:
    """Serve `app` until `stop` is set; `on_bound` learns the port (useful with port 0)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        addresses = runner.addresses
        bound = int(addresses[0][1]) if addresses else port
        log.info("http_listening", host=host, port=bound)
        if on_bound is not None:
            on_bound(bound)
        await stop.wait()
    finally:
        await runner.cleanup()
