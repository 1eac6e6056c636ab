"""The one turn path for every platform.

de-duplicate the delivery -> persist the user's message -> assemble the context -> stream the model
-> stream into the reply -> persist the answer and its usage. Turns of one conversation run one at
a time in arrival order; different conversations run concurrently.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import openai
import structlog

from core import metrics
from core.commands import COMMANDS, CommandResult, Handler, help_text, is_admin
from core.conversation.media import Media
from core.conversation.memory import Context, Memory
from core.conversation.overrides import TurnConfig, resolve_config
from core.conversation.recovery import Recovery
from core.conversation.remote import RECREATED_NOTICE, RemoteThreads
from core.conversation.serial import KeyedSerializer, Slot
from core.conversation.summarizer import Summarizer
from core.events import ConversationKey, Event, OutboundFile, Reply
from core.governance.budgets import Budgets, Refusal
from core.governance.moderation import (
    INPUT_BLOCKED,
    OUTPUT_BLOCKED,
    UNAVAILABLE,
    ModerationUnavailable,
    Moderator,
)
from core.governance.turn_redaction import TurnRedactor
from core.llm.client import ModelClient, Streamer
from core.llm.errors import classify
from core.llm.pricing import PriceTable
from core.llm.tokens import TokenCounter
from core.llm.types import (
    Completed,
    ImagePart,
    Message,
    ModelRequest,
    TextDelta,
    ToolCall,
    Usage,
)
from core.plugin import PluginServices, ToolContext
from core.render.replies import ModeratedReply, SafeReply
from core.settings import Settings
from core.store import Accepted, Conversation, Store, StoreError, UsageRow
from core.tools import ToolRegistry
from core.tools.loop import Answer, Step, ToolLoop, enabled_tools

log = structlog.get_logger(__name__)

LOW_CONFIDENCE = "_(Low confidence: please double-check this answer.)_"
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
        moderator: Moderator,
        threads: RemoteThreads,
        media: Media,
        tools: ToolLoop | None = None,
        plugin_extras: dict[str, object] | None = None,
        responses_model: ModelClient | None = None,
        budgets: Budgets | None = None,
        tokens: TokenCounter | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.model = model
        self.moderator = moderator
        self.threads = threads
        self.media = media
        self.tools = tools
        self.plugin_extras = plugin_extras or {}
        self.responses_model = responses_model or model
        self.budgets = budgets or Budgets(settings, store)
        self.tokens = tokens or TokenCounter(settings.models.chat)
        self.prices = prices or PriceTable(settings.models.prices)
        self.memory = Memory(store, self.tokens)
        self.summarizer = Summarizer(
            settings=settings,
            store=store,
            model=model,
            tokens=self.tokens,
            on_usage=self._record_summary_usage,
        )
        self.recovery = Recovery(
            store, self.tokens, stale_after=settings.store.recovery_stale_seconds
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
                delivery_ttl=self.settings.store.delivery_ttl_hours * 3600,
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
            metrics.DUPLICATES.labels(event.platform.value).inc()
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
        models = {self.settings.models.chat, self.settings.models.summary}
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
            if days <= self.settings.models.shutdown_warning_days:
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
            if accepted.behind_others:  # an earlier turn of this conversation runs elsewhere
                await self.store.turns.wait_for_earlier(
                    accepted.conversation.id, accepted.turn_id, self.store.processes.owner
                )
            with structlog.contextvars.bound_contextvars(
                conversation=str(event.key), turn_id=accepted.turn_id
            ):
                started = time.perf_counter()
                outcome = await self._turn(event, reply, accepted)
                platform = event.platform.value
                metrics.TURNS.labels(platform, outcome.status).inc()
                metrics.TURN_SECONDS.labels(platform).observe(time.perf_counter() - started)
                return outcome

    async def _turn(self, event: Event, raw_reply: Reply, accepted: Accepted) -> TurnOutcome:
        started = time.perf_counter()
        reply = SafeReply(raw_reply)
        await reply.begin()
        redactor: TurnRedactor | None = None
        try:
            config = await resolve_config(self.settings, self.store, event.key)
            event = await self._prepare_media(event, reply, accepted)
            if self.settings.redaction.enabled:
                redactor = TurnRedactor(await self.store.redactions.get(accepted.conversation))
                event = await self._redact_input(event, accepted, redactor)
            refusal = await self.budgets.check_rate(event, accepted.turn_id)
            if refusal is not None:
                return await self._refuse(reply, accepted, refusal.reason, refusal.message)
            # Input moderation runs while the context is read; nothing is sent to the model
            # before its verdict.
            verdict = asyncio.ensure_future(self._moderate_input(event))
            try:
                model = self._route(config, event)
                await self.store.turns.mark_running(accepted.turn_id, model)
                context = await self.memory.context(
                    accepted.conversation,
                    instructions=config.system_prompt,
                    budget=config.budget,
                    up_to_turn=accepted.turn_id,
                )
                spend = None
                if not self._exempt(event):
                    estimate = self._estimate(model, context.tokens, config.max_output_tokens)
                    spend = await self.budgets.reserve_spend(
                        event, accepted.turn_id, model, estimate
                    )
            except BaseException:
                verdict.cancel()
                raise
            refusal = await verdict or spend
            if refusal is not None:
                return await self._refuse(reply, accepted, refusal.reason, refusal.message)
            request = ModelRequest(
                model=model,
                instructions=context.instructions,
                messages=_with_images(context.messages, event),
                temperature=config.temperature,
                max_output_tokens=config.max_output_tokens,
                logprobs=self.settings.models.low_confidence_logprob is not None,
                user=f"{event.platform}:{event.workspace}:{event.user.id}",
            )
            shown = redactor.reply(reply) if redactor else reply
            guard = self._guard(shown, event)
            answer = await self._answer(request, guard or shown, event, accepted, config, redactor)
            completed = answer.last
            text, note, steps = answer.text, "", answer.steps
            if guard is not None and not await guard.check_final(text):
                text, note = OUTPUT_BLOCKED, "output_blocked"
                steps = [*steps[:-1], ("assistant", text, (), "", 0)]
            text = self._mark_confidence(text, completed)
            if redactor is not None:
                text, steps = redactor.restore(text), self._steps_to_store(steps, redactor)
                if redactor.changed:
                    await self.store.redactions.put(accepted.conversation, redactor.placeholders)
        except asyncio.CancelledError:
            raise
        except ModerationUnavailable:
            return await self._refuse(reply, accepted, "moderation_unavailable", UNAVAILABLE)
        except Exception as exc:
            return await self._fail(exc, reply, accepted)
        await self.store.finish_turn(
            accepted.turn_id, accepted.conversation, steps=steps, error=note
        )
        await reply.finish(text)
        self._maybe_summarize(accepted, config, context, completed)
        log.info(
            "turn_done",
            model=completed.model,
            prompt_tokens=completed.usage.prompt_tokens,
            completion_tokens=completed.usage.completion_tokens,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return TurnOutcome(accepted.turn_id, "done", text, answer.usage)

    async def _prepare_media(self, event: Event, reply: Reply, accepted: Accepted) -> Event:
        """Download attachments, transcribe clips (the transcript becomes the message text)."""
        if not event.attachments:
            return event
        prepared = await self.media.prepare(event)
        for notice in prepared.notices:
            await reply.notice(notice)
        if prepared.transcript:
            await reply.notice(f"Transcript: {prepared.transcript}")
            text = prepared.event.text
            await self.store.messages.update_text(
                accepted.message_id, text, self.tokens.count(text)
            )
        return prepared.event

    async def _redact_input(
        self, event: Event, accepted: Accepted, redactor: TurnRedactor
    ) -> Event:
        """The user's text as it may leave for moderation and the model; stored as configured."""
        redacted = redactor.text(event.text)
        if redacted == event.text:
            return event
        if self.settings.redaction.store == "redacted":
            await self.store.messages.update_text(
                accepted.message_id, redacted, self.tokens.count(redacted)
            )
        return replace(event, text=redacted)

    def _steps_to_store(self, steps: list[Step], redactor: TurnRedactor) -> list[Step]:
        """The turn's messages as REDACT_STORE says: with the original values or placeholders."""
        convert = redactor.text if self.settings.redaction.store == "redacted" else redactor.restore
        return [
            (
                role,
                convert(content),
                tuple(ToolCall(c.id, c.name, convert(c.arguments)) for c in calls),
                call_id,
                tokens,
            )
            for role, content, calls, call_id, tokens in steps
        ]

    async def _moderate_input(self, event: Event) -> Refusal | None:
        images = [a for a in event.attachments if a.kind == "image" and a.data is not None]
        verdict = await self.moderator.check(
            event.text, key=event.key, user_id=event.user.id, direction="input", images=images
        )
        if not verdict.blocked:
            return None
        categories = ", ".join(verdict.categories)
        return Refusal("input_blocked", INPUT_BLOCKED.format(categories=categories), 0.0)

    def _guard(self, reply: Reply, event: Event) -> ModeratedReply | None:
        if not self.moderator.enabled:
            return None
        return ModeratedReply(
            reply,
            self.moderator,
            key=event.key,
            user_id=event.user.id,
            every=self.settings.moderation.output_chars,
        )

    def _route(self, config: TurnConfig, event: Event) -> str:
        """The cheap model unless a routing rule picks the strong one for this turn."""
        s = self.settings
        long_message = (
            s.models.routing_strong_min_chars is not None
            and len(event.text) >= s.models.routing_strong_min_chars
        )
        has_images = s.models.routing_strong_for_images and any(
            a.kind == "image" for a in event.attachments
        )
        return s.models.strong if long_message or has_images else config.model

    def _estimate(self, model: str, prompt_tokens: int, max_output_tokens: int) -> float:
        """The most this call can cost: the prompt plus a full-length answer."""
        return self.prices.cost(model, Usage(prompt_tokens, 0, max_output_tokens))

    def _exempt(self, event: Event) -> bool:
        return self.settings.budgets.admins_exempt and is_admin(self, event)

    def _mark_confidence(self, text: str, completed: Completed) -> str:
        threshold = self.settings.models.low_confidence_logprob
        if threshold is None or completed.mean_logprob is None:
            return text
        if completed.mean_logprob < threshold:
            return f"{text}\n\n{LOW_CONFIDENCE}"
        return text

    async def _refuse(
        self, reply: Reply, accepted: Accepted, reason: str, message: str
    ) -> TurnOutcome:
        """End a turn without calling the model (limits, moderation): the user is told why."""
        log.info("turn_refused", reason=reason)
        await reply.finish(message)
        await self.store.turns.mark_failed(accepted.turn_id, reason)
        return TurnOutcome(accepted.turn_id, "refused", message)

    async def _call(
        self,
        request: ModelRequest,
        reply: Reply,
        event: Event,
        accepted: Accepted,
        *,
        model: Streamer | None = None,
    ) -> Completed:
        """Stream one model call into the reply and record its usage."""
        async for item in (model or self.model).stream(request):
            if isinstance(item, TextDelta):
                await reply.append(item.text)
            else:
                await self._record_usage(item, event, accepted, purpose="chat")
                return item
        raise RuntimeError("the model stream ended without completing")

    async def _answer(
        self,
        request: ModelRequest,
        reply: Reply,
        event: Event,
        accepted: Accepted,
        config: TurnConfig,
        redactor: TurnRedactor | None = None,
    ) -> Answer:
        """The model's answer, through the tool loop, on the conversation's backend.

        On the server-side backend the OpenAI conversation holds the history, so each call sends
        only what is new (this turn's message, then tool results), with our instructions and tools.
        """
        tools = enabled_tools(self.tools.registry, config.tool_switches) if self.tools else []
        loop = self.tools or ToolLoop(ToolRegistry(), self.tokens, max_steps=0, timeout=1)
        ctx = self.tool_context(event, reply.upload)
        chat_model: Streamer = redactor.model(self.model) if redactor else self.model
        if config.backend != "openai":
            return await loop.run(
                request,
                call=lambda r: self._call(r, reply, event, accepted, model=chat_model),
                proceed=lambda r, new: replace(r, messages=r.messages + new),
                tools=tools,
                ctx=ctx,
                reply=reply,
            )
        conversation = accepted.conversation
        seed = request.messages[:-1]
        remote_id = await self.threads.ensure(
            conversation, event.key, seed=redactor.messages(seed) if redactor else seed
        )
        remote_model: Streamer = (
            redactor.model(self.responses_model) if redactor else self.responses_model
        )
        remote = replace(
            request,
            messages=request.messages[-1:],
            conversation=remote_id,
            builtin_tools=self._builtin_tools(),
        )

        async def call(r: ModelRequest) -> Completed:
            return await self._call(r, reply, event, accepted, model=remote_model)

        def proceed(r: ModelRequest, new: tuple[Message, ...]) -> ModelRequest:
            return replace(r, messages=tuple(m for m in new if m.role == "tool"))

        try:
            return await loop.run(
                remote, call=call, proceed=proceed, tools=tools, ctx=ctx, reply=reply
            )
        except openai.NotFoundError:
            remote_id = await self.threads.replace(conversation, event.key, remote_id)
            await reply.notice(RECREATED_NOTICE)
            remote = replace(remote, conversation=remote_id)
            return await loop.run(
                remote, call=call, proceed=proceed, tools=tools, ctx=ctx, reply=reply
            )

    def tool_context(
        self, event: Event, send_file: Callable[[OutboundFile], Awaitable[None]]
    ) -> ToolContext:
        """What a tool learns about its caller, and the services it may use."""
        return ToolContext(
            user_id=event.user.id,
            user_name=event.user.name,
            is_admin=is_admin(self, event),
            platform=event.platform.value,
            workspace=event.workspace,
            channel=event.channel,
            thread=event.thread,
            services=PluginServices(send_file=send_file, extras=self.plugin_extras),
        )

    def _builtin_tools(self) -> tuple[dict[str, object], ...]:
        tools: list[dict[str, object]] = []
        if self.settings.openai.vector_store_ids:
            tools.append(
                {
                    "type": "file_search",
                    "vector_store_ids": list(self.settings.openai.vector_store_ids),
                }
            )
        if self.settings.openai.code_interpreter:
            tools.append({"type": "code_interpreter", "container": {"type": "auto"}})
        return tuple(tools)

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
        model = completed.model or self.settings.models.chat
        if self.prices.price(model) is None and model not in self._unpriced_warned:
            self._unpriced_warned.add(model)
            log.warning("model_unpriced", model=model, fix="add it to MODEL_PRICES")
        usage = completed.usage
        metrics.TOKENS.labels(model, "prompt").inc(usage.prompt_tokens)
        metrics.TOKENS.labels(model, "cached").inc(usage.cached_tokens)
        metrics.TOKENS.labels(model, "completion").inc(usage.completion_tokens)
        metrics.COST.labels(model).inc(self.prices.cost(model, usage))
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
        metrics.MODEL_ERRORS.labels(failure.kind).inc()
        log.error("turn_failed", kind=failure.kind, error=failure.operator_message)
        await reply.finish(failure.user_message)
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


def _with_images(messages: tuple[Message, ...], event: Event) -> tuple[Message, ...]:
    """Attach this turn's images to its user message (the last one) as vision input."""
    images = tuple(
        ImagePart(f"data:{a.mime_type};base64,{base64.b64encode(a.data).decode()}")
        for a in event.attachments
        if a.kind == "image" and a.data is not None
    )
    if not images or not messages or messages[-1].role != "user":
        return messages
    last = messages[-1]
    return (*messages[:-1], Message(role="user", text=last.text, images=images))
