"""Micro-batching: calls made while earlier ones are in flight go out together as one request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Sends items in batches: the next request leaves when none is out, or when a full batch
    (`max_size` items) is waiting and fewer than `max_in_flight` requests are out.

    Under light load every item goes out at once, alone (no added wait). Under load, items
    queue while a request is out and leave together when it returns, so a busy server makes one
    request where it would have made dozens; per-request work is most of what such calls cost.
    Full batches do not wait, so a slow endpoint still gets `max_in_flight` requests at a time.
    `send` returns one result per item, in order; if it raises, every item of that batch gets
    the exception.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_size: int,
        max_in_flight: int,
    ) -> None:
        self._send = send
        self._max_size = max_size
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._scheduled = False
        self.batches = 0
        self.items = 0

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue `item`; the future resolves with its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled and self._may_send():
            self._scheduled = True
            loop.call_soon(self._flush)  # items submitted in this iteration join the batch
        return future

    def _may_send(self) -> bool:
        """Whether a request may leave now with what is pending."""
        if not self._pending:
            return False
        if not self._in_flight:
            return True
        return len(self._pending) >= self._max_size and len(self._in_flight) < self._max_in_flight

    def _flush(self) -> None:
        self._scheduled = False
        while self._may_send():
            batch, self._pending = (
                self._pending[: self._max_size],
                self._pending[self._max_size :],
            )
            task = asyncio.create_task(self._run(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not self._scheduled:
            self._flush()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            results = await self._send([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} items")
        except BaseException as exc:  # every caller hears about the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
