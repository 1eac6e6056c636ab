"""Liveness and orphaned turns: only stopped processes' turns are claimed, each exactly once."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from core.events import Platform
from core.store import Store, connect
from tests.conftest import make_event


async def _store(location: Path | str, owner: str) -> Store:
    db = connect(location)
    await db.open()
    await db.migrate()
    return Store(db, owner)


async def test_only_turns_of_stopped_processes_are_claimed(location: Path | str) -> None:
    live = await _store(location, "elsewhere/1/live")
    dead = await _store(location, "elsewhere/2/dead")
    me = await _store(location, "elsewhere/3/me")
    try:
        await live.processes.beat()
        await live.accept(
            make_event("live turn", delivery_id="a"), text="x", tokens=1, delivery_ttl=60
        )
        await dead.accept(
            make_event("dead turn", delivery_id="b"), text="x", tokens=1, delivery_ttl=60
        )
        orphans = await me.processes.claim_orphans(Platform.CONSOLE, stale_after=30)
        assert [o.turn_id for o in orphans] == [2], "a process that never beat is gone"
        assert await me.processes.claim_orphans(Platform.CONSOLE, stale_after=30) == []
        assert await me.processes.claim_orphans(Platform.SLACK, stale_after=30) == []
        stale = await me.processes.claim_orphans(Platform.CONSOLE, stale_after=-1)
        assert [o.turn_id for o in stale] == [1], "one that stopped beating is gone too"
    finally:
        for store in (live, dead, me):
            await store.close()


async def test_two_processes_claiming_at_once_split_the_orphans(location: Path | str) -> None:
    dead = await _store(location, "elsewhere/9/dead")
    for i in range(20):
        await dead.accept(
            make_event(f"m{i}", delivery_id=f"d{i}"), text="x", tokens=1, delivery_ttl=60
        )
    a, b = await _store(location, "elsewhere/1/a"), await _store(location, "elsewhere/2/b")
    try:
        first, second = await asyncio.gather(
            a.processes.claim_orphans(Platform.CONSOLE, stale_after=30),
            b.processes.claim_orphans(Platform.CONSOLE, stale_after=30),
        )
        claimed = [o.turn_id for o in first + second]
        assert sorted(claimed) == list(range(1, 21)), "every turn claimed exactly once"
    finally:
        for store in (dead, a, b):
            await store.close()


async def test_a_dead_pid_on_this_host_is_stopped_at_once(location: Path | str) -> None:
    gone = await _store(location, f"{socket.gethostname()}/999999999/x")
    me = await _store(location, "elsewhere/1/me")
    try:
        await gone.processes.beat()  # it beat a moment ago, but its pid no longer exists
        await gone.accept(make_event("hi"), text="x", tokens=1, delivery_ttl=60)
        assert len(await me.processes.claim_orphans(Platform.CONSOLE, stale_after=3600)) == 1
    finally:
        await gone.close()
        await me.close()


async def test_a_day_old_orphan_is_closed_without_a_notice(location: Path | str) -> None:
    dead = await _store(location, "elsewhere/2/dead")
    me = await _store(location, "elsewhere/3/me")
    try:
        old = await dead.accept(
            make_event("long ago", delivery_id="old"), text="x", tokens=1, delivery_ttl=60
        )
        await dead.accept(
            make_event("just now", delivery_id="new"), text="x", tokens=1, delivery_ttl=60
        )
        assert old is not None
        await dead.db.execute(
            "UPDATE turns SET created_at = created_at - 2 * 86400 WHERE id = ?", (old.turn_id,)
        )
        orphans = await me.processes.claim_orphans(Platform.CONSOLE, stale_after=30)
        assert [o.turn_id for o in orphans] == [2], "only the recent one gets a notice"
        statuses = await me.db.fetchall("SELECT status FROM turns ORDER BY id")
        assert [r[0] for r in statuses] == ["interrupted", "interrupted"]
    finally:
        await dead.close()
        await me.close()
