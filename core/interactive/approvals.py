"""Tool calls that wait for a person: persisted, decided once in the database, expired on time.

The turn that asked holds its task while it waits (in-process clicks wake it at once; clicks
handled by another process are seen by polling). If that process dies, the decision is made by
whichever process gets the click, which then resumes the turn itself (`Engine.resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from core import metrics
from core.interactive.controls import ApprovalPrompt
from core.llm.types import ToolCall
from core.store import Store
from core.tools import ToolResult
from core.tools.catalog import AnyTool

log = structlog.get_logger(__name__)

DENIED = "The user denied this tool call; do not try it again. Answer without it."
EXPIRED = "Nobody approved this tool call in time; it did not run. Answer without it."


class ApprovalReply(Protocol):
    """Where a turn shows its approval prompts (the engine's SafeReply)."""

    async def ask_approval(self, prompt: ApprovalPrompt) -> None: ...


@dataclass(frozen=True, slots=True)
class ApprovalScope:
    """The turn a tool call belongs to, for its approval."""

    turn_id: int
    conversation_id: int
    attempt: int
    user_id: str
    reply: ApprovalReply


def needs_approval(tool: AnyTool) -> bool:
    """The default policy: tools declared `@tool(approval=True)` (or marked so by their source)."""
    return tool.approval


def outcome_result(status: str) -> ToolResult | None:
    """What a decided call gives the model: None (run it) when approved."""
    if status == "approved":
        return None
    return ToolResult(False, DENIED if status == "denied" else EXPIRED)


class ApprovalGate:
    """Asks for approvals and waits for their decisions."""

    def __init__(
        self,
        store: Store,
        *,
        minutes: float,
        poll: float = 1.0,
        policy: Callable[[AnyTool], bool] = needs_approval,
    ) -> None:
        self._store = store
        self.minutes = minutes
        self._poll = poll
        self.policy = policy
        self._waiting: dict[int, asyncio.Event] = {}

    def required(self, tool: AnyTool) -> bool:
        """Whether a model's call of `tool` waits for a person."""
        return self.policy(tool)

    def waiting_here(self, approval_id: int) -> bool:
        """Whether a turn of this process waits for this approval."""
        return approval_id in self._waiting

    def notify(self, approval_id: int) -> None:
        """A decision was stored: wake the turn waiting here, if any."""
        event = self._waiting.get(approval_id)
        if event is not None:
            event.set()

    async def ask(self, scope: ApprovalScope, call: ToolCall, name: str) -> ToolResult | None:
        """Persist the call of the tool shown as `name`, show the prompt, wait; None when
        approved, else what the model is told instead."""
        expires = time.time() + self.minutes * 60
        approval_id = await self._store.interactive.ask_approval(
            turn_id=scope.turn_id,
            conversation_id=scope.conversation_id,
            attempt=scope.attempt,
            call_id=call.id,
            tool=name,
            arguments=call.arguments,
            requested_by=scope.user_id,
            owner=self._store.processes.owner,
            expires_at=expires,
            hosted_server=call.server if call.kind == "mcp_approval" else "",
        )
        self._waiting[approval_id] = asyncio.Event()
        try:
            prompt = ApprovalPrompt(approval_id, name, call.arguments, scope.user_id, self.minutes)
            await scope.reply.ask_approval(prompt)
            status = await self._wait(approval_id, expires)
        finally:
            self._waiting.pop(approval_id, None)
        log.info("tool_approval", tool=name, approval_id=approval_id, outcome=status)
        return outcome_result(status)

    async def _wait(self, approval_id: int, expires: float) -> str:
        event = self._waiting[approval_id]
        while True:
            row = await self._store.interactive.approval(approval_id)
            if row is not None and row.status != "pending":
                return row.status
            remaining = expires - time.time()
            if remaining <= 0:
                if await self._store.interactive.decide(approval_id, "expired", ""):
                    metrics.TOOL_APPROVALS.labels("expired").inc()
                    return "expired"
                continue  # a decision landed at the deadline: read it
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(self._poll, remaining))
