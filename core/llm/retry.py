"""Retries of model calls with tenacity: which errors, how long to wait, when to give up."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx2
import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from core.llm.errors import StreamInterrupted, error_code

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
NEVER_RETRY_STATUSES = frozenset({400, 401, 403, 404, 422})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded attempts and total time; exponential backoff with full jitter."""

    attempts: int = 4
    max_seconds: float = 60.0
    initial_wait: float = 0.5
    max_wait: float = 20.0


def is_retryable(exc: BaseException) -> bool:
    """True for 429 (not insufficient_quota), 408/409/5xx, timeouts and connection errors."""
    if isinstance(exc, StreamInterrupted):
        return False
    if isinstance(exc, openai.APIStatusError):
        should = exc.response.headers.get("x-should-retry")
        if exc.status_code in NEVER_RETRY_STATUSES:
            return False
        if exc.status_code == 429 and error_code(exc) == "insufficient_quota":
            return False
        if should == "false":
            return False
        return should == "true" or exc.status_code in RETRY_STATUSES
    # Connection errors and timeouts, whether the SDK wrapped them or the stream raised them raw.
    return isinstance(exc, openai.APIConnectionError | httpx2.TransportError)


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms` or `retry-after`), if any."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(float(value) * scale, 0.0)
            except ValueError:
                continue
    return None


class _Waiter:
    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after(exc)
        if asked is not None:
            return min(asked, self._policy.max_wait)
        ceiling = min(
            self._policy.initial_wait * 2 ** (state.attempt_number - 1), self._policy.max_wait
        )
        return random.uniform(0, ceiling)


class _StopOnBudget(stop_base):
    """Stop when the next wait would cross the total time budget (`spent`: seconds used before
    the controller started)."""

    def __init__(self, policy: RetryPolicy, spent: float = 0.0) -> None:
        self._policy = policy
        self._spent = spent

    def __call__(self, state: RetryCallState) -> bool:
        elapsed = (state.seconds_since_start or 0.0) + self._spent
        upcoming = state.upcoming_sleep or 0.0
        return elapsed + upcoming > self._policy.max_seconds


def retrying(
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[RetryCallState], None] | None = None,
    spent: float = 0.0,
) -> AsyncRetrying:
    """A tenacity controller for one model call under `policy` (`spent`: seconds of the time
    budget already used)."""

    def before_sleep(state: RetryCallState) -> None:
        # Imported here: core.llm loads before a multi-process server has chosen where its
        # metrics live (see core.metrics).
        from core.metrics import MODEL_RETRIES

        MODEL_RETRIES.inc()
        if on_retry is not None:
            on_retry(state)

    return AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        wait=_Waiter(policy),
        stop=stop_after_attempt(policy.attempts) | _StopOnBudget(policy, spent),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


async def call_with_retries(
    policy: RetryPolicy,
    fn: Callable[[], Awaitable[T]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> T:
    """Await `fn()` under the policy, re-raising the last error when it gives up.

    The first attempt runs without tenacity (setting up its controller cost more than a
    moderation request's own work); only a retryable failure starts the controller, which takes
    that failure as its first attempt, so waits, attempts and the time budget are as if it had
    run them all.
    """
    started = time.monotonic()
    try:
        return await fn()
    except Exception as exc:
        if not is_retryable(exc) or policy.attempts <= 1:
            raise
        first: BaseException | None = exc
    spent = time.monotonic() - started

    async def attempt() -> T:  # a coroutine function, so tenacity awaits each attempt
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        return await fn()

    return await retrying(policy, sleep=sleep, on_retry=on_retry, spent=spent)(attempt)
