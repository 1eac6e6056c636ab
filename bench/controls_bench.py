"""What reply controls cost: a finished Slack reply with controls versus without (p50/p99 of
event POST -> chat.stopStream, sequential turns, 0 s model), and Regenerate's click-to-effect
time (block_actions POST -> the new attempt's answer and controls in place, 0 s model).

The Slack adapter and its web app run in this process against the fake Slack Web API; the
simulator runs in its own process (bench.peers)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import percentile, summarize
from bench.peers import simulator
from bots.services import build_services
from bots.settings import load_app_settings
from bots.slack.app import SlackAdapter
from bots.web import build_web_app
from tests.fakes.slack import FakeSlack, block_actions, interaction_body, sign

SECRET = "bench-signing-secret"


@asynccontextmanager
async def _slack(controls: bool) -> AsyncIterator[tuple[FakeSlack, str, aiohttp.ClientSession]]:
    async with simulator(0.0) as sim, FakeSlack() as slack:
        with tempfile.TemporaryDirectory() as folder:
            settings = load_app_settings(
                openai_api_key="sk-bench",
                openai_base_url=sim.base_url,
                openai_wire_api="chat",
                database_url=f"sqlite:///{Path(folder) / 'bench.db'}",
                moderation_enabled=False,
                log_level="warning",
                slack_bot_token=slack.bot_token,
                slack_signing_secret=SECRET,
                slack_api_url=slack.api_url,
                reply_controls=controls,
                _env_file=None,
            )
            services = await build_services(settings)
            adapter = SlackAdapter(settings.slack, services.engine)
            await services.engine.attach(adapter)
            runner = web.AppRunner(build_web_app(services, [adapter.install]), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            try:
                async with aiohttp.ClientSession() as http:
                    yield slack, f"http://127.0.0.1:{port}/slack/events", http
            finally:
                await adapter.drain()
                await services.close()
                await adapter.close()
                await runner.cleanup()


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, kind: str) -> None:
    headers = {**sign(SECRET, body), "Content-Type": kind}
    async with http.post(url, data=body, headers=headers) as response:
        assert response.status == 200, response.status


def _mention(i: int) -> bytes:
    ts = f"{1000 + i}.000001"
    event = {
        "type": "app_mention",
        "user": "U1",
        "text": f"<@UBOT> question {i}",
        "ts": ts,
        "channel": "C1",
        "team": "T1",
        "event_ts": ts,
    }
    body = {
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": f"EvB{i}",
        "event_time": int(time.time()),
        "event": event,
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
    }
    return json.dumps(body).encode()


async def finished_reply(controls: bool, turns: int = 200) -> tuple[float, float, list[Any]]:
    """p50/p99 ms from the event's POST to chat.stopStream; the finished messages."""
    samples: list[float] = []
    async with _slack(controls) as (slack, url, http):
        for i in range(turns):
            started = time.monotonic()
            await _post(http, url, _mention(i), "application/json")
            stop = (await slack.wait_for("chat.stopStream", count=i + 1))[i]
            samples.append((stop.at - started) * 1000)
        finished = [slack.messages[c.args["ts"]] for c in slack.calls_to("chat.stopStream")]
    return percentile(samples, 50), percentile(samples, 99), finished


async def regenerate(clicks: int = 50) -> tuple[float, float]:
    """p50/p99 ms from Regenerate's POST to the new attempt finished in place (chat.update with
    the new attempt's controls)."""
    samples: list[float] = []
    async with _slack(True) as (slack, url, http):
        for i in range(clicks):
            await _post(http, url, _mention(i), "application/json")
            stop = (await slack.wait_for("chat.stopStream", count=i + 1))[i]
            ts = stop.args["ts"]
            blocks = slack.messages[ts]["blocks"]
            again = blocks[1]["elements"][0]["action_id"]
            newer = again.rsplit(":", 1)[0] + ":2"
            click = block_actions(again, message_ts=ts, thread_ts=f"{1000 + i}.000001")
            started = time.monotonic()
            await _post(http, url, interaction_body(click), "application/x-www-form-urlencoded")
            await slack.wait_until(
                lambda ts=ts, newer=newer: newer in str(slack.messages[ts].get("blocks"))
            )
            samples.append((time.monotonic() - started) * 1000)
    return percentile(samples, 50), percentile(samples, 99)


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for the table."""
    with_50, with_99, without_50, without_99, again_50, again_99 = [], [], [], [], [], []
    for _ in range(repeats):
        p50, p99, finished = await finished_reply(True)
        assert all("blocks" in m for m in finished), "every reply carries its controls"
        with_50.append(p50)
        with_99.append(p99)
        p50, p99, finished = await finished_reply(False)
        assert not any("blocks" in m for m in finished)
        without_50.append(p50)
        without_99.append(p99)
        p50, p99 = await regenerate()
        again_50.append(p50)
        again_99.append(p99)
    added_50 = [a - b for a, b in zip(with_50, without_50, strict=True)]
    added_99 = [a - b for a, b in zip(with_99, without_99, strict=True)]
    return [
        ("Slack finished reply p50 ms, controls on (0 s model)", summarize(with_50), ""),
        ("Slack finished reply p50 ms, controls off (0 s model)", summarize(without_50), ""),
        ("  added by controls, p50 ms", summarize(added_50), "small"),
        ("Slack finished reply p99 ms, controls on (0 s model)", summarize(with_99), ""),
        ("Slack finished reply p99 ms, controls off (0 s model)", summarize(without_99), ""),
        ("  added by controls, p99 ms", summarize(added_99), "small"),
        ("Regenerate click -> new answer in place p50 ms (0 s model)", summarize(again_50), ""),
        ("Regenerate click -> new answer in place p99 ms (0 s model)", summarize(again_99), ""),
    ]
