"""The one turn path for every platform.

de-duplicate the delivery -> persist the user's message -> assemble the context -> stream the model
-> stream into the reply -> persist the answer and its usage. Turns of one conversation run one at
a time in arrival order; different conversations run concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from core import metrics
from core.commands import CommandResult, Commands, split_command
from core.context.backfill import ThreadBackfill
from core.context.ports import Ports
from core.conversation.backends import ConversationBackends, TurnInProgress
from core.conversation.capacity import Capacity
from core.conversation.endings import TurnEndings, TurnOutcome
from core.conversation.files import fit, with_files
from core.conversation.inputs import TurnInputs
from core.conversation.media import Media, with_images
from core.conversation.memory import Context, Memory
from core.conversation.overrides import TurnConfig, choose_model, resolve_config
from core.conversation.recovery import Recovery
from core.conversation.runner import TurnRunner
from core.conversation.serial import KeyedSerializer, Slot
from core.conversation.summarizer import Summarizer
from core.events import ConversationKey, Event, PlatformPort, Reply, address_of
from core.governance.budgets import Budgets
from core.governance.moderation import (
    OUTPUT_BLOCKED,
    UNAVAILABLE,
    ModerationUnavailable,
    Moderator,
)
from core.governance.turn_redaction import TurnRedactor
from core.governance.usage import UsageAccounting
from core.interactive.approvals import ApprovalGate, ApprovalScope
from core.interactive.clicks import Interactions
from core.interactive.controls import Controls
from core.interactive.stopping import Shown, Stopped, StopSwitch
from core.llm.client import MODEL_WAIT, ModelClient
from core.llm.model_check import check_models
from core.llm.tokens import TokenCounter
from core.llm.types import Completed, Message, ModelRequest
from core.render.replies import SafeReply, mark_confidence
from core.settings import Settings
from core.store import Accepted, Conversation, Step, Store, StoreError
from core.store.queue import QueuedTurn

log = structlog.get_logger(__name__)

STORE_FAILURE_MESSAGE = (
    "I couldn't save your message because my database is unavailable. Please send it again in a "
    "moment."
)
CLAIMS_REMEMBERED = 50_000  # queued turns this process remembers having taken
EMPTY_MESSAGE_HINT = "Mention me with a question, for example: @bot what's our holiday policy?"


@dataclass(frozen=True, slots=True)
class Submission:
    """What `Engine.submit` did with an event: a new turn (running here, or `queued` in the
    database for any process to run, behind `waiting` others), or nothing for a redelivery."""

    turn_id: int | None
    task: asyncio.Task[TurnOutcome] | None = None
    queued: bool = False
    waiting: int = 0

    @property
    def duplicate(self) -> bool:
        return self.turn_id is None


@dataclass(frozen=True, slots=True)
class Received:
    """What `Engine.receive` made of a message: a turn, a command's result, or nothing."""

    submission: Submission | None = None
    command: CommandResult | None = None

    @property
    def ignored(self) -> bool:
        return self.submission is None and self.command is None


