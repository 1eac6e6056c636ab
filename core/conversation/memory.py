"""Context assembly: a stable prefix (prompt, pins, summary), then the newest turns that fit."""

from __future__ import annotations

from dataclasses import dataclass

from core.llm.tokens import MESSAGE_OVERHEAD, TokenCounter
from core.llm.types import Message
from core.store import Conversation, Store
from core.store.memory import Pin, Summary

TRUNCATION_MARKER = "\n[… message truncated to fit the context window …]"


@dataclass(frozen=True, slots=True)
class Context:
    """What one model call is sent, and what the summarizer needs to know about it."""

    instructions: str
    messages: tuple[Message, ...]
    tokens: int
    prefix_tokens: int
    window_tokens: int
    window_messages: int
    overflowed: bool
    summary: Summary


def render_pins(pins: list[Pin]) -> str:
    """The pinned notes as one context message."""
    lines = "\n".join(f"- {pin.text}" for pin in pins)
    return f"Pinned notes for this conversation (always keep them in mind):\n{lines}"


def render_summary(summary: Summary) -> str:
    """The running summary as one context message."""
    parts = [f"Summary of the earlier conversation:\n{summary.text}"]
    if summary.facts:
        parts.append("Facts to remember:\n" + "\n".join(f"- {f}" for f in summary.facts))
    if summary.open_questions:
        parts.append("Open questions:\n" + "\n".join(f"- {q}" for q in summary.open_questions))
    return "\n\n".join(parts)


class Memory:
    """Builds the context of a turn from the store, reading only the rows that fit the budget."""

    def __init__(self, store: Store, tokens: TokenCounter) -> None:
        self._store = store
        self._tokens = tokens

    async def context(
        self,
        conversation: Conversation,
        *,
        instructions: str,
        budget: int,
        up_to_turn: int | None = None,
    ) -> Context:
        """Prompt, pins and summary first (the cacheable prefix), then the newest messages.

        Messages already folded into the summary are not read; reading stops at the first message
        that does not fit, so the cost follows the window, not the history. A turn sees only turns up
        to its own (`up_to_turn`): later questions already queued are not its business.
        """
        pins = await self._store.pins.list(conversation)
        summary = await self._store.summaries.get(conversation)
        prefix: list[Message] = []
        if pins:
            prefix.append(Message(role="system", text=render_pins(pins)))
        if not summary.empty:
            prefix.append(Message(role="system", text=render_summary(summary)))
        prefix_tokens = self._tokens.count(instructions) + sum(
            self._tokens.message(message) for message in prefix
        )
        used = prefix_tokens
        window: list[Message] = []
        overflowed = False
        async for stored in self._store.messages.newest_first(
            conversation, up_to_turn=up_to_turn, after_turn=summary.covers_until
        ):
            cost = stored.tokens + MESSAGE_OVERHEAD
            if used + cost > budget:
                overflowed = True
                if not window:  # the newest message alone is too large: send a truncated copy
                    window.append(self._truncated(stored.to_message(), budget - used))
                    used += self._tokens.message(window[-1])
                break
            window.append(stored.to_message())
            used += cost
        window.reverse()
        messages = tuple(prefix) + _without_orphan_tool_results(window)
        return Context(
            instructions=instructions,
            messages=messages,
            tokens=used,
            prefix_tokens=prefix_tokens,
            window_tokens=used - prefix_tokens,
            window_messages=len(window),
            overflowed=overflowed,
            summary=summary,
        )

    def _truncated(self, message: Message, room: int) -> Message:
        marker_cost = self._tokens.count(TRUNCATION_MARKER) + MESSAGE_OVERHEAD
        text = self._tokens.truncate(message.text, max(room - marker_cost, 0)) + TRUNCATION_MARKER
        return Message(role=message.role, text=text, tool_call_id=message.tool_call_id)


def _without_orphan_tool_results(window: list[Message]) -> tuple[Message, ...]:
    """A window must not start with tool results whose call fell outside the budget."""
    start = 0
    while start < len(window) and window[start].role == "tool":
        start += 1
    return tuple(window[start:])
