"""The one turn path for every platform.

de-duplicate the delivery -> persist the user's message -> assemble the context -> stream the model
-> stream into the reply -> persist the answer and its usage. Turns of one conversation run one at
a time in arrival order; different conversations run concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from core.commands import COMMANDS, CommandResult, Handler, help_text
from core.config import TurnConfig, resolve_config
from core.events import ConversationKey, Event, Reply
from core.llm.client import ModelClient
from core.llm.errors import classify
from core.llm.pricing import PriceTable
from core.llm.tokens import TokenCounter
from core.llm.types import Completed, ModelRequest, TextDelta, Usage
from core.memory import Context, Memory
from core.serial import KeyedSerializer, Slot
from core.settings import Settings
from core.store import Accepted, Conversation, Store, StoreError, UsageRow
from core.summarizer import Summarizer

log = structlog.get_logger(__name__)

STORE_FAILURE_MESSAGE = (
    "I couldn't save your message because my database is unavailable. Please send it again in a "
    "moment."
)


@dataclass(frozen=True, slots=True)
class Submission:
    """What `Engine.submit` did with an event: a new turn, or nothing for a redelivery."""

    turn_id: int | None
    task: asyncio.Task[TurnOutcome] | None = None

    @property
    def duplicate(self) -> bool:
        return self.turn_id is None


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """How a turn ended."""

    turn_id: int
    status: str
    text: str
    usage: Usage = field(default_factory=Usage)


class Engine:
    """Answers events. Constructed once in the composition root; adapters get it injected."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        model: ModelClient,
        tokens: TokenCounter | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.model = model
        self.tokens = tokens or TokenCounter(settings.openai_model)
        self.prices = prices or PriceTable(settings.model_prices)
        self.memory = Memory(store, self.tokens)
        self.summarizer = Summarizer(
            settings=settings,
            store=store,
            model=model,
            tokens=self.tokens,
            on_usage=self._record_summary_usage,
        )
        self._serial = KeyedSerializer()
        self._tasks: set[asyncio.Task[TurnOutcome]] = set()
        self._unpriced_warned: set[str] = set()
        self.commands: dict[str, Handler] = dict(COMMANDS)

    # -- entry points ---------------------------------------------------------------------

    async def submit(self, event: Event, reply: Reply) -> Submission:
        """Persist the event and schedule its turn; returns once the message is stored.

        A redelivered event (same platform delivery id) stores nothing and returns a duplicate.
        Raises `StoreError` when the message could not be stored, so the adapter can refuse the
        delivery (the platform will redeliver) instead of losing it.
        """
        slot = self._serial.reserve(event.key)  # before any await: keeps arrival order
        try:
            accepted = await self.store.accept(
                event,
                text=event.text,
                tokens=self.tokens.count(event.text),
                delivery_ttl=self.settings.delivery_ttl_hours * 3600,
                attachments=[
                    {"name": a.name, "mime_type": a.mime_type, "size": a.size}
                    for a in event.attachments
                ],
            )
        except BaseException:
            slot.release()
            raise
        if accepted is None:
            slot.release()
            log.info("duplicate_delivery", platform=event.platform, delivery_id=event.delivery_id)
            return Submission(None)
        task = asyncio.create_task(self._run(slot, event, reply, accepted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Submission(accepted.turn_id, task)

    async def handle(self, event: Event, reply: Reply) -> TurnOutcome | None:
        """Submit an event and wait for its turn to end (None for a redelivery).

        When the message cannot be stored the user is told to send it again.
        """
        try:
            submission = await self.submit(event, reply)
        except StoreError as exc:
            log.error("message_not_stored", error=str(exc), conversation=str(event.key))
            with contextlib.suppress(Exception):
                await reply.notice(STORE_FAILURE_MESSAGE)
            return None
        if submission.task is None:
            return None
        return await submission.task

    async def command(self, event: Event, name: str, args: str = "") -> CommandResult:
        """Run one of the engine's commands (adapters map their slash commands here)."""
        handler = self.commands.get(name)
        if handler is None:
            return CommandResult(
                f"Unknown command /{name}. Commands:\n{help_text(self.commands)}", ok=False
            )
        with structlog.contextvars.bound_contextvars(conversation=str(event.key), command=name):
            try:
                return await handler(self, event, args)
            except StoreError as exc:
                log.error("command_failed", error=str(exc))
                return CommandResult("The database is unavailable; please try again.", ok=False)

    async def reset(self, key: ConversationKey) -> None:
        """Start a conversation over (a new epoch)."""
        await self.store.conversations.reset(key)

    async def drain(self) -> None:
        """Wait for every running turn and background summary to end."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.summarizer.drain()

    async def check_models(self) -> list[str]:
        """Warn about configured models that are shut down or will be within the warning window."""
        warnings = []
        models = {self.settings.openai_model, self.settings.openai_summary_model}
        today = datetime.now(UTC).date()
        for name in sorted(models):
            try:
                shutdown = await self.model.shutdown_date(name)
            except Exception as exc:  # a compatible server may not serve /models
                log.info("model_check_skipped", model=name, error=type(exc).__name__)
                continue
            if shutdown is None:
                continue
            days = (shutdown - today).days
            if days <= self.settings.model_shutdown_warning_days:
                state = "was shut down" if days < 0 else f"shuts down in {days} days"
                message = (
                    f"model {name} {state} (on {shutdown.isoformat()}); choose a current model "
                    "in OPENAI_MODEL / OPENAI_SUMMARY_MODEL"
                )
                log.warning("model_shutdown", model=name, shutdown_date=shutdown.isoformat())
                warnings.append(message)
        for message in warnings:
            log.warning("model_shutdown_notice", message=message)
        return warnings

    # -- the turn -------------------------------------------------------------------------

    async def _run(self, slot: Slot, event: Event, reply: Reply, accepted: Accepted) -> TurnOutcome:
        async with slot:
            with structlog.contextvars.bound_contextvars(
                conversation=str(event.key), turn_id=accepted.turn_id
            ):
                return await self._turn(event, reply, accepted)

    async def _turn(self, event: Event, reply: Reply, accepted: Accepted) -> TurnOutcome:
        started = time.perf_counter()
        try:
            await reply.begin()
            config = await resolve_config(self.settings, self.store, event.key)
            await self.store.turns.mark_running(accepted.turn_id, config.model)
            context = await self.memory.context(
                accepted.conversation,
                instructions=config.system_prompt,
                budget=config.budget,
                up_to_turn=accepted.turn_id,
            )
            request = ModelRequest(
                model=config.model,
                instructions=context.instructions,
                messages=context.messages,
                temperature=config.temperature,
                max_output_tokens=config.max_output_tokens,
                user=f"{event.platform}:{event.workspace}:{event.user.id}",
            )
            completed = await self._call(request, reply, event, accepted)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return await self._fail(exc, reply, accepted)
        await self.store.finish_turn(
            accepted.turn_id,
            accepted.conversation,
            steps=[("assistant", completed.text, (), "", completed.usage.completion_tokens)],
        )
        await _safely(reply.finish(completed.text), "finish")
        self._maybe_summarize(accepted, config, context, completed)
        log.info(
            "turn_done",
            model=completed.model,
            prompt_tokens=completed.usage.prompt_tokens,
            completion_tokens=completed.usage.completion_tokens,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return TurnOutcome(accepted.turn_id, "done", completed.text, completed.usage)

    async def _call(
        self, request: ModelRequest, reply: Reply, event: Event, accepted: Accepted
    ) -> Completed:
        """Stream one model call into the reply and record its usage."""
        async for item in self.model.stream(request):
            if isinstance(item, TextDelta):
                await _safely(reply.append(item.text), "append")
            else:
                await self._record_usage(item, event, accepted, purpose="chat")
                return item
        raise RuntimeError("the model stream ended without completing")

    async def _record_usage(
        self, completed: Completed, event: Event, accepted: Accepted, *, purpose: str
    ) -> None:
        await self._write_usage(
            completed,
            event.key,
            user_id=event.user.id,
            purpose=purpose,
            turn_id=accepted.turn_id,
            conversation_id=accepted.conversation.id,
        )

    async def _write_usage(
        self,
        completed: Completed,
        key: ConversationKey,
        *,
        user_id: str,
        purpose: str,
        turn_id: int | None,
        conversation_id: int | None,
    ) -> None:
        model = completed.model or self.settings.openai_model
        if self.prices.price(model) is None and model not in self._unpriced_warned:
            self._unpriced_warned.add(model)
            log.warning("model_unpriced", model=model, fix="add it to MODEL_PRICES")
        await self.store.usage.record(
            UsageRow(
                platform=key.platform.value,
                workspace=key.workspace,
                channel=key.channel,
                user_id=user_id,
                model=model,
                purpose=purpose,
                prompt_tokens=completed.usage.prompt_tokens,
                cached_tokens=completed.usage.cached_tokens,
                completion_tokens=completed.usage.completion_tokens,
                cost_usd=self.prices.cost(model, completed.usage),
                turn_id=turn_id,
                conversation_id=conversation_id,
            )
        )

    async def _fail(self, exc: Exception, reply: Reply, accepted: Accepted) -> TurnOutcome:
        failure = classify(exc)
        log.error("turn_failed", kind=failure.kind, error=failure.operator_message)
        await _safely(reply.finish(failure.user_message), "finish")
        try:
            await self.store.turns.mark_failed(accepted.turn_id, f"{failure.kind}: {exc}")
        except StoreError as store_exc:
            log.error("turn_status_not_stored", error=str(store_exc))
        return TurnOutcome(accepted.turn_id, "failed", failure.user_message)

    def _maybe_summarize(
        self, accepted: Accepted, config: TurnConfig, context: Context, done: Completed
    ) -> None:
        """Start a background summary when the unsummarized history passed the threshold."""
        if not config.summary:
            return
        unsummarized = context.window_tokens + done.usage.completion_tokens
        if self.summarizer.due(context.summary, unsummarized, config.budget, context.overflowed):
            self.summarizer.schedule(accepted.conversation, config.budget, accepted.turn_id)

    async def _record_summary_usage(self, completed: Completed, conversation: Conversation) -> None:
        key = ConversationKey.parse(conversation.key)
        await self._write_usage(
            completed,
            key,
            user_id="",
            purpose="summary",
            turn_id=None,
            conversation_id=conversation.id,
        )


async def _safely(awaitable: object, step: str) -> None:
    """Run a reply call; a platform error is logged, never allowed to end the turn."""
    try:
        await awaitable  # type: ignore[misc]
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.error("reply_failed", step=step, error=f"{type(exc).__name__}: {exc}")
