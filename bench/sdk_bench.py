"""What one request costs this process's CPU through the openai SDK, as the server sends it (its
aiohttp transport, plain JSON back), against the same request on a bare aiohttp session; the
simulator answers from its own process."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import openai

from bench.common import summarize
from bench.peers import simulator

CALLS = 400
WARM_UP = 20
MODEL = "gpt-6-luna"
MODERATION = {"model": "omni-moderation-latest", "input": ["is this fine?"]}
CHAT = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "how much does a request cost?"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


async def _cpu_ms(call: Callable[[], Awaitable[None]]) -> float:
    """CPU milliseconds of this process per call."""
    for _ in range(WARM_UP):
        await call()
    started = time.process_time()
    for _ in range(CALLS):
        await call()
    return (time.process_time() - started) * 1000 / CALLS


async def once() -> dict[str, float]:
    """CPU ms per moderation request and per streamed chat call, through the SDK and bare."""
    async with simulator() as sim:
        client = openai.AsyncOpenAI(
            api_key="sk-bench",
            base_url=sim.base_url,
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(),
        )
        headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
        async with client, aiohttp.ClientSession(headers=headers) as http:

            async def sdk_moderation() -> None:
                await client.post("/moderations", body=MODERATION, cast_to=object)

            async def sdk_chat() -> None:
                stream = await client.post(
                    "/chat/completions",
                    body=CHAT,
                    cast_to=object,
                    stream=True,
                    stream_cls=openai.AsyncStream[object],
                )
                async with stream:
                    async for _ in stream:
                        pass

            async def bare_moderation() -> None:
                data = json.dumps(MODERATION)
                async with http.post(sim.base_url + "/moderations", data=data) as response:
                    await response.json()

            async def bare_chat() -> None:
                data = json.dumps(CHAT)
                async with http.post(sim.base_url + "/chat/completions", data=data) as response:
                    async for _ in response.content:
                        pass

            return {
                "sdk moderation": await _cpu_ms(sdk_moderation),
                "bare moderation": await _cpu_ms(bare_moderation),
                "sdk chat": await _cpu_ms(sdk_chat),
                "bare chat": await _cpu_ms(bare_chat),
            }


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for the table."""
    runs = [await once() for _ in range(repeats)]

    def row(name: str) -> str:
        return summarize([r[name] for r in runs])

    return [
        ("CPU ms per moderation request, openai SDK (as sent)", row("sdk moderation"), ""),
        ("CPU ms per moderation request, bare aiohttp", row("bare moderation"), ""),
        ("CPU ms per streamed chat call, openai SDK (as sent)", row("sdk chat"), ""),
        ("CPU ms per streamed chat call, bare aiohttp", row("bare chat"), ""),
    ]
