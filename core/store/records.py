"""Plain records read from the store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.llm.types import Message, ToolCall


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation row: its id and current epoch (a reset starts a new epoch)."""

    id: int
    key: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event that was new: where its message and turn were stored."""

    conversation: Conversation
    message_id: int
    turn_id: int
    behind_others: bool = False  # another process has an earlier turn of this conversation open
    queued: bool = False  # stored unclaimed: any process with free capacity will run it
    waiting: int = 0  # with `queued`: turns that were already waiting unclaimed
    after_own: bool = False  # this process had an earlier turn of the conversation open


@dataclass(frozen=True, slots=True)
class Step:
    """One message a turn adds to the conversation: the answer, a tool call, or a tool result."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One stored message with its token count."""

    id: int
    role: str
    content: str
    user_id: str
    user_name: str
    tokens: int
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""

    def to_message(self) -> Message:
        """The model-facing form of this message."""
        return Message(
            role=self.role,  # type: ignore[arg-type]
            text=self.content,
            tool_calls=self.tool_calls,
            tool_call_id=self.tool_call_id,
        )


def encode_tool_calls(calls: tuple[ToolCall, ...]) -> str | None:
    """JSON for the tool_calls column."""
    if not calls:
        return None
    return json.dumps(
        [
            {"id": c.id, "name": c.name, "arguments": c.arguments}
            | ({"kind": c.kind, "server": c.server} if c.kind != "function" else {})
            for c in calls
        ]
    )


def decode_tool_calls(raw: str | None) -> tuple[ToolCall, ...]:
    """Inverse of `encode_tool_calls`."""
    if not raw:
        return ()
    data: list[dict[str, Any]] = json.loads(raw)
    return tuple(
        ToolCall(d["id"], d["name"], d["arguments"], d.get("kind", "function"), d.get("server", ""))
        for d in data
    )


# Every column of a message with its turn's status and model, for reading whole conversations;
# callers add `WHERE m.conversation_id ...` and an order.
MESSAGE_RECORD = (
    "SELECT m.id, m.conversation_id, m.epoch, m.turn_id, m.role, m.user_id, m.user_name, "
    "m.content, m.tool_calls, m.tool_call_id, m.tokens, m.created_at, m.removed, "
    "COALESCE(t.status, ''), COALESCE(t.model, '') FROM messages m "
    "LEFT JOIN turns t ON t.id = m.turn_id"
)
# Conversation order: epoch, then turn (a turn's answer is written after later questions), then id.
MESSAGE_ORDER = "m.epoch, COALESCE(m.turn_id, 0), m.id"


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One stored message as the admin site and exports read it; `removed` says why its text is
    gone ('' while it is stored)."""

    id: int
    conversation_id: int
    epoch: int
    turn_id: int | None
    role: str
    user_id: str
    user_name: str
    content: str
    tool_calls: tuple[ToolCall, ...]
    tool_call_id: str
    tokens: int
    created_at: float
    removed: str
    turn_status: str
    model: str

    @classmethod
    def from_row(cls, r: Any) -> MessageRecord:
        """From a row of `MESSAGE_RECORD`."""
        calls = decode_tool_calls(r[8])
        return cls(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            calls,
            r[9],
            r[10],
            r[11],
            r[12],
            r[13],
            r[14],
        )
