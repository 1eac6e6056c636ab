"""Fixtures for the admin site: the site served on loopback with real services, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bots.admin import AdminSite
from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from bots.web import build_web_app
from tests.admin.client import AdminClient
from tests.conftest import RecordingReply, make_event

TOKEN = "admin-token-1f2e3d4c5b6a7988"


@dataclass
class AdminRig:
    """The services, the site on a loopback port, and a client that signs in."""

    services: Services
    site: AdminSite
    base: str
    client: AdminClient

    async def turn(self, text: str, **event: Any) -> None:
        """One real turn through the engine (against the simulator)."""
        outcome = await self.services.engine.handle(make_event(text, **event), RecordingReply())
        assert outcome is not None

    async def signed_in(self) -> AdminClient:
        page = await self.client.sign_in(TOKEN)
        assert page.status == 303, page.text
        return self.client

    async def another_client(self) -> AdminClient:
        client = AdminClient(self.base)
        self._extra.append(client)
        return client

    def __post_init__(self) -> None:
        self._extra: list[AdminClient] = []


@pytest.fixture
async def make_admin(
    make_settings: Callable[..., Settings], aiohttp_server_factory
) -> AsyncIterator[Callable[..., Any]]:
    """Build an admin rig with settings overrides (ADMIN_TOKEN is set unless overridden)."""
    rigs: list[AdminRig] = []

    async def make(**overrides: object) -> AdminRig:
        values: dict[str, object] = {"admin_token": TOKEN, **overrides}
        services = await build_services(make_settings(**values))
        site = AdminSite(services)
        base = await aiohttp_server_factory(build_web_app(services, [site.install]))
        rig = AdminRig(services, site, base, AdminClient(base))
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        for client in [rig.client, *rig._extra]:
            await client.close()
        await rig.services.close()


@pytest.fixture
async def admin(make_admin: Callable[..., Any]) -> AdminRig:
    """An admin rig with the defaults."""
    return await make_admin()
