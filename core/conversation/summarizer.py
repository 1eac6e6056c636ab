"""The running summary: folds a conversation's oldest turns into a summary, in the background."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import structlog

from core.conversation.memory import render_summary
from core.governance.redaction import redact
from core.llm.client import ModelClient
from core.llm.tokens import TokenCounter
from core.llm.types import Completed, JsonSchemaFormat, Message, ModelRequest
from core.settings import Settings
from core.store import Conversation, Store, StoredMessage
from core.store.memory import Summary

log = structlog.get_logger(__name__)

SUMMARY_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "summary": {
            "type": "string",
            "description": "What was discussed and decided, in a few sentences.",
        },
        "facts": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Durable facts about the user, their task and preferences.",
        },
        "open_questions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Questions or tasks still open.",
        },
    },
    "required": ["summary", "facts", "open_questions"],
    "additionalProperties": False,
}

INSTRUCTIONS = (
    "You maintain the running summary of a chat conversation. Merge the previous summary with the "
    "new transcript. Keep durable facts about the user and their task, decisions, and open "
    "questions. Drop small talk. Be concise."
)

UsageSink = Callable[[Completed, Conversation], Awaitable[None]]


class Summarizer:
    """Schedules at most one summary job per conversation; failures back off and retry later."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        model: ModelClient,
        tokens: TokenCounter,
        on_usage: UsageSink,
    ) -> None:
        self._settings = settings
        self._store = store
        self._model = model
        self._tokens = tokens
        self._on_usage = on_usage
        self._running: dict[int, asyncio.Task[bool]] = {}

    def due(
        self, summary: Summary, unsummarized_tokens: int, budget: int, overflowed: bool
    ) -> bool:
        """True when the unsummarized history has grown past the trigger and no backoff applies."""
        if summary.retry_after > time.time():
            return False
        return overflowed or unsummarized_tokens > self._settings.memory.summary_trigger * budget

    def schedule(
        self, conversation: Conversation, budget: int, up_to_turn: int
    ) -> asyncio.Task[bool] | None:
        """Start a background summary of finished turns unless one is already running."""
        if conversation.id in self._running:
            return None
        task = asyncio.create_task(self.run(conversation, budget, up_to_turn))
        self._running[conversation.id] = task
        task.add_done_callback(lambda _: self._running.pop(conversation.id, None))
        return task

    async def drain(self) -> None:
        """Wait for running summary jobs."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def run(self, conversation: Conversation, budget: int, up_to_turn: int) -> bool:
        """Fold the oldest unsummarized turns (up to a finished turn) into the summary."""
        with structlog.contextvars.bound_contextvars(conversation=conversation.key):
            try:
                return await self._fold(conversation, budget, up_to_turn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures = (await self._store.summaries.get(conversation)).failures
                delay = self._settings.memory.summary_retry_seconds * 2 ** min(failures, 6)
                log.warning(
                    "summary_failed",
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=delay,
                    fix="the window still works; check OPENAI_SUMMARY_MODEL if this repeats",
                )
                await self._store.summaries.record_failure(
                    conversation, f"{type(exc).__name__}: {exc}", time.time() + delay
                )
                return False

    async def _fold(self, conversation: Conversation, budget: int, up_to_turn: int) -> bool:
        previous = await self._store.summaries.get(conversation)
        keep = int(self._settings.memory.summary_keep * budget)
        total = await self._store.summaries.unsummarized_tokens(
            conversation, previous.covers_until, up_to_turn
        )
        if total <= keep:
            return True
        picked = await self._store.summaries.unsummarized(
            conversation,
            previous.covers_until,
            up_to_turn,
            min(total - keep, self._settings.memory.summary_max_input_tokens),
        )
        if not picked:
            return True
        batch = [message for _, message in picked]
        transcript = _transcript(previous, batch)
        if self._settings.redaction.enabled:
            # The turns stored these values' placeholders already; the summary keeps placeholders.
            transcript = redact(transcript, await self._store.redactions.get(conversation))
        request = ModelRequest(
            model=self._settings.models.summary,
            instructions=INSTRUCTIONS,
            messages=(Message(role="user", text=transcript),),
            response_format=JsonSchemaFormat("conversation_summary", SUMMARY_SCHEMA),
            max_output_tokens=1200,
        )
        completed = await self._model.complete(request)
        await self._on_usage(completed, conversation)
        data = json.loads(completed.text)
        summary = Summary(
            text=str(data["summary"]),
            facts=tuple(str(f) for f in data["facts"]),
            open_questions=tuple(str(q) for q in data["open_questions"]),
            covers_until=picked[-1][0],
        )
        summary = Summary(
            summary.text,
            summary.facts,
            summary.open_questions,
            summary.covers_until,
            tokens=self._tokens.count(render_summary(summary)),
        )
        await self._store.summaries.save(conversation, summary, completed.model)
        log.info("summary_saved", covers_until_turn=summary.covers_until, folded=len(batch))
        return True


MESSAGE_CHARS = 20_000  # of one message, in a summary's transcript


def _transcript(previous: Summary, batch: list[StoredMessage]) -> str:
    lines = []
    if not previous.empty:
        lines.append("Previous summary:\n" + render_summary(previous))
    lines.append("New transcript:")
    for message in batch:
        who = message.user_name or message.role
        if message.role == "tool":
            who = "tool result"
        content = message.content
        if len(content) > MESSAGE_CHARS:  # one huge message must not make the summary call huge
            content = content[:MESSAGE_CHARS] + " […]"
        lines.append(f"{who}: {content}")
    return "\n".join(lines)
