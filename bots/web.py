"""The HTTP server: health check now, platform endpoints mounted by the adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from aiohttp import web

from bots.services import Services

log = structlog.get_logger(__name__)

RouteInstaller = Callable[[web.Application], None]


def build_web_app(services: Services, installers: list[RouteInstaller] = ()) -> web.Application:  # type: ignore[assignment]
    """An aiohttp application with `/healthz` and whatever the adapters install."""
    app = web.Application(client_max_size=2 * 1024 * 1024)

    async def healthz(_request: web.Request) -> web.Response:
        ok = await services.store.db.ping()
        body = {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "unreachable"}
        return web.json_response(body, status=200 if ok else 503)

    app.router.add_get("/healthz", healthz)
    for install in installers:
        install(app)
    return app


async def serve(app: web.Application, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve `app` until `stop` is set."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if site._server else port  # type: ignore[union-attr]
    log.info("http_listening", host=host, port=bound)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
