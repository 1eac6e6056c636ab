"""How many turns this process may start now: a count, and whether its event loop keeps up.

Acknowledging a platform's event shares the event loop with the turns being run. A turn waiting
for the model costs nothing, so the count alone (`MAX_CONCURRENT_TURNS`) can be high; turns that
compute (a zero-latency model, a burst of finishing streams) fill the loop's queue of ready
callbacks, and every acknowledgement then waits behind them. So new turns start only while the
loop runs its callbacks on time: past `lag_limit` of measured lateness, they wait in the queue.
"""

from __future__ import annotations

import asyncio

SAMPLE_SECONDS = 0.005  # how often the loop's lateness is measured
SMOOTHING = 0.3  # weight of the newest sample in the running lateness


class LoopLag:
    """The event loop's lateness: how long after their time callbacks run, smoothed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        """Start measuring on the running loop (idempotent)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._loop = None, None

    def _schedule(self) -> None:
        assert self._loop is not None
        self._due = self._loop.time() + SAMPLE_SECONDS
        self._handle = self._loop.call_at(self._due, self._sample)

    def _sample(self) -> None:
        assert self._loop is not None
        late = max(self._loop.time() - self._due, 0.0)
        self.seconds += SMOOTHING * (late - self.seconds)
        self._schedule()


class Capacity:
    """Turns running in this process, against `limit`, and the loop's lateness."""

    def __init__(self, limit: int, *, lag_limit: float = 0.004) -> None:
        self.limit = limit
        self.lag_limit = lag_limit
        self.running = 0
        self.lag = LoopLag()

    def room(self) -> int:
        """How many more turns may start now (0 while the loop is late)."""
        self.lag.start()
        if self.lag.seconds > self.lag_limit:
            return 0
        return max(self.limit - self.running, 0)

    def take(self) -> None:
        """A turn starts here."""
        self.running += 1

    def give(self) -> None:
        """A turn ended (or did not start after all)."""
        self.running -= 1
