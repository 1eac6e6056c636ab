"""New attempts of stored turns: Regenerate, and the resume of a turn whose process stopped
while one of its tool calls waited for approval."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import structlog

from core import metrics
from core.events import Event, Reply, User
from core.interactive.approvals import outcome_result
from core.llm.types import MCP_APPROVED, ToolCall
from core.store import Accepted, Conversation, Step
from core.store.interactive import Approval, TurnState

if TYPE_CHECKING:  # the engine imports this package
    from core.engine import Engine, TurnOutcome

log = structlog.get_logger(__name__)


def stored_event(state: TurnState, *, delivery_id: str) -> Event:
    """The turn's question again, as the event that asked it (attachments are not kept)."""
    return Event(
        key=state.key,
        user=User(state.user_id, state.user_name),
        text=state.text,
        delivery_id=delivery_id,
    )


async def _accepted(engine: Engine, state: TurnState) -> Accepted:
    conversation = await engine.store.conversations.get(state.key)
    assert conversation is not None  # the turn's conversation exists (the turn refers to it)
    current = Conversation(conversation.id, conversation.key, conversation.epoch)
    return Accepted(current, state.user_message_id, state.turn_id)


async def regenerate(
    engine: Engine, state: TurnState, reply: Reply
) -> asyncio.Task[TurnOutcome] | None:
    """Start a new attempt of a finished turn, once; None when another click already did (or
    the turn is not finished)."""
    attempt = await engine.store.interactive.reopen(
        state.turn_id, state.attempt, engine.store.processes.owner
    )
    if attempt is None:
        return None
    metrics.REGENERATIONS.inc()
    log.info("turn_regenerated", turn_id=state.turn_id, attempt=attempt)
    event = stored_event(state, delivery_id=f"again:{state.turn_id}:{attempt}")
    return engine.rerun(event, reply, await _accepted(engine, state), attempt=attempt)


async def resume(engine: Engine, approval: Approval) -> asyncio.Task[TurnOutcome] | None:
    """Continue a turn after its process stopped: run (or refuse) the decided call, then let the
    model answer, replying into the conversation as a new message."""
    state = await engine.store.interactive.turn(approval.turn_id)
    if state is None or not state.current_epoch:
        return None
    attempt = await engine.store.interactive.take_over(
        state.turn_id, approval.attempt, engine.store.processes.owner
    )
    if attempt is None:
        return None
    port = engine.port(state.key.platform.value)
    if port is None:
        log.warning("approval_resume_skipped", reason="no adapter for the platform here")
        return None
    reply = port.reply_to(state.key)
    event = stored_event(state, delivery_id=f"resume:{approval.id}")
    refused = outcome_result(approval.status)
    if approval.hosted_server:  # OpenAI runs the hosted server's tool once told it is approved
        server = approval.hosted_server
        name = approval.tool.removeprefix(f"{server}__")
        call = ToolCall(approval.call_id, name, approval.arguments, "mcp_approval", server)
        output = refused.output if refused else MCP_APPROVED
    else:
        call = ToolCall(approval.call_id, approval.tool, approval.arguments)
        output = (
            refused.output if refused else await engine.backends.run_approved(call, event, reply)
        )
    prelude = (
        Step("assistant", "", (call,)),
        Step("tool", output, tool_call_id=call.id, tokens=engine.tokens.count(output)),
    )
    log.info("approval_resumed", turn_id=state.turn_id, approval_id=approval.id)
    return engine.rerun(
        event, reply, await _accepted(engine, state), attempt=attempt, prelude=prelude
    )


def arguments_text(arguments: str, limit: int = 1500) -> str:
    """A tool call's arguments, pretty where they are JSON, cut to `limit` characters."""
    try:
        text = json.dumps(json.loads(arguments), ensure_ascii=False, indent=1)
    except ValueError:
        text = arguments
    return text if len(text) <= limit else text[: limit - 1] + "…"
