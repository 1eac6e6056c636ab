"""Context assembly cost with 10 vs 10,000 stored messages, and the stable prompt prefix share."""

from __future__ import annotations

import itertools
import time

from bench.common import engine, summarize
from core.conversation.overrides import resolve_config
from core.events import ConversationKey, Event, Platform, User
from core.store.db import Tx
from core.store.messages import insert


async def _fill(services, key: ConversationKey, count: int) -> None:  # type: ignore[no-untyped-def]
    conversation = await services.store.conversations.ensure(key)

    async def fill(tx: Tx) -> None:
        for i in range(count // 2):
            turn = i + 1
            # Messages of ~1,500 tokens: about ten fill the 16k budget, so both conversations
            # have the same window and the comparison isolates the cost of the history's length.
            for role, text in (
                ("user", f"question {i} " * 1500),
                ("assistant", f"answer {i} " * 1500),
            ):
                await insert(
                    tx, conversation, role=role, content=text, tokens=len(text) // 4, turn_id=turn
                )

    await services.store.db.write(fill)


async def assembly_ms(count: int, rounds: int = 200) -> float:
    """Mean ms to assemble a turn's context in a conversation of `count` messages."""
    async with engine() as (services, _):
        key = ConversationKey(Platform.CONSOLE, "bench", "c", f"n{count}")
        await _fill(services, key, count)
        conversation = await services.store.conversations.ensure(key)
        config = await resolve_config(services.settings, services.store, key)
        started = time.perf_counter()
        for _ in range(rounds):
            await services.engine.memory.context(
                conversation, instructions=config.system_prompt, budget=config.budget
            )
        return (time.perf_counter() - started) / rounds * 1000


async def stable_prefix_share(turns: int = 10) -> float:
    """Share of each request's prompt that repeats the previous request's prompt exactly."""
    async with engine(record=True) as (services, sim):
        key = ConversationKey(Platform.CONSOLE, "bench", "c", "prefix")
        for i in range(turns):
            event = Event(key=key, user=User("u"), text=f"turn {i} " * 40, delivery_id=f"p{i}")
            await services.engine.handle(event, _Null())
        shares = []
        bodies = [
            r["body"]
            for r in await sim.requests()
            if r["endpoint"] == "chat" and r["body"] and "response_format" not in r["body"]
        ]
        for previous, current in itertools.pairwise(bodies):
            a, b = str(previous["messages"]), str(current["messages"])
            common = next(
                (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)),
            )
            shares.append(common / len(b))
        return sum(shares) / len(shares)


class _Null:
    async def begin(self) -> None: ...
    async def append(self, delta: str) -> None: ...
    async def finish(self, text: str) -> None: ...
    async def notice(self, text: str) -> None: ...
    async def upload(self, file) -> None: ...  # type: ignore[no-untyped-def]


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for the table."""
    small, large, ratio, shares = [], [], [], []
    for _ in range(repeats):
        a, b = await assembly_ms(10), await assembly_ms(10_000)
        small.append(a)
        large.append(b)
        ratio.append(b / a)
        shares.append(await stable_prefix_share())
    return [
        ("context assembly, 10 messages (ms)", summarize(small), ""),
        ("context assembly, 10,000 messages (ms)", summarize(large), ""),
        ("assembly cost ratio 10,000 vs 10", summarize(ratio), "<= 1.2x"),
        ("stable prefix share of consecutive prompts", summarize(shares), "high"),
    ]
