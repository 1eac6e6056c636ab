"""The simulator alone (so it is known not to be the bottleneck), and memory with many conversations."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import time
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from bench.common import TimedReply, engine, summarize
from bench.peers import simulator
from core.events import ConversationKey, Event, Platform, User

CHAT = {
    "model": "gpt-6-luna",
    "messages": [{"role": "user", "content": "how does the simulator hold up?"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}
MODERATION = {"model": "omni-moderation-latest", "input": ["is this fine?"]}
HEADERS = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}


async def simulator_alone(total: int = 3000, concurrency: int = 64) -> tuple[float, float]:
    """(chat streams/s, moderations/s) the simulator serves, from a plain aiohttp client."""
    async with simulator() as sim:
        rates = []
        for path, body in (("/chat/completions", CHAT), ("/moderations", MODERATION)):
            data = json.dumps(body).encode()
            semaphore = asyncio.Semaphore(concurrency)
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as http:

                async def one(url: str, data: bytes, limit: asyncio.Semaphore) -> None:
                    async with limit, http.post(url, data=data, headers=HEADERS) as response:
                        await response.read()

                started = time.perf_counter()
                url = sim.base_url + path
                await asyncio.gather(*(one(url, data, semaphore) for _ in range(total)))
                rates.append(total / (time.perf_counter() - started))
        return rates[0], rates[1]


def _rss_child(conversations: int, out: Any) -> None:
    async def run() -> None:
        async with engine() as (services, _):
            semaphore = asyncio.Semaphore(200)

            async def turn(i: int) -> None:
                event = Event(
                    key=ConversationKey(Platform.CONSOLE, "bench", "c", f"t{i}"),
                    user=User(f"u{i % 500}", "bench"),
                    text=f"conversation {i}: what did we decide about the launch?",
                    delivery_id=f"rss-{i}",
                )
                async with semaphore:
                    await services.engine.handle(event, TimedReply())

            await asyncio.gather(*(turn(i) for i in range(conversations)))
            out.put(_resident_mb())

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.disable(logging.WARNING)
    asyncio.run(run())


def _resident_mb() -> tuple[float, float]:
    """(resident, peak resident) MB of this process."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def memory(conversations: int = 10_000) -> tuple[float, float]:
    """(RSS MB after, peak RSS MB) of a fresh process that served `conversations` conversations."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_rss_child, args=(conversations, out))
    child.start()
    result = await asyncio.to_thread(out.get, True, 900)
    await asyncio.to_thread(child.join)
    return result


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for the table."""
    chats, moderations, rss, peaks = [], [], [], []
    for _ in range(repeats):
        chat, moderation = await simulator_alone()
        chats.append(chat)
        moderations.append(moderation)
        now, peak = await memory()
        rss.append(now)
        peaks.append(peak)
    return [
        ("simulator alone: chat streams/s (64 clients)", summarize(chats), "(not the bottleneck)"),
        ("simulator alone: moderations/s (64 clients)", summarize(moderations), ""),
        ("resident memory after 10,000 conversations (MB)", summarize(rss), "<= 250"),
        ("peak resident memory, 10,000 conversations (MB)", summarize(peaks), "<= 250"),
    ]
