"""Stopping a streaming reply: the model call is cancelled, what was shown is kept."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from core.events import OutboundFile, Reply
from core.store import Store

T = TypeVar("T")


class Stopped(Exception):
    """The reply was stopped by a person."""


class Shown:
    """A Reply wrapper that remembers the text that actually reached the platform."""

    def __init__(self, reply: Reply) -> None:
        self._reply = reply
        self.text = ""

    async def begin(self) -> None:
        await self._reply.begin()

    async def append(self, delta: str) -> None:
        await self._reply.append(delta)
        self.text += delta

    async def finish(self, text: str) -> None:
        await self._reply.finish(text)

    async def notice(self, text: str) -> None:
        await self._reply.notice(text)

    async def upload(self, file: OutboundFile) -> None:
        await self._reply.upload(file)


class StopSwitch:
    """Runs turns' model work so that a Stop can cancel it, from this process or another.

    A Stop in this process cancels at once. A Stop handled by another process sets the turn's
    `stopped` flag in the database, which the running process looks at every `poll` seconds.
    """

    def __init__(self, store: Store, *, poll: float = 0.5) -> None:
        self._store = store
        self._poll = poll
        self._running: dict[int, asyncio.Task[Any]] = {}
        self._stopping: set[int] = set()

    def running_here(self, turn_id: int) -> bool:
        """Whether this process streams the turn now."""
        return turn_id in self._running

    async def run(self, turn_id: int, work: Awaitable[T], *, watch: bool) -> T:
        """Await `work` in this task; raises `Stopped` when the turn is stopped meanwhile.

        The work runs in the caller's task (its context variables, such as the request id
        bound for the turn's logs, stay visible): a Stop cancels that task, and the
        cancellation is taken back here and turned into `Stopped`.
        """
        task = asyncio.current_task()
        assert task is not None
        self._running[turn_id] = task
        watcher = asyncio.create_task(self._watch(turn_id)) if watch else None
        try:
            return await work
        except asyncio.CancelledError:
            if turn_id in self._stopping and task.cancelling() == 1:
                task.uncancel()
                raise Stopped from None
            raise  # a shutdown (or a stop and a shutdown at once): the turn is cancelled
        finally:
            self._running.pop(turn_id, None)
            self._stopping.discard(turn_id)
            if watcher is not None:
                watcher.cancel()

    def stop(self, turn_id: int) -> bool:
        """Stop a turn this process streams; False when it streams no such turn."""
        task = self._running.get(turn_id)
        if task is None or turn_id in self._stopping:
            return task is not None
        self._stopping.add(turn_id)
        task.cancel()
        return True

    async def _watch(self, turn_id: int) -> None:
        while True:
            await asyncio.sleep(self._poll)
            with contextlib.suppress(Exception):  # a failed poll is tried again
                if await self._store.interactive.stop_requested(turn_id):
                    self.stop(turn_id)
                    return
