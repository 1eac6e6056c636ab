"""The scheduler every serving process runs: claim the due runs of the platforms it serves, run
them, and poll the digests' batches.

A run is claimed in the database before anything is done (see core/store/schedules.py), so two
processes never run the same period; a process that stops mid-run leaves its run open, and the
next pass of any process closes it as failed (not run again: it may have posted already; a
digest's window stays, so the next digest covers its messages). A recurring prompt is a turn of
the engine (its one turn path) in the schedule's conversation, on behalf of its owner, with the
delivery id of the run: the channel's tools, settings, moderation and budgets apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from core import metrics
from core.context.ports import Ports
from core.events import Event, HistoryUnavailable, Platform, Reply, User
from core.schedules.batch import BatchDigests
from core.schedules.digests import DigestInput, Digests, channel_of
from core.schedules.outcomes import Outcome, conclude
from core.schedules.timing import next_run
from core.store import Store, StoreError
from core.store.schedules import Run, Schedule

log = structlog.get_logger(__name__)


class TurnEnd(Protocol):
    """How a turn ended, as the engine reports it (`core.engine.TurnOutcome`)."""

    @property
    def turn_id(self) -> int: ...

    @property
    def status(self) -> str: ...


Turns = Callable[[Event, Reply], Awaitable[TurnEnd | None]]  # the engine's `handle`
TURN_OUTCOMES = {"done": "done", "stopped": "done", "refused": "skipped"}
CLAIM_LIMIT = 50  # runs per claiming transaction


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass of the scheduler did."""

    claimed: int = 0
    batched: int = 0
    batches_ended: int = 0
    orphans: int = 0


def next_after(schedule: Schedule, moment: float) -> float:
    """The schedule's first run after `moment`."""
    return next_run(schedule.cron, schedule.time_zone, moment)


