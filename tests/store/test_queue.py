"""The durable turn queue: unclaimed turns are claimed oldest first, one conversation's turns one
after another, each by exactly one process; the queue limit refuses without writing; a stopped
process's turns go back to the queue with what is needed to run them (both backends)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from core.events import ConversationKey, Event, Platform
from core.store import QueueFull, Store, connect
from tests.conftest import make_event

ADDRESS = json.dumps({"channel": "C1", "thread_ts": None, "user": "U1", "team": "T1"})


async def _store(location: Path | str, owner: str) -> Store:
    db = connect(location)
    await db.open()
    await db.migrate()
    return Store(db, owner)


def _event(text: str, thread: str) -> Event:
    return Event(
        key=ConversationKey(Platform.SLACK, "T1", "C1", thread),
        user=make_event("x").user,
        text=text,
        delivery_id=f"{thread}-{text}",
    )


async def _queue(store: Store, event: Event, **kw: object) -> int:
    accepted = await store.accept(
        event, text=event.text, tokens=1, delivery_ttl=60, reply_to=ADDRESS, run_here=False, **kw
    )
    assert accepted is not None and accepted.queued
    return accepted.turn_id


async def test_queued_turns_are_claimed_oldest_first_one_per_conversation(
    location: Path | str,
) -> None:
    intake = await _store(location, "host/1/intake")
    runner = await _store(location, "host/2/runner")
    try:
        a1 = await _queue(intake, _event("a1", "ta"))
        b1 = await _queue(intake, _event("b1", "tb"))
        a2 = await _queue(intake, _event("a2", "ta"))
        assert await runner.queue.waiting(10) == 3
        claimed = await runner.queue.claim(["slack"], 10)
        assert [t.turn_id for t in claimed] == [a1, b1], "a2 waits for a1"
        assert Event.from_json(claimed[0].event).text == "a1"
        assert json.loads(claimed[0].reply_to)["channel"] == "C1"
        assert [t.runs for t in claimed] == [1, 1]
        assert await runner.queue.claim(["slack"], 10) == []
        assert await runner.queue.claim(["discord"], 10) == []
        await runner.finish_turn(a1, claimed[0].conversation, steps=[])
        [next_turn] = await runner.queue.claim(["slack"], 10)
        assert next_turn.turn_id == a2
    finally:
        await intake.close()
        await runner.close()


async def test_processes_claiming_at_once_take_each_turn_once(location: Path | str) -> None:
    intake = await _store(location, "host/1/intake")
    runners = [await _store(location, f"host/{i}/runner") for i in range(2, 5)]
    try:
        ids = [await _queue(intake, _event(f"m{i}", f"t{i}")) for i in range(30)]

        async def drain(store: Store) -> list[int]:
            taken: list[int] = []
            while batch := await store.queue.claim(["slack"], 4):
                taken += [t.turn_id for t in batch]
                await asyncio.sleep(0)
            return taken

        results = await asyncio.gather(*(drain(r) for r in runners))
        claimed = [turn_id for taken in results for turn_id in taken]
        assert sorted(claimed) == ids, "every queued turn claimed exactly once"
    finally:
        for store in (intake, *runners):
            await store.close()


async def test_the_queue_limit_refuses_and_writes_nothing(location: Path | str) -> None:
    store = await _store(location, "host/1/intake")
    try:
        await _queue(store, _event("one", "t1"), queue_limit=2)
        await _queue(store, _event("two", "t2"), queue_limit=2)
        with pytest.raises(QueueFull):
            await _queue(store, _event("three", "t3"), queue_limit=2)
        assert await store.queue.waiting(10) == 2
        # The refused delivery was not claimed: delivered again once there is room, it is stored.
        await store.queue.claim(["slack"], 1)
        await _queue(store, _event("three", "t3"), queue_limit=2)
        rows = await store.db.fetchall("SELECT content FROM messages ORDER BY id")
        assert [r[0] for r in rows] == ["one", "two", "three"]
    finally:
        await store.close()


async def test_a_turn_behind_an_unclaimed_one_waits_in_the_queue_too(location: Path | str) -> None:
    store = await _store(location, "host/1/web")
    try:
        first = await _queue(store, _event("first", "t1"))
        accepted = await store.accept(
            _event("second", "t1"), text="second", tokens=1, delivery_ttl=60, reply_to=ADDRESS
        )
        assert accepted is not None and accepted.queued, "queued to keep the order"
        assert accepted.turn_id > first
    finally:
        await store.close()


async def test_a_stopped_process_s_turns_go_back_to_the_queue(location: Path | str) -> None:
    dead = await _store(location, "elsewhere/9/dead")
    me = await _store(location, "elsewhere/1/me")
    try:
        running = await dead.accept(
            _event("running", "t1"), text="running", tokens=1, delivery_ttl=60, reply_to=ADDRESS
        )
        assert running is not None and not running.queued
        await dead.turns.mark_running(running.turn_id, "gpt")
        await dead.queue.shown(running.turn_id, "171.000200")
        plain = await dead.accept(make_event("console"), text="console", tokens=1, delivery_ttl=60)
        assert plain is not None
        taken = await me.processes.claim_orphans(Platform.SLACK, stale_after=30)
        assert [(o.turn_id, o.requeued, o.was_running) for o in taken] == [
            (running.turn_id, True, True)
        ]
        [again] = await me.queue.claim(["slack"], 5)
        assert (again.turn_id, again.reply_ref, again.runs) == (running.turn_id, "171.000200", 2)
        [closed] = await me.processes.claim_orphans(Platform.CONSOLE, stale_after=30)
        assert (closed.turn_id, closed.requeued) == (plain.turn_id, False), "no reply address"
    finally:
        await dead.close()
        await me.close()
