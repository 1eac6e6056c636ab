"""A Slack rig for end-to-end tests: Bolt over HTTP (signed requests), the fake Web API, the simulator."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from bots.slack.app import SlackAdapter
from bots.web import build_web_app
from core.plugin import tool
from simulator import Simulator
from tests.fakes.slack import FakeSlack, interaction_body, sign

SECRET = "test-signing-secret"
_ids = itertools.count(1)


@dataclass
class Rig:
    slack: FakeSlack
    sim: Simulator
    services: Services
    adapter: SlackAdapter
    url: str
    http: aiohttp.ClientSession

    async def post(
        self, body: bytes, headers: dict[str, str] | None = None, **kw: Any
    ) -> aiohttp.ClientResponse:
        signed = sign(SECRET, body) if headers is None else headers
        content_type = kw.pop("content_type", "application/json")
        response = await self.http.post(
            f"{self.url}/slack/events",
            data=body,
            headers={**signed, "Content-Type": content_type, **kw},
        )
        await response.read()
        return response

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, **headers: str
    ) -> aiohttp.ClientResponse:
        body = json.dumps(event_callback(event, event_id or f"Ev{next(_ids)}")).encode()
        return await self.post(body, sign(SECRET, body) | headers)

    async def interact(self, payload: dict[str, Any]) -> aiohttp.ClientResponse:
        """A signed interactivity request (block_actions, view_submission)."""
        return await self.post(
            interaction_body(payload), content_type="application/x-www-form-urlencoded"
        )

    async def command(self, command: str, text: str, **extra: str) -> aiohttp.ClientResponse:
        form = {
            "command": command,
            "text": text,
            "user_id": "U1",
            "user_name": "ada",
            "channel_id": "C1",
            "team_id": "T1",
            "trigger_id": f"tr{next(_ids)}",
            "response_url": self.slack.response_url(extra.pop("key", "r1")),
            **extra,
        }
        return await self.post(
            urllib.parse.urlencode(form).encode(), content_type="application/x-www-form-urlencoded"
        )


def event_callback(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": event,
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
    }


def mention(
    text: str, ts: str = "100.000001", thread_ts: str | None = None, **kw: Any
) -> dict[str, Any]:
    event = {
        "type": "app_mention",
        "user": "U1",
        "text": f"<@UBOT> {text}",
        "ts": ts,
        "channel": "C1",
        "team": "T1",
        "event_ts": ts,
        **kw,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(text: str, ts: str, channel: str = "C1", **kw: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "user": "U1",
        "text": text,
        "ts": ts,
        "channel": channel,
        "team": "T1",
        "channel_type": "im" if channel.startswith("D") else "channel",
        "event_ts": ts,
        **kw,
    }


@asynccontextmanager
async def open_rig(
    sim: Simulator,
    make_settings: Callable[..., Settings],
    serve: Callable[[Any], Awaitable[str]],
    **overrides: object,
) -> AsyncIterator[Rig]:
    """Fake Slack + engine + the real web app on loopback; `overrides` are settings."""
    async with FakeSlack() as slack:
        settings = make_settings(
            slack_bot_token=slack.bot_token,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            **({"moderation_enabled": False} | overrides),
        )
        services = await build_services(settings)
        adapter = SlackAdapter(settings.slack, services.engine)
        await services.engine.attach(adapter)
        url = await serve(build_web_app(services, [adapter.install]))
        async with aiohttp.ClientSession() as http:
            yield Rig(slack, sim, services, adapter, url, http)
        await adapter.drain()
        await services.close()
        await adapter.close()


@dataclass
class SocketRig:
    slack: FakeSlack
    services: Services
    adapter: SlackAdapter

    async def command(self, command: str, text: str, key: str = "r1") -> str:
        """Push a slash command envelope; returns its envelope id."""
        payload = {
            "command": command,
            "text": text,
            "user_id": "U1",
            "user_name": "ada",
            "channel_id": "C1",
            "team_id": "T1",
            "trigger_id": f"tr{next(_ids)}",
            "response_url": self.slack.response_url(key),
        }
        return await self.slack.socket_send("slash_commands", payload)

    async def interact(self, payload: dict[str, Any]) -> str:
        """Push an interactivity envelope; returns its envelope id."""
        return await self.slack.socket_send("interactive", payload)


@asynccontextmanager
async def open_socket_rig(
    make_settings: Callable[..., Settings], **overrides: object
) -> AsyncIterator[SocketRig]:
    """Fake Slack + engine + the adapter connected over Socket Mode."""
    async with FakeSlack() as slack:
        settings = make_settings(
            slack_bot_token=slack.bot_token,
            slack_app_token=slack.app_token,
            slack_api_url=slack.api_url,
            **({"moderation_enabled": False} | overrides),
        )
        services = await build_services(settings)
        adapter = SlackAdapter(settings.slack, services.engine)
        await services.engine.attach(adapter)
        runner = asyncio.create_task(adapter.socket_mode())
        try:
            await asyncio.wait_for(slack.socket_connected.wait(), 10)
            yield SocketRig(slack, services, adapter)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await adapter.drain()
            await services.close()
            await adapter.close()


@dataclass
class SlowTool:
    """A plugin tool `slow_report` that runs until `release` is set."""

    started: asyncio.Event
    release: asyncio.Event


def add_slow_tool(services: Services) -> SlowTool:
    slow = SlowTool(asyncio.Event(), asyncio.Event())

    @tool
    async def slow_report(topic: str) -> str:
        """A report that takes as long as the test says.

        Args:
            topic: what the report is about
        """
        slow.started.set()
        await slow.release.wait()
        return f"report on {topic}"

    services.engine.backends.registry.add(slow_report, plugin="tests")  # type: ignore[union-attr]
    return slow
