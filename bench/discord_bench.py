"""Messages/s through the Discord path (gateway MESSAGE_CREATE → reply posted over REST).

The fake Discord (gateway + REST), which also generates the load, runs in another process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import percentile, summarize
from bots.discord.client import DiscordAdapter
from bots.services import build_services
from bots.settings import load_app_settings
from core.render.streaming import TYPING
from simulator import Simulator
from tests.fakes.discord import FakeDiscord

CHANNEL = re.compile(r"/channels/(\d+)/messages")


class LoadDiscord(FakeDiscord):
    """The fake, timing each conversation's message from dispatch to its final reply text."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.sent: dict[int, list[float]] = {}
        self.answered: list[float] = []
        self.done = asyncio.Event()

    async def _route(self, method: str, path: str, body: Any) -> Any:
        response = await super()._route(method, path, body)
        content = body.get("content") if isinstance(body, dict) else None
        match = CHANNEL.match(path)
        if match and method in ("POST", "PATCH") and content and not content.endswith(TYPING):
            self.answered.append(time.perf_counter() - self.sent[int(match.group(1))].pop(0))
            if len(self.answered) >= self.total:
                self.done.set()
        return response


async def _play(total: int, conversations: int, rate: float | None, out: Any, go: Any) -> None:
    async with LoadDiscord(total) as fake:
        out.put((fake.token, fake.api_base, fake.gateway_url))
        await asyncio.wait_for(fake.ready.wait(), 60)
        channels = [fake.add_dm_channel(100 + i) for i in range(conversations)]
        await asyncio.to_thread(go.wait, 60)
        started = time.perf_counter()
        for i in range(total):
            if rate is not None and (delay := started + i / rate - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            channel = channels[i % conversations]
            fake.sent.setdefault(channel, []).append(time.perf_counter())
            await fake.push_message(channel, f"question {i}", author_id=100 + i % conversations)
        await asyncio.wait_for(fake.done.wait(), 300)
        elapsed = time.perf_counter() - started
        out.put((total / elapsed, percentile(fake.answered, 50), percentile(fake.answered, 99)))


def _player(total: int, conversations: int, rate: float | None, out: Any, go: Any) -> None:
    asyncio.run(_play(total, conversations, rate, out, go))


async def run_once(
    total: int, conversations: int, rate: float | None
) -> tuple[float, float, float]:
    """(messages answered per second, message → reply p50 ms, p99 ms); `rate` None: open loop."""
    context = multiprocessing.get_context("spawn")
    out, go = context.Queue(), context.Event()
    player = context.Process(target=_player, args=(total, conversations, rate, out, go))
    player.start()
    token, api, gateway = await asyncio.to_thread(out.get, True, 60)
    async with Simulator(chunk_size=64) as sim:
        sim.record = False
        with tempfile.TemporaryDirectory() as folder:
            settings = load_app_settings(
                _env_file=None,
                openai_api_key="sk-bench",
                openai_base_url=sim.base_url,
                openai_wire_api="chat",
                database_url=f"sqlite:///{Path(folder) / 'b.db'}",
                discord_token=token,
                discord_api_url=api,
                discord_gateway_url=gateway,
                log_level="error",
            )
            services = await build_services(settings)
            bot = DiscordAdapter(settings.discord, services.engine)
            await bot.login(token)
            connection = asyncio.create_task(bot.connect())
            try:
                await asyncio.wait_for(bot.client.wait_until_ready(), 60)
                go.set()
                rate, p50, p99 = await asyncio.to_thread(out.get, True, 600)
            finally:
                await bot.close()
                await asyncio.gather(connection, return_exceptions=True)
                await services.engine.drain()
                await services.close()
                await asyncio.to_thread(player.join, 30)
    return rate, p50 * 1000, p99 * 1000


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for the table."""
    rows = []
    for total, rate, label in (
        (1000, None, "0 s model, 1,000 messages in 100 DMs, open loop"),
        (400, 20.0, "0 s model, 20 messages/s in 100 DMs"),
    ):
        rates, p50s, p99s = [], [], []
        for _ in range(repeats):
            answered, p50, p99 = await run_once(total, 100, rate)
            rates.append(answered)
            p50s.append(p50)
            p99s.append(p99)
        if rate is None:  # saturated: the figure is throughput, latency is only queueing
            rows.append((f"Discord messages answered/s ({label})", summarize(rates), ""))
            continue
        rows += [
            (f"Discord message → reply p50 ms ({label})", summarize(p50s), ""),
            (f"Discord message → reply p99 ms ({label})", summarize(p99s), ""),
        ]
    return rows
