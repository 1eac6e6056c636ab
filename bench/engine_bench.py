"""Engine overhead per turn (model time excluded) and turns/s against a zero-latency model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from bench.common import TimedReply, engine, percentile, summarize
from core.events import ConversationKey, Event, Platform, User
from core.llm.client import ModelClient
from core.llm.types import ModelRequest, StreamEvent


def _event(conversation: int, turn: int) -> Event:
    return Event(
        key=ConversationKey(Platform.CONSOLE, "bench", "c", f"t{conversation}"),
        user=User("u", "bench"),
        text=f"question {turn} about the quarterly plan",
        delivery_id=f"{conversation}-{turn}",
    )


async def overhead(turns: int = 300, *, moderation: bool = True) -> tuple[float, float]:
    """p50/p99 ms of (event in -> chat request out) + (last token -> reply finished)."""
    async with engine(record=True, moderation_enabled=moderation) as (services, sim):
        samples = []
        streamed: list[float] = []  # when the model's stream ended (its last token)
        cls = type(services.model)  # every call goes through it, however the turn holds it
        stream = cls.stream

        async def timed(self: ModelClient, request: ModelRequest) -> AsyncIterator[StreamEvent]:
            async for event in stream(self, request):
                streamed.append(time.monotonic())  # the last one: the stream's end
                yield event

        cls.stream = timed  # type: ignore[method-assign]
        for i in range(turns):
            reply = TimedReply()
            started = time.monotonic()
            await services.engine.handle(_event(i % 20, i), reply)
            chats = [r for r in await sim.requests() if r["path"].endswith("/chat/completions")]
            request_out = chats[-1]["at"]  # the simulator's clock is the same
            await sim.admin("reset")
            before = (request_out - started) * 1000
            # A short reply is shown whole at `finish` (nothing appended): from the last token.
            after = (reply.finished - streamed[-1]) * 1000
            samples.append(before + after)
        cls.stream = stream  # type: ignore[method-assign]
        return percentile(samples, 50), percentile(samples, 99)


async def throughput(total: int = 1000, concurrency: int = 100) -> float:
    """Complete turns per second with many conversations at once."""
    async with engine() as (services, _):
        started = time.perf_counter()
        for batch in range(0, total, concurrency):
            await asyncio.gather(
                *(
                    services.engine.handle(_event(i, batch + i), TimedReply())
                    for i in range(concurrency)
                )
            )
        return total / (time.perf_counter() - started)


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for the table."""
    p50s, p99s, rates, bare50s, bare99s = [], [], [], [], []
    for _ in range(repeats):
        p50, p99 = await overhead()
        p50s.append(p50)
        p99s.append(p99)
        bare50, bare99 = await overhead(moderation=False)
        bare50s.append(bare50)
        bare99s.append(bare99)
        rates.append(await throughput())
    return [
        ("engine overhead per turn p50 (ms)", summarize(p50s), "<= 2"),
        ("engine overhead per turn p99 (ms)", summarize(p99s), "<= 10"),
        ("engine overhead p50, moderation off (ms)", summarize(bare50s), ""),
        ("engine overhead p99, moderation off (ms)", summarize(bare99s), ""),
        ("turns/s, zero-latency model, 100 conversations", summarize(rates), ">= 300 (Slack path)"),
    ]
