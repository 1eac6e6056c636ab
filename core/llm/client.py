"""The model-client interface: one streaming call, retried until the first text arrives."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any, Protocol

import openai
import structlog
from tenacity import RetryCallState

from core.llm.errors import StreamInterrupted, classify
from core.llm.retry import RetryPolicy, call_with_retries
from core.llm.types import Completed, ModelRequest, StreamEvent, TextDelta

log = structlog.get_logger(__name__)


class Streamer(Protocol):
    """Anything that streams a model call like `ModelClient.stream` (clients and their wrappers)."""

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """`TextDelta`s, then one `Completed`."""
        ...


class ModelClient(ABC):
    """Streams one model call as `TextDelta`s then one `Completed`, whatever the wire API.

    Failures before the first event are retried under the policy; a break after text was shown
    raises `StreamInterrupted` (retrying would repeat text the user has already seen).
    """

    wire_api: str = ""

    def __init__(
        self,
        openai_client: openai.AsyncOpenAI,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.openai = openai_client
        self.policy = policy
        self._sleep = sleep

    async def _post_stream(self, path: str, body: dict[str, Any]) -> openai.AsyncStream[Any]:
        """POST a streaming call through the SDK and get its events as plain JSON objects.

        The SDK still does the wire work (auth, base URL, headers, timeouts, SSE, in-stream and
        HTTP errors as `openai` exceptions); skipping its typed request transform and per-event
        model building halves what a call costs the server's CPU. The body is built here, in wire
        shape, by the `request_body` of each wire module.
        """
        stream: openai.AsyncStream[Any] = await self.openai.post(
            path, body=body, cast_to=object, stream=True, stream_cls=openai.AsyncStream[object]
        )
        # Every later log line of this turn names OpenAI's request id (the turn is one task).
        request_id = stream.response.headers.get("x-request-id")
        if request_id:
            structlog.contextvars.bind_contextvars(openai_request_id=request_id)
        return stream

    @abstractmethod
    def _stream_once(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        """One attempt on the wire, translated into wire-neutral events (an async generator, so
        `stream` can close it and release the connection when it stops early)."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream a call, retrying transient failures until the first event arrives."""

        async def start() -> tuple[AsyncGenerator[StreamEvent, None], StreamEvent]:
            events = self._stream_once(request)
            try:
                return events, await anext(events)
            except BaseException:
                await events.aclose()
                raise

        waiting = MODEL_WAIT.get()
        if waiting is not None:
            waiting(True)
        try:
            events, first = await call_with_retries(
                self.policy, start, sleep=self._sleep, on_retry=_log_retry
            )
        finally:
            if waiting is not None:
                waiting(False)
        yield first
        shown = isinstance(first, TextDelta)
        try:
            async for event in events:
                shown = shown or isinstance(event, TextDelta)
                yield event
        except Exception as exc:
            if shown:
                raise StreamInterrupted(str(exc)) from exc
            raise
        finally:
            await events.aclose()

    async def complete(self, request: ModelRequest) -> Completed:
        """Run a call to the end and return its `Completed` event."""
        async for event in self.stream(request):
            if isinstance(event, Completed):
                return event
        raise StreamInterrupted("the model's stream ended without a completion")

    async def shutdown_date(self, model: str) -> date | None:
        """The model's announced shutdown date (`GET /v1/models/{id}`), if any."""
        info = await self.openai.models.retrieve(model)
        raw = getattr(info, "shutdown_date", None) or (info.model_extra or {}).get("shutdown_date")
        if not raw:
            return None
        if isinstance(raw, int | float):
            return datetime.fromtimestamp(raw, UTC).date()
        return date.fromisoformat(str(raw)[:10])


# Set for a turn's task by whoever runs it (the engine): told when a call starts waiting for the
# model's first event (True) and when it stops (False).
MODEL_WAIT: ContextVar[Callable[[bool], None] | None] = ContextVar("model_wait", default=None)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "model_call_retry",
        attempt=state.attempt_number,
        wait_s=round(state.upcoming_sleep or 0.0, 3),
        error=classify(exc).kind if exc else None,
        status=getattr(exc, "status_code", None),
    )
