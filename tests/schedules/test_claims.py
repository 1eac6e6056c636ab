"""Each due run is claimed once across processes (SQLite's single writer, PostgreSQL's row locks
with SKIP LOCKED): two stores on one database claiming every period at once, a real second OS
process racing this one, and one catch-up run after downtime."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from core.schedules.runner import next_after
from core.store import Store, connect
from core.store.schedules import NewSchedule
from tests.schedules.helpers import at, key

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def location(on_both_backends: str) -> str:
    return on_both_backends


async def _stores(location: str, count: int) -> list[Store]:
    stores = [Store(connect(location), f"host/{i}/schedules") for i in range(count)]
    for store in stores:
        await store.db.open()
        await store.db.migrate()
    return stores


def _new(channel: str, first: float, cron: str = "0 * * * *") -> NewSchedule:
    return NewSchedule("prompt", key(channel), "u1", "Ada", "every hour", cron, "UTC", first, "hi")


async def test_two_processes_claim_every_period_exactly_once(location: str) -> None:
    a, b = await _stores(location, 2)
    try:
        start = at("2026-01-05 00:00").timestamp()
        ids = [
            (await a.schedules.add(_new(f"c{i}", start + 3600), now=start)).id for i in range(20)
        ]
        for step in range(1, 9):
            now = start + step * 3600
            claimed = []
            while True:  # both processes at once, a few runs per transaction, until none is due
                first, second = await asyncio.gather(
                    *(
                        s.schedules.claim_due(["console"], now=now, next_after=next_after, limit=7)
                        for s in (a, b)
                    )
                )
                claimed += first + second
                if not first and not second:
                    break
            assert sorted(run.schedule.id for run in claimed) == ids, f"hour {step}"
            assert {run.due_at for run in claimed} == {now}
            assert not any(run.catch_up for run in claimed)
        for schedule_id in ids:
            runs = await a.schedules.runs(schedule_id)
            assert [r.due_at for r in runs] == [start + s * 3600 for s in range(1, 9)]
    finally:
        await a.close()
        await b.close()


async def test_downtime_gives_one_catch_up_run(location: str) -> None:
    [store] = await _stores(location, 1)
    try:
        created = at("2026-02-02 08:00").timestamp()
        daily = NewSchedule(
            "digest",
            key("c1"),
            "u1",
            "Ada",
            "daily 09:00 UTC",
            "0 9 * * *",
            "UTC",
            at("2026-02-02 09:00").timestamp(),
        )
        schedule = await store.schedules.add(daily, now=created)
        back = at("2026-02-07 12:30").timestamp()  # five days down
        [run] = await store.schedules.claim_due(["console"], now=back, next_after=next_after)
        assert run.catch_up and run.due_at == at("2026-02-02 09:00").timestamp()
        assert await store.schedules.claim_due(["console"], now=back, next_after=next_after) == []
        moved = await store.schedules.get(schedule.id)
        assert moved is not None and moved.next_run_at == at("2026-02-08 09:00").timestamp()
        nothing = await store.schedules.claim_due(
            ["slack"], now=back + 86_400, next_after=next_after
        )
        assert nothing == [], "only the platforms this process serves"
    finally:
        await store.close()


async def test_a_second_os_process_and_this_one_claim_each_due_run_once(location: str) -> None:
    [store] = await _stores(location, 1)
    try:
        now = time.time()
        ids = {
            (await store.schedules.add(_new(f"c{i}", now - 60, "*/15 * * * *"), now=now)).id
            for i in range(40)
        }
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.schedules.claimer",
            location,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        assert child.stdin is not None and child.stdout is not None
        assert (await asyncio.wait_for(child.stdout.readline(), 60)).strip() == b"ready"
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        mine: list[int] = []
        idle = 0
        while idle < 3:
            runs = await store.schedules.claim_due(
                ["console"], now=time.time(), next_after=next_after, limit=3
            )
            mine += [run.schedule.id for run in runs]
            idle = 0 if runs else idle + 1
        theirs = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
        assert await child.wait() == 0
        assert not set(mine) & set(theirs), "no run claimed by both processes"
        assert len(mine) + len(theirs) == 40 and set(mine) | set(theirs) == ids
        for schedule_id in ids:
            assert len(await store.schedules.runs(schedule_id)) == 1
    finally:
        await store.close()
