"""The turn runner: claims queued turns from the database while this process has room.

Turns wait in the database when their accepting process had no room (or is intake only), when
an earlier turn of their conversation was open elsewhere, or when a stopped process left them
unfinished. Every process that runs turns (`TURN_RUNNERS`) claims them, oldest first, as its
capacity frees: at once when one of its own turns ends or it queued one itself, else after a
short look at the queue every `poll` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from core.conversation.capacity import Capacity
from core.store import StoreError
from core.store.queue import QueuedTurn, TurnQueue

log = structlog.get_logger(__name__)

LAG_RECHECK_SECONDS = 0.01  # work is waiting but the loop is late: look again this soon


class TurnRunner:
    """Starts claimed turns through `start`, for the platforms `platforms()` names."""

    def __init__(
        self,
        queue: TurnQueue,
        capacity: Capacity,
        start: Callable[[QueuedTurn], None],
        platforms: Callable[[], Iterable[str]],
        *,
        poll: float = 0.1,
        batch: int = 16,
    ) -> None:
        self._queue = queue
        self._capacity = capacity
        self._start = start
        self._platforms = platforms
        self._poll = poll
        self._batch = batch
        self._wake = asyncio.Event()
        self._hint = True  # turns may be waiting (start by looking)
        self.active = False  # `run` is claiming: turns without room here may wait for it

    def poke(self) -> None:
        """Something may be claimable now (a turn was queued, or one of ours ended)."""
        self._hint = True
        self._wake.set()

    async def run(self, until: asyncio.Event) -> None:
        """Claim and start queued turns until `until` is set."""
        stop: asyncio.Future[Any] = asyncio.ensure_future(until.wait())
        self.active = True
        try:
            while not until.is_set():
                try:
                    await self._step()
                except StoreError as exc:
                    log.error("turn_claim_failed", error=str(exc))
                    await self._sleep(stop, self._poll * 5)
                if not until.is_set():
                    await self._sleep(stop)
        finally:
            self.active = False
            stop.cancel()

    async def _step(self) -> None:
        """Claim while there is room and something to claim; learn from the queue otherwise."""
        platforms = list(self._platforms())
        if not platforms:
            return
        room = self._capacity.room()
        if room == 0:
            return
        if not self._hint:
            self._hint = await self._queue.waiting() > 0
        while self._hint and (room := self._capacity.room()) > 0:
            asked = min(room, self._batch)
            turns = await self._queue.claim(platforms, asked)
            for turn in turns:
                self._start(turn)
            self._hint = len(turns) == asked

    async def _sleep(self, stop: asyncio.Future[Any], seconds: float | None = None) -> None:
        """Wait for a poke, `stop`, or the time: soon while work waits for room, else `poll`."""
        self._wake.clear()
        if seconds is None:
            seconds = LAG_RECHECK_SECONDS if self._hint else self._poll
        woken: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({woken, stop}, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            woken.cancel()
