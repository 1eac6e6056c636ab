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
