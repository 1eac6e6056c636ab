"""Micro-batching of moderation: alone at once, under load together, failures to everyone."""

from __future__ import annotations

import asyncio

import pytest

from bots.services import Services
from core.events import ConversationKey, Platform
from core.governance.batching import MicroBatcher
from simulator import Simulator


async def test_an_item_alone_goes_out_at_once_and_later_ones_share_a_request() -> None:
    sent: list[list[int]] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        started.set()
        await release.wait()
        return [item * 10 for item in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(send, max_size=3, max_in_flight=1)
    first = batcher.submit(1)
    await started.wait()
    assert sent == [[1]], "nothing waits while nothing is in flight"
    later = [batcher.submit(n) for n in (2, 3, 4, 5)]
    release.set()
    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30, 40, 50]
    assert sent == [[1], [2, 3, 4], [5]], "queued items leave together, at most max_size each"


async def test_a_full_batch_leaves_without_waiting_up_to_max_in_flight() -> None:
    sent: list[list[int]] = []
    release = asyncio.Event()

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        await release.wait()
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(send, max_size=2, max_in_flight=2)
    futures = [batcher.submit(1)]
    await asyncio.sleep(0)
    futures += [batcher.submit(n) for n in (2, 3, 4, 5, 6)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert sent == [[1], [2, 3]], "a full batch goes beside the first; then the limit holds"
    release.set()
    assert await asyncio.gather(*futures) == [1, 2, 3, 4, 5, 6]
    assert sent == [[1], [2, 3], [4, 5], [6]]


async def test_a_failed_request_fails_every_item_in_it() -> None:
    async def send(items: list[str]) -> list[str]:
        raise RuntimeError("down")

    batcher: MicroBatcher[str, str] = MicroBatcher(send, max_size=8, max_in_flight=1)
    results = await asyncio.gather(batcher.submit("a"), batcher.submit("b"), return_exceptions=True)
    assert [str(r) for r in results] == ["down", "down"]


async def test_concurrent_moderation_checks_share_requests_and_keep_their_verdicts(
    services: Services, sim: Simulator
) -> None:
    sim.latency = 0.05  # a real endpoint's round trip: checks pile up behind the first ones
    sim.flag("forbidden phrase", violence=0.95)
    key = ConversationKey(Platform.CONSOLE, "w", "c", "t")
    texts = [f"harmless message {i}" for i in range(40)] + ["a forbidden phrase"]
    verdicts = await asyncio.gather(
        *(
            services.engine.moderator.check(t, key=key, user_id="u", direction="input")
            for t in texts
        )
    )
    assert [v.blocked for v in verdicts] == [False] * 40 + [True]
    requests = len(sim.requests_to("moderations"))
    assert requests <= 4, requests  # the first alone, a full batch beside it, the rest together


@pytest.mark.parametrize("size", [1, 5])
async def test_results_come_back_in_order(size: int) -> None:
    async def send(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return [-item for item in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(send, max_size=size, max_in_flight=2)
    assert await asyncio.gather(*(batcher.submit(n) for n in range(12))) == [-n for n in range(12)]