class Engine:
    """Answers events. Constructed once in the composition root; adapters get it injected."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        model: ModelClient,
        moderator: Moderator,
        media: Media,
        memory: Memory,
        tokens: TokenCounter,
        commands: Commands,
        backends: ConversationBackends,
        usage: UsageAccounting,
        budgets: Budgets | None = None,
        gate: ApprovalGate | None = None,
        ports: Ports | None = None,
        backfill: ThreadBackfill | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.model = model
        self.moderator = moderator
        self.media = media
        self.memory = memory
        self.tokens = tokens
        self.commands = commands
        self.backends = backends
        self.usage = usage
        self.budgets = budgets or Budgets(settings, store)
        self.summarizer = Summarizer(
            settings=settings,
            store=store,
            model=model,
            tokens=tokens,
            on_usage=self._record_summary_usage,
        )
        self.capacity = Capacity(settings.turns.max_concurrent)
        self.runs_turns = True  # False in a process that only stores events (TURN_RUNNERS)
        self.runner = TurnRunner(store.queue, self.capacity, self._start_stored, self._claims)
        self.recovery = Recovery(
            store,
            tokens,
            stale_after=settings.store.recovery_stale_seconds,
            on_requeued=self.runner.poke,
        )
        self.gate = gate  # tool calls waiting for a person's approval
        self.stops = StopSwitch(store)
        self.interactions = Interactions(self)  # clicks on reply controls and approvals
        self.ports = ports or Ports()  # shared with the tool contexts (history tools)
        self.inputs = TurnInputs(settings, store, tokens, media, moderator, self.ports)
        self.endings = TurnEndings(store, tokens)
        self.backfill = backfill or ThreadBackfill(self.ports, tokens)
        self._serial = KeyedSerializer()
        self._tasks: set[asyncio.Task[TurnOutcome]] = set()
        self._writes: set[asyncio.Task[None]] = set()  # bookkeeping written beside the turns
        self._claimed: dict[int, None] = {}  # turns this process took from the queue, newest last
        self._interrupting = False  # the shutdown deadline passed: cancelled turns are closed

    # -- entry points ---------------------------------------------------------------------

    async def attach(self, port: PlatformPort, *, recovers: bool = True) -> int:
        """Register a platform's port; with `recovers`, this process closes the platform's
        orphaned turns from now on (returns how many it closed now)."""
        self.ports.add(port)
        return await self.recovery.watch(port) if recovers else 0

    async def receive(self, event: Event, reply: Reply) -> Received:
        """Decide what an incoming message is, and act on it.

        An in-message command (`/reset`) is run and its result returned for the adapter to
        render; a message not addressed to the bot continues a conversation only where one
        exists; anything else becomes a turn. Raises `StoreError` as `submit` does.
        """
        command = split_command(event.text)
        if command is not None and command[0] in self.commands:
            return Received(command=await self.commands.run(event, *command))
        if not event.addressed and await self.store.conversations.get(event.key) is None:
            return Received()
        if not event.text and not event.attachments:
            await SafeReply(reply).notice(EMPTY_MESSAGE_HINT)
            return Received()
        return Received(submission=await self.submit(event, reply))

    async def submit(self, event: Event, reply: Reply) -> Submission:
        """Persist the event and schedule its turn; returns once the message is stored.

        The turn starts here when this process runs turns and has room for it (see
        `Capacity`); otherwise, when the reply can be rebuilt elsewhere (`Addressable`), it waits
        in the database's queue for any process to claim (`Submission.queued`). A redelivered
        event (same platform delivery id) stores nothing and returns a duplicate. Raises
        `StoreError` when the message could not be stored (`QueueFull` when the queue is at
        `TURN_QUEUE_LIMIT`), so the adapter can refuse the delivery (the platform will
        redeliver) instead of losing it.
        """
        slot = self._serial.reserve(event.key)  # before any await: keeps arrival order
        address = address_of(reply)
        # Without a runner claiming here (a test, the console), a turn that may run here does.
        here = address is None or (
            self.runs_turns and (not self.runner.active or self.capacity.room() > 0)
        )
        if here:
            self.capacity.take()
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
                reply_to=None if address is None else json.dumps(address),
                run_here=here,
                queue_limit=self.settings.turns.queue_limit,
            )
        except BaseException:
            slot.release()
            if here:
                self.capacity.give()
            raise
        if accepted is None or accepted.queued:
            slot.release()
            if here:
                self.capacity.give()
        if accepted is None:
            metrics.DUPLICATES.labels(event.platform.value).inc()
            log.info("duplicate_delivery", platform=event.platform, delivery_id=event.delivery_id)
            return Submission(None)
        if accepted.queued:
            metrics.QUEUED.labels(event.platform.value).inc()
            log.info("turn_queued", turn_id=accepted.turn_id, waiting=accepted.waiting)
            if self.runs_turns:
                self.runner.poke()
            return Submission(accepted.turn_id, queued=True, waiting=accepted.waiting)
        self._watch_shown(reply, accepted.turn_id)
        task = asyncio.create_task(self._run(slot, event, reply, accepted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Submission(accepted.turn_id, task)

    def _claims(self) -> list[str]:
        """The platforms whose queued turns this process claims."""
        return self.ports.names() if self.runs_turns else []

    def _start_stored(self, turn: QueuedTurn) -> None:
        """Run a turn claimed from the queue: its event and reply rebuilt from what was stored."""
        try:
            event = Event.from_json(turn.event)
            port = self.ports.get(event.platform)
            if port is None:
                raise LookupError(f"no {event.platform} adapter in this process")
            reply = port.reply_to(event.key, json.loads(turn.reply_to), replacing=turn.reply_ref)
        except Exception as exc:  # a row no process can run: close it rather than loop on it
            log.error("queued_turn_unreadable", turn_id=turn.turn_id, error=f"{exc!r:.300}")
            self._write(self.store.turns.mark_failed(turn.turn_id, f"unreadable: {exc!r:.200}"))
            return
        if not turn.reply_ref:
            self._watch_shown(reply, turn.turn_id)
        accepted = Accepted(turn.conversation, turn.message_id, turn.turn_id)
        self._claimed[turn.turn_id] = None
        if len(self._claimed) > CLAIMS_REMEMBERED:
            del self._claimed[next(iter(self._claimed))]
        if turn.runs > 1:
            log.info("turn_rerun", turn_id=turn.turn_id, runs=turn.runs, replacing=turn.reply_ref)
        self.capacity.take()
        slot = self._serial.reserve(event.key)
        task = asyncio.create_task(self._run(slot, event, reply, accepted, attempt=turn.attempt))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def claimed_here(self, turn_id: int) -> bool:
        """Whether this process took the turn from the queue (recently): it is no longer
        waiting, without a look at the database."""
        return turn_id in self._claimed

    def _watch_shown(self, reply: Reply, turn_id: int) -> None:
        """Record the first message an addressable reply shows (a re-run replaces it)."""
        watch = getattr(reply, "on_shown", None)
        if callable(watch):
            watch(lambda ref: self._write(self.store.queue.shown(turn_id, ref)))

    def _write(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a bookkeeping write beside the turn (logged if it fails)."""

        async def guarded() -> None:
            try:
                await work
            except StoreError as exc:
                log.error("turn_bookkeeping_failed", error=str(exc))

        task = asyncio.create_task(guarded())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

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
        if submission.task is None:  # a redelivery, or queued (answered by whoever runs it)
            return None
        return await submission.task

    def rerun(
        self,
        event: Event,
        reply: Reply,
        accepted: Accepted,
        *,
        attempt: int,
        prelude: tuple[Step, ...] = (),
    ) -> asyncio.Task[TurnOutcome]:
        """Run a stored turn again (a new attempt, or a resume after an approval), in order
        with the conversation's other turns; `prelude` are steps already taken (a tool call and
        its result) that the model continues from."""
        self.capacity.take()
        slot = self._serial.reserve(event.key)
        task = asyncio.create_task(
            self._run(slot, event, reply, accepted, attempt=attempt, prelude=prelude)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def port(self, platform: str) -> PlatformPort | None:
        """The port a platform's adapter registered, if any."""
        return self.ports.get(platform)

    async def command(self, event: Event, name: str, args: str = "") -> CommandResult:
        """Run one of the engine's commands (adapters map their slash commands here)."""
        return await self.commands.run(event, name, args)

    async def reset(self, key: ConversationKey) -> None:
        """Start a conversation over (a new epoch)."""
        await self.store.conversations.reset(key)

    async def drain(self, timeout: float | None = None) -> int:
        """Wait for every running turn and background summary to end.

        Past `timeout` seconds the turns still open are cancelled and closed by this process, once
        each, with the interrupted notice; returns how many were.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if self._tasks:
            log.info("draining", turns=len(self._tasks), deadline_s=timeout)
        try:
            while self._tasks:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                await asyncio.wait(list(self._tasks), timeout=remaining)
        except asyncio.CancelledError:  # a stop now (a second signal): the turns are abandoned,
            for task in list(self._tasks):  # as by a crash, for another process to close
                task.cancel()
            raise
        interrupted = 0
        if self._tasks:
            self._interrupting = True
            for task in list(self._tasks):
                task.cancel()
            outcomes = await asyncio.gather(*list(self._tasks), return_exceptions=True)
            interrupted = sum(
                isinstance(o, TurnOutcome) and o.status == "interrupted" for o in outcomes
            )
            log.warning("drain_deadline_passed", interrupted=interrupted)
        await self.summarizer.drain()
        return interrupted

    async def check_models(self) -> list[str]:
        """Warn about configured models that are shut down or will be within the warning window."""
        models = self.settings.models
        return await check_models(
            self.model, (models.chat, models.summary), warning_days=models.shutdown_warning_days
        )

    # -- the turn -------------------------------------------------------------------------

    async def _run(
        self,
        slot: Slot,
        event: Event,
        reply: Reply,
        accepted: Accepted,
        *,
        attempt: int = 1,
        prelude: tuple[Step, ...] = (),
    ) -> TurnOutcome:
        MODEL_WAIT.set(self.capacity.waiting)  # this task's own context: this turn only
        try:
            async with slot:
                # This process claimed an earlier turn of the conversation after this one took
                # its place in line: that one goes first, this one waits in the queue.
                if (
                    accepted.after_own
                    and address_of(reply) is not None
                    and await self.store.turns.earlier_open(
                        accepted.conversation.id, accepted.turn_id
                    )
                ):
                    await self.store.queue.give_back(accepted.turn_id)
                    self.runner.poke()
                    return TurnOutcome(accepted.turn_id, "queued", "")
                if accepted.behind_others:  # an earlier turn of this conversation runs elsewhere
                    await self.store.turns.wait_for_earlier(
                        accepted.conversation.id, accepted.turn_id, self.store.processes.owner
                    )
                with structlog.contextvars.bound_contextvars(
                    conversation=str(event.key),
                    turn_id=accepted.turn_id,
                    delivery_id=event.delivery_id,
                ):
                    started = time.perf_counter()
                    try:
                        outcome = await self._turn(event, reply, accepted, attempt, prelude)
                    except asyncio.CancelledError:
                        if not self._interrupting:
                            raise
                        outcome = await self.endings.interrupted(reply, accepted)
                    platform = event.platform.value
                    metrics.TURNS.labels(platform, outcome.status).inc()
                    metrics.TURN_SECONDS.labels(platform).observe(time.perf_counter() - started)
                    return outcome
        finally:
            self.capacity.give()
            self.runner.poke()

    async def _turn(
        self,
        event: Event,
        raw_reply: Reply,
        accepted: Accepted,
        attempt: int = 1,
        prelude: tuple[Step, ...] = (),
    ) -> TurnOutcome:
        started = time.perf_counter()
        reply = SafeReply(raw_reply)
        await reply.begin()
        redactor: TurnRedactor | None = None
        tracked = Shown(reply)
        try:
            config = await resolve_config(self.settings, self.store, event.key)
            if config.reply_controls:
                await reply.live(Controls(accepted.turn_id, attempt, finished=False))
            event = await self.inputs.media(event, reply, accepted)
            if self.settings.redaction.enabled:
                redactor = TurnRedactor(await self.store.redactions.get(accepted.conversation))
                event = await self.inputs.redact(event, accepted, redactor)
            refusal = await self.budgets.check_rate(event, accepted.turn_id)
            if refusal is not None:
                return await self.endings.refused(reply, accepted, refusal.reason, refusal.message)
            # Input moderation runs while the context is read; nothing is sent to the model
            # before its verdict.
            verdict = asyncio.ensure_future(self.inputs.moderate(event))
            try:
                model = choose_model(config, event, self.settings.models)
                await self.store.turns.mark_running(accepted.turn_id, model)
                context = await self.memory.context(
                    accepted.conversation,
                    instructions=config.system_prompt,
                    budget=config.budget,
                    up_to_turn=accepted.turn_id,
                )
                messages = await self.backfill.messages(event, context.messages, config.budget)
                wire = "responses" if config.backend == "openai" else self.model.wire_api
                room = max(config.budget - context.tokens, 0)
                documents = fit(event.attachments, self.tokens, room, wire=wire)
                for note in documents.notes:
                    await reply.notice(note)
                spend = None
                if not self.inputs.exempt(event):
                    added = messages[: len(messages) - len(context.messages)]
                    prompt = context.tokens + sum(self.tokens.count(m.text) for m in added)
                    prompt += documents.tokens
                    estimate = self.usage.estimate(model, prompt, config.max_output_tokens)
                    spend = await self.budgets.reserve_spend(
                        event, accepted.turn_id, model, estimate
                    )
            except BaseException:
                verdict.cancel()
                raise
            refusal = await verdict or spend
            if refusal is not None:
                return await self.endings.refused(reply, accepted, refusal.reason, refusal.message)
            request = ModelRequest(
                model=model,
                instructions=context.instructions,
                messages=with_files(with_images(messages, event), documents.parts)
                + tuple(map(_message, prelude)),
                temperature=config.temperature,
                max_output_tokens=config.max_output_tokens,
                logprobs=self.settings.models.low_confidence_logprob is not None,
                user=f"{event.platform}:{event.workspace}:{event.user.id}",
            )
            shown = redactor.reply(tracked) if redactor else tracked
            guard = self.inputs.guard(shown, event)
            approvals = ApprovalScope(
                accepted.turn_id, accepted.conversation.id, attempt, event.user.id, reply
            )
            turn = TurnInProgress(event, accepted, guard or shown, config, redactor, approvals)
            answer = await self.stops.run(
                accepted.turn_id, self.backends.answer(request, turn), watch=config.reply_controls
            )
            completed = answer.last
            text, note, steps = answer.text, "", [*prelude, *answer.steps]
            if guard is not None and not await guard.check_final(text):
                text, note = OUTPUT_BLOCKED, "output_blocked"
                steps = [*steps[:-1], Step("assistant", text)]
            text = mark_confidence(text, completed, self.settings.models.low_confidence_logprob)
            if redactor is not None:
                text = redactor.restore(text)
                steps = redactor.stored(steps, self.settings.redaction.store)
                if redactor.changed:
                    await self.store.redactions.put(accepted.conversation, redactor.placeholders)
        except asyncio.CancelledError:
            raise
        except Stopped:
            return await self.endings.stopped(reply, accepted, tracked.text, attempt)
        except ModerationUnavailable:
            return await self.endings.refused(
                reply, accepted, "moderation_unavailable", UNAVAILABLE
            )
        except Exception as exc:
            return await self.endings.failed(exc, reply, accepted)
        await self.store.finish_turn(
            accepted.turn_id, accepted.conversation, steps=steps, error=note
        )
        controls = Controls(accepted.turn_id, attempt) if config.reply_controls else None
        await reply.finish_with(text, controls)
        self._maybe_summarize(accepted, config, context, completed)
        log.info(
            "turn_done",
            model=completed.model,
            prompt_tokens=completed.usage.prompt_tokens,
            completion_tokens=completed.usage.completion_tokens,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return TurnOutcome(accepted.turn_id, "done", text, answer.usage)

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
        await self.usage.record(
            completed,
            ConversationKey.parse(conversation.key),
            user_id="",
            purpose="summary",
            turn_id=None,
            conversation_id=conversation.id,
        )


def _message(step: Step) -> Message:
    """A stored step as the model sees it (the prelude of a resumed turn)."""
    return Message(
        role=step.role,  # type: ignore[arg-type]
        text=step.content,
        tool_calls=step.tool_calls,
        tool_call_id=step.tool_call_id,
    )
