"""How a turn ends other than with an answer: stopped, refused, failed or cut off by a shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from core import metrics
from core.conversation.recovery import INTERRUPTED
from core.events import Reply
from core.interactive.controls import STOPPED_MARK, Controls
from core.llm.errors import classify
from core.llm.tokens import TokenCounter
from core.llm.types import Usage
from core.render.replies import SafeReply
from core.store import Accepted, Step, Store, StoreError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """How a turn ended."""

    turn_id: int
    status: str
    text: str
    usage: Usage = field(default_factory=Usage)


class TurnEndings:
    """Stores and shows each way a turn can end without a finished answer."""

    def __init__(self, store: Store, tokens: TokenCounter) -> None:
        self._store = store
        self._tokens = tokens

    async def interrupted(self, reply: Reply, accepted: Accepted) -> TurnOutcome:
        """Close a turn the shutdown deadline cut short: once, with the interrupted notice."""
        step = Step("assistant", INTERRUPTED, tokens=self._tokens.count(INTERRUPTED))
        closed = await self._store.finish_turn(
            accepted.turn_id,
            accepted.conversation,
            steps=[step],
            status="interrupted",
            error="shutdown deadline passed",
            only_open=True,
        )
        if closed:
            await SafeReply(reply).finish(INTERRUPTED)
        return TurnOutcome(accepted.turn_id, "interrupted", INTERRUPTED)

    async def stopped(
        self, reply: SafeReply, accepted: Accepted, partial: str, attempt: int
    ) -> TurnOutcome:
        """A person stopped the reply: what was shown is kept as the answer, marked stopped."""
        log.info("turn_stopped", shown_chars=len(partial))
        kept = partial.strip()
        steps = [Step("assistant", kept, tokens=self._tokens.count(kept))] if kept else []
        await self._store.finish_turn(
            accepted.turn_id, accepted.conversation, steps=steps, error="stopped"
        )
        await self._store.interactive.mark_stopped(accepted.turn_id)
        text = f"{kept}\n\n{STOPPED_MARK}" if kept else STOPPED_MARK
        await reply.finish_with(text, Controls(accepted.turn_id, attempt, stopped=True))
        return TurnOutcome(accepted.turn_id, "stopped", text)

    async def refused(
        self, reply: Reply, accepted: Accepted, reason: str, message: str
    ) -> TurnOutcome:
        """End a turn without calling the model (limits, moderation): the user is told why."""
        log.info("turn_refused", reason=reason)
        await reply.finish(message)
        await self._store.turns.mark_failed(accepted.turn_id, reason)
        return TurnOutcome(accepted.turn_id, "refused", message)

    async def failed(self, exc: Exception, reply: Reply, accepted: Accepted) -> TurnOutcome:
        failure = classify(exc)
        metrics.MODEL_ERRORS.labels(failure.kind).inc()
        log.error("turn_failed", kind=failure.kind, error=failure.operator_message)
        await reply.finish(failure.user_message)
        try:
            await self._store.turns.mark_failed(accepted.turn_id, f"{failure.kind}: {exc}")
        except StoreError as store_exc:
            log.error("turn_status_not_stored", error=str(store_exc))
        return TurnOutcome(accepted.turn_id, "failed", failure.user_message)
