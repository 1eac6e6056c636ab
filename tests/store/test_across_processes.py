"""Several processes on one database (both backends): spending holds, rate counts, server-side
conversation creation and summaries stay correct."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.store import Store, connect
from core.store.usage import Limit, UsageRow
from tests.conftest import make_event


async def _processes(location: Path | str, count: int) -> list[Store]:
    stores = [Store(connect(location), f"host/{i}/p") for i in range(count)]
    for store in stores:
        await store.db.open()
        await store.db.migrate()
    return stores


def _hold(turn_id: int, usd: float) -> UsageRow:
    return UsageRow("console", "w1", "c1", "u1", "m", "chat", 0, 0, 0, usd, turn_id=turn_id)


async def test_concurrent_turns_in_two_processes_cannot_spend_past_a_limit(
    location: Path | str,
) -> None:
    a, b = await _processes(location, 2)
    try:
        limit = Limit(1.0, 0.0, "u1")
        results = await asyncio.gather(
            *((a if i % 2 else b).usage.reserve(_hold(i, 0.3), [limit]) for i in range(10))
        )
        held = [r for r in results if r is None]
        assert len(held) == 3, "0.3 fits three times into 1.0, whichever process asks"
        refused = [r for r in results if r is not None]
        assert all(spent >= 0.9 - 1e-9 for _, spent in refused)
        totals = await a.usage.totals("console", "w1", 0.0, "u1")
        assert round(totals.cost_usd, 6) == 0.9 and totals.calls == 0, "holds are not calls"
    finally:
        await a.close()
        await b.close()


async def test_a_turn_that_ends_releases_its_hold(location: Path | str) -> None:
    [store] = await _processes(location, 1)
    try:
        done = await store.accept(make_event("a"), text="a", tokens=1, delivery_ttl=60)
        failed = await store.accept(make_event("b"), text="b", tokens=1, delivery_ttl=60)
        assert done is not None and failed is not None
        for accepted in (done, failed):
            assert await store.usage.reserve(_hold(accepted.turn_id, 0.5), [Limit(5, 0)]) is None
        await store.finish_turn(done.turn_id, done.conversation, steps=[])
        await store.turns.mark_failed(failed.turn_id, "boom")
        totals = await store.usage.totals("console", "w1", 0.0)
        assert totals.cost_usd == 0
    finally:
        await store.close()


async def test_the_rate_count_is_the_same_in_every_process(location: Path | str) -> None:
    a, b = await _processes(location, 2)
    try:
        accepted = await asyncio.gather(
            *(
                (a if i % 2 else b).accept(
                    make_event(f"m{i}", thread=f"t{i}"), text="x", tokens=1, delivery_ttl=60
                )
                for i in range(6)
            )
        )
        ids = sorted(t.turn_id for t in accepted if t is not None)
        counts = [
            await (a, b)[i % 2].turns.count_before("console:w1:u1", 0.0, t)
            for i, t in enumerate(ids)
        ]
        assert counts == list(range(6)), "the n-th turn of the minute sees n-1 before it"
    finally:
        await a.close()
        await b.close()


async def test_a_server_side_conversation_is_created_once_across_processes(
    location: Path | str,
) -> None:
    a, b = await _processes(location, 2)
    try:
        conversation = await a.conversations.ensure(make_event("x").key)
        live = await asyncio.gather(
            *((a, b)[i % 2].remote.claim(conversation, f"conv_{i}") for i in range(8))
        )
        assert len(set(live)) == 1, "every creator is told the one winner"
        assert await b.remote.history(conversation) == [live[0]]
    finally:
        await a.close()
        await b.close()


async def test_an_older_summary_never_replaces_a_newer_one(location: Path | str) -> None:
    from core.store.memory import Summary

    a, b = await _processes(location, 2)
    try:
        conversation = await a.conversations.ensure(make_event("x").key)
        await a.summaries.save(conversation, Summary("up to 8", covers_until=8), "m")
        await b.summaries.save(conversation, Summary("up to 5", covers_until=5), "m")
        assert (await a.summaries.get(conversation)).text == "up to 8"
        await b.summaries.save(conversation, Summary("up to 9", covers_until=9), "m")
        assert (await a.summaries.get(conversation)).covers_until == 9
    finally:
        await a.close()
        await b.close()
