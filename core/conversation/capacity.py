"""How many turns this process may start now: a count, and whether its event loop keeps up.

Acknowledging a platform's event shares the event loop with the turns being run. A turn waiting
for the model costs nothing, so the count alone (`MAX_CONCURRENT_TURNS`) can be high; turns that
compute (a zero-latency model, a burst of finishing streams) fill the loop's queue of ready
callbacks, and every acknowledgement then waits behind them. So how many turns may run follows
the loop's measured lateness: past `lag_limit`, new turns wait in the queue until it is on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

SAMPLE_SECONDS = 0.005  # how often the loop's lateness is measured
SMOOTHING = 0.3  # weight of the newest sample in the running lateness
BACK_OFF = 0.7  # late: busy turns allowed fall to this share of those busy
START_BUSY = 16  # busy turns allowed at start


class LoopLag:
    """The event loop's lateness: how long after their time callbacks run, smoothed; each
    sample is also handed to `on_sample`."""

    def __init__(self, on_sample: Callable[[float], None] = lambda late: None) -> None:
        self.seconds = 0.0
        self._on_sample = on_sample
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
        self._on_sample(self.seconds)
        self._schedule()


class Capacity:
    """Turns in this process: all of them against `limit`, and the busy ones (not waiting for
    the model) against a number that follows the loop's lateness.

    Each time the loop is measured later than `lag_limit`, the number of busy turns allowed
    falls to a share of those busy now; while the loop is on time it grows by one per sample.
    A turn waiting for the model's first token is not busy (`waiting`), so a burst of turns
    against a slow model starts at once, up to `limit`, while turns that compute are let in only
    as fast as the loop keeps up.
    """

    def __init__(self, limit: int, *, lag_limit: float = 0.004) -> None:
        self.limit = limit
        self.lag_limit = lag_limit
        self.total = 0  # turns in this process
        self.busy = 0  # of which not waiting for the model
        self.allowed = float(min(limit, START_BUSY))
        self.lag = LoopLag(self._adapt)

    def _adapt(self, late: float) -> None:
        if late > self.lag_limit:
            self.allowed = max(min(self.allowed, self.busy * BACK_OFF), 1.0)
        elif late < self.lag_limit / 2:
            self.allowed = min(self.allowed + 1, float(self.limit))

    def room(self) -> int:
        """How many more turns may start now."""
        self.lag.start()
        return max(min(int(self.allowed) - self.busy, self.limit - self.total), 0)

    def take(self) -> None:
        """A turn starts here."""
        self.total += 1
        self.busy += 1

    def give(self) -> None:
        """A turn ended (or did not start after all)."""
        self.total -= 1
        self.busy -= 1

    def waiting(self, started: bool) -> None:
        """A turn starts (True) or stops (False) waiting for the model."""
        self.busy += -1 if started else 1
