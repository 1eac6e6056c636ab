"""One client's REST base and gateway, without touching discord.py's globals."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord.http import Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from bots.discord.endpoints import Endpoints

DEFAULT_GATEWAY = "wss://gateway.discord.gg/?v=10&encoding=json&compress=zlib-stream"


def test_a_route_is_rebased_onto_the_configured_api() -> None:
    endpoints = Endpoints("http://127.0.0.1:9/api/v10/", None)
    route = endpoints.route(Route("GET", "/channels/{channel_id}", channel_id=7))
    assert route.url == "http://127.0.0.1:9/api/v10/channels/7"
    assert endpoints.route(route).url == route.url, "idempotent"
    assert Route.BASE == "https://discord.com/api/v10"


def test_without_configuration_everything_goes_to_discord() -> None:
    endpoints = Endpoints(None, None)
    assert (
        endpoints.route(Route("GET", "/gateway/bot")).url
        == "https://discord.com/api/v10/gateway/bot"
    )
    assert endpoints.gateway_url(DEFAULT_GATEWAY) == DEFAULT_GATEWAY


def test_the_default_gateway_is_replaced_and_a_resume_url_kept() -> None:
    endpoints = Endpoints(None, "ws://127.0.0.1:9/gateway")
    assert endpoints.gateway_url(DEFAULT_GATEWAY) == (
        "ws://127.0.0.1:9/gateway?v=10&encoding=json&compress=zlib-stream"
    )
    resume = "wss://gateway-us-east1-b.discord.gg/?v=10&encoding=json"
    assert endpoints.gateway_url(resume) == resume


async def test_two_clients_are_rebased_independently() -> None:
    sent: list[str] = []

    def client(endpoints: Endpoints) -> discord.Client:
        made = discord.Client(intents=discord.Intents.none())

        async def request(route: Route, **_kwargs: Any) -> None:
            sent.append(route.url)

        made.http.request = request  # type: ignore[method-assign]  # stands in for the network
        endpoints.install(made.http)
        return made

    first = client(Endpoints("http://first/api", None))
    second = client(Endpoints("http://second/api", None))
    await first.http.request(Route("GET", "/users/@me"))
    await second.http.request(Route("GET", "/users/@me"))
    assert sent == ["http://first/api/users/@me", "http://second/api/users/@me"]


async def test_interaction_webhooks_are_rebased_in_the_tasks_of_the_client() -> None:
    endpoints = Endpoints("http://first/api", None)
    default = async_context.get()

    async def runs_the_client() -> object:
        endpoints.enter()
        return await asyncio.create_task(event_task())  # an event task it starts

    async def event_task() -> object:
        return async_context.get()

    adapter = await asyncio.create_task(runs_the_client())
    assert isinstance(adapter, AsyncWebhookAdapter) and adapter is not default
    assert async_context.get() is default, "nothing changed outside the client's tasks"
