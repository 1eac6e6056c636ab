"""What every admin page handler can use, built once per process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bots.admin.auth import Guard
from bots.admin.render import SESSION_KEY, Pages
from bots.services import Services
from bots.settings import AppSettings
from core.store import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (method, path, handler) of one page or action.
Route = tuple[str, str, Handler]


@dataclass(frozen=True, slots=True)
class Site:
    """The services, the page renderer and the guard."""

    services: Services
    pages: Pages
    guard: Guard

    @property
    def settings(self) -> AppSettings:
        """The process's settings."""
        return self.services.settings

    @property
    def store(self) -> Store:
        """The store."""
        return self.services.store

    def actor(self, request: web.Request) -> str:
        """Who is acting, for the audit log: the signed-in admin's id."""
        return request[SESSION_KEY].user_id
