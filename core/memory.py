"""Context assembly: the system prompt, then the newest turns that fit the token budget."""

from __future__ import annotations

from dataclasses import dataclass

from core.llm.tokens import TokenCounter
from core.llm.types import Message
from core.store import Conversation, Store

TRUNCATION_MARKER = "\n[… message truncated to fit the context window …]"


@dataclass(frozen=True, slots=True)
class Context:
    """What one model call is sent, with its token count."""

    instructions: str
    messages: tuple[Message, ...]
    tokens: int


class Memory:
    """Builds the context of a turn from the store, reading only the rows that fit."""

    def __init__(self, store: Store, tokens: TokenCounter) -> None:
        self._store = store
        self._tokens = tokens

    async def context(
        self, conversation: Conversation, *, instructions: str, budget: int
    ) -> Context:
        """The newest messages of the conversation that fit `budget` tokens after the prompt."""
        used = self._tokens.count(instructions)
        window: list[Message] = []
        async for stored in self._store.messages.newest_first(conversation):
            cost = stored.tokens + 3
            if used + cost > budget:
                if not window:  # the newest message alone is too large: send a truncated copy
                    room = max(budget - used - 16, 0)
                    text = self._tokens.truncate(stored.content, room) + TRUNCATION_MARKER
                    window.append(Message(role=stored.role, text=text))  # type: ignore[arg-type]
                    used += self._tokens.count(text)
                break
            window.append(stored.to_message())
            used += cost
        window.reverse()
        return Context(instructions, _drop_orphan_tool_results(window), used)


def _drop_orphan_tool_results(window: list[Message]) -> tuple[Message, ...]:
    """A window must not start with tool results whose call was cut off by the budget."""
    start = 0
    while start < len(window) and window[start].role == "tool":
        start += 1
    return tuple(window[start:])
