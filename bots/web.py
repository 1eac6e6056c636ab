"""The HTTP server: health check now, platform endpoints mounted by the adapters."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import structlog
from aiohttp import web

from bots.services import Services
from core.metrics import render

log = structlog.get_logger(__name__)

RouteInstaller = Callable[[web.Application], None]


def build_web_app(services: Services, installers: list[RouteInstaller] = ()) -> web.Application:  # type: ignore[assignment]
    """An aiohttp application with `/healthz` and whatever the adapters install."""
    app = web.Application(client_max_size=2 * 1024 * 1024)

    async def healthz(_request: web.Request) -> web.Response:
        db = services.store.db
        ok = await db.ping()
        body = {
            "status": "ok" if ok else "unavailable",
            "database": "ok" if ok else "unreachable",
            "backend": db.dialect,
        }
        # Which process answered: with WEB_CONCURRENCY several share the port.
        headers = {"X-Process-Id": str(os.getpid())}
        return web.json_response(body, status=200 if ok else 503, headers=headers)

    async def metrics(_request: web.Request) -> web.Response:
        body, content_type = render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    for install in installers:
        install(app)
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
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if site._server else port  # type: ignore[union-attr]
    log.info("http_listening", host=host, port=bound)
    if on_bound is not None:
        on_bound(bound)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