class Scheduler:
    """Claims and runs due schedules; `run` until stopped, or `tick` once (tests, with a clock)."""

    def __init__(
        self,
        *,
        store: Store,
        ports: Ports,
        digests: Digests,
        turns: Turns,
        batches: BatchDigests | None = None,
        poll_seconds: float = 30.0,
        stale_after: float = 30.0,
        concurrency: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._ports = ports
        self.digests = digests
        self._turns = turns
        self.batches = batches  # None: digests are direct calls (DIGEST_BATCH=false)
        self._poll = poll_seconds
        self._stale_after = stale_after
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[DigestInput | None]] = set()  # prompts running
        self.clock = clock

    def platforms(self) -> list[str]:
        """The platforms this process serves (a port attached): only their runs are claimed."""
        return [p.value for p in Platform if self._ports.get(p) is not None]

    async def run(self, until: asyncio.Event) -> None:
        """A pass every `poll_seconds` until `until` is set; a failed pass is logged and retried.
        Recurring prompts run on in the background (a turn may wait for a tool approval)."""
        while not until.is_set():
            try:
                await self.tick(settle=False)
            except StoreError as exc:
                log.error("schedules_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), self._poll)

    async def tick(self, *, settle: bool = True) -> Pass:
        """One pass: close orphaned runs, claim and run what is due (digests here, prompts as
        background turns; with `settle`, wait for those too), poll batches."""
        now = self.clock()
        orphans = await self._sweep(now)
        platforms = self.platforms()
        claimed = batched = 0
        while True:
            runs = await self._store.schedules.claim_due(
                platforms, now=now, next_after=next_after, limit=CLAIM_LIMIT
            )
            claimed += len(runs)
            for run in runs:
                if run.schedule.kind == "prompt":
                    task = asyncio.create_task(self._start(run, now))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            digests = [run for run in runs if run.schedule.kind != "prompt"]
            results = await asyncio.gather(*(self._start(run, now) for run in digests))
            waiting: dict[str, list[tuple[Run, DigestInput]]] = {}
            for run, digest in zip(digests, results, strict=True):
                if digest is not None:
                    waiting.setdefault(run.schedule.key.platform.value, []).append((run, digest))
            for platform, due in waiting.items():
                assert self.batches is not None
                direct = await self.batches.submit(platform, due, now=now)
                batched += len(due) - len(direct)
                await asyncio.gather(*(self._direct(run, digest, now) for run, digest in direct))
            if len(runs) < CLAIM_LIMIT:
                break
        ended = await self.batches.poll(platforms, now=now) if self.batches else 0
        if settle:
            await self.drain()
        return Pass(claimed, batched, ended, orphans)

    async def drain(self) -> None:
        """Wait for the recurring prompts still running."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _start(self, run: Run, now: float) -> DigestInput | None:
        """Run a claimed run; a digest to batch is returned instead of run."""
        async with self._slots:
            try:
                if run.schedule.kind == "prompt":
                    outcome = await self._prompt(run)
                else:
                    prepared = await self.digests.prepare(
                        run, now=now, batch=self.batches is not None
                    )
                    if isinstance(prepared, DigestInput):
                        if self.batches is not None:
                            return prepared
                        outcome = await self.digests.run_direct(run, prepared, now=now)
                    else:
                        outcome = prepared
            except Exception as exc:  # one run's failure must not stop the others
                outcome = _failed(run, exc)
            await self._conclude(run, outcome)
            return None

    async def _direct(self, run: Run, digest: DigestInput, now: float) -> None:
        async with self._slots:
            try:
                outcome = await self.digests.run_direct(run, digest, now=now)
            except Exception as exc:
                outcome = _failed(run, exc)
            await self._conclude(run, outcome)

    async def _conclude(self, run: Run, outcome: Outcome) -> None:
        try:
            await conclude(self._store, self._ports, run, outcome, now=self.clock())
        except StoreError as exc:  # the run stays open; the orphan sweep closes it later
            log.error("scheduled_run_not_stored", run=run.id, error=str(exc))

    async def _prompt(self, run: Run) -> Outcome:
        """The schedule's prompt as a turn in its conversation, for its owner."""
        schedule = run.schedule
        port = self._ports.get(schedule.key.platform)
        if port is None:
            return Outcome("failed", f"no {schedule.key.platform.value} connection")
        with contextlib.suppress(HistoryUnavailable):  # unknown: let the turn try
            access = await port.access(channel_of(schedule.key), schedule.owner_id)
            if not access.member:
                name = schedule.owner_name or schedule.owner_id
                return Outcome(
                    "skipped",
                    "the owner is no longer a member of the conversation",
                    pause=True,
                    notice=f"Schedule #{schedule.id} is paused: {name}, who set it up, is no "
                    "longer a member here. Anyone here can schedule it again with `/schedule`.",
                )
        event = Event(
            key=schedule.key,
            user=User(schedule.owner_id, schedule.owner_name),
            text=schedule.prompt,
            delivery_id=f"schedule:{run.id}",
        )
        ended = await self._turns(event, port.reply_to(schedule.key))
        if ended is None:
            return Outcome("failed", "the turn was not stored (the database refused it)")
        status = TURN_OUTCOMES.get(ended.status, "failed")
        return Outcome(status, f"turn {ended.turn_id}: {ended.status}")

    async def _sweep(self, now: float) -> int:
        """Close the open runs of processes that stopped; returns how many."""
        closed = 0
        alive: dict[str, bool] = {}
        for run_id, owner, kind in await self._store.schedules.open_elsewhere():
            if owner not in alive:
                alive[owner] = await self._store.processes.alive(
                    owner, stale_after=self._stale_after
                )
            if not alive[owner] and await self._store.schedules.fail_orphan(run_id, owner, now=now):
                closed += 1
                metrics.SCHEDULED_RUNS.labels(kind, "failed").inc()
                log.warning("scheduled_run_interrupted", run=run_id, owner=owner)
        return closed


def _failed(run: Run, exc: Exception) -> Outcome:
    log.error("scheduled_run_failed", run=run.id, error=f"{type(exc).__name__}: {exc}")
    return Outcome("failed", f"{type(exc).__name__}: {str(exc)[:200]}")
