"""Routing for the admin site: every page behind the guard, security headers on every answer."""

from __future__ import annotations

import time
from importlib import resources

from aiohttp import web

from bots.admin.auth import Guard, Handler
from bots.admin.render import Pages
from bots.admin.signin import TokenSignIn
from bots.admin.site import Route, Site
from bots.admin.slack_signin import SlackSignIn
from bots.admin.views import health, manage, records, reports
from bots.errors import UsageError
from bots.services import Services

STYLESHEET = resources.files("bots.admin").joinpath("static/admin.css").read_bytes()


class AdminSite:
    """The pages and actions of `/admin`, for one process's services."""

    def __init__(self, services: Services, pages: Pages | None = None) -> None:
        settings = services.settings
        self.pages = pages or Pages()
        self.guard = Guard(settings, services.store, self.pages)
        self.site = Site(services, self.pages, self.guard)
        slack = settings.slack
        self.slack = (
            SlackSignIn(slack, settings.access.admin_user_ids, services.store, self.guard)
            if slack.client_id and slack.client_secret
            else None
        )
        self.token = TokenSignIn(settings, self.guard, self.pages, slack=self.slack is not None)
        form_targets = f" {self.slack.origin}" if self.slack else ""
        self.headers = {
            "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
            f"form-action 'self'{form_targets}; frame-ancestors 'none'; base-uri 'none'",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }

    def routes(self) -> list[tuple[str, str, Handler]]:
        """Every admin route with its handler, guarded unless it is part of signing in."""
        guarded: list[Route] = [
            *reports.routes(self.site),
            *records.routes(self.site),
            *manage.routes(self.site),
            *health.routes(self.site),
            ("POST", "/admin/logout", self.token.sign_out),
        ]
        public: list[Route] = [
            ("GET", "/admin/login", self.token.show),
            ("POST", "/admin/login", self.token.sign_in),
            ("GET", "/admin/static/admin.css", self._stylesheet),
        ]
        if self.slack is not None:
            public += [
                ("POST", "/admin/login/slack", self.slack.start),
                ("GET", "/admin/login/slack/callback", self.slack.callback),
            ]
        routes = [(m, p, self._headed(self.guard.protect(h))) for m, p, h in guarded]
        routes += [(m, p, self._headed(h)) for m, p, h in public]
        routes.append(("GET", "/admin/", self._headed(self.guard.protect(self._to_overview))))
        return routes

    def install(self, app: web.Application) -> None:
        """Add the admin routes to an application (the public one, on PORT)."""
        for method, path, handler in self.routes():
            app.router.add_route(method, path, handler)

    def _headed(self, handler: Handler) -> Handler:
        async def with_headers(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            response = await handler(request)
            for name, value in self.headers.items():
                response.headers.setdefault(name, value)
            # How long the page took here (queries and rendering), for operators and the bench.
            elapsed = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
            return response

        return with_headers

    async def _stylesheet(self, _request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=STYLESHEET,
            content_type="text/css",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def _to_overview(self, _request: web.Request) -> web.StreamResponse:
        return web.Response(status=308, headers={"Location": "/admin"})


def build_admin_listener(site: AdminSite) -> web.Application:
    """The application for the ADMIN_PORT listener: the admin site only (still under /admin).

    Raises `UsageError` when ADMIN_PORT is unset or collides with PORT or METRICS_PORT.
    """
    server, admin = site.site.settings.server, site.site.settings.admin
    if admin.port is None:
        raise UsageError("ADMIN_PORT is not set: the admin site is served on PORT")
    for name, port in (("PORT", server.port), ("METRICS_PORT", server.metrics_port)):
        if port == admin.port and port != 0:
            raise UsageError(
                f"ADMIN_PORT and {name} are both {port}: give the admin site its own port, or "
                "unset ADMIN_PORT to serve it on PORT"
            )
    app = web.Application(client_max_size=2 * 1024 * 1024)
    site.install(app)
    app.router.add_get("/", _redirect_home)
    return app


async def _redirect_home(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=303, headers={"Location": "/admin"})
