"""Per-key ordering: work for one key runs one at a time in the order it was reserved."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from types import TracebackType


class Slot:
    """A place in one key's line. Reserve it synchronously on arrival; `async with` it to run."""

    __slots__ = ("_done", "_key", "_owner", "_previous")

    def __init__(
        self, owner: KeyedSerializer, key: Hashable, previous: asyncio.Future[None] | None
    ) -> None:
        self._owner = owner
        self._key = key
        self._previous = previous
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def __aenter__(self) -> Slot:
        if self._previous is not None:
            await asyncio.shield(self._previous)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Let the next slot run (idempotent)."""
        if not self._done.done():
            self._done.set_result(None)
        self._owner._forget(self._key, self._done)


class KeyedSerializer:
    """A chain of futures per key: no task or lock is kept for idle keys."""

    def __init__(self) -> None:
        self._tails: dict[Hashable, asyncio.Future[None]] = {}

    def reserve(self, key: Hashable) -> Slot:
        """Take the next place in `key`'s line (call before any await to keep arrival order)."""
        slot = Slot(self, key, self._tails.get(key))
        self._tails[key] = slot._done
        return slot

    def _forget(self, key: Hashable, done: asyncio.Future[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    def __len__(self) -> int:
        return len(self._tails)
