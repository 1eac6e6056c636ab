"""Redaction in a turn: what leaves for the model is redacted, what the user sees is restored."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from core.events import OutboundFile, Reply
from core.governance.redaction import Placeholders, redact, restore
from core.llm.client import ModelClient
from core.llm.types import Completed, Message, ModelRequest, StreamEvent, ToolCall
from core.store.records import Step

# A streamed delta may end inside a placeholder ("[EMAIL_" … "1]"): hold such a tail back.
_PARTIAL_PLACEHOLDER = re.compile(r"\[[A-Z]{0,6}(?:_[0-9]*)?$")


class TurnRedactor:
    """One turn's view of its conversation's placeholders (REDACT_ENABLED)."""

    def __init__(self, placeholders: Placeholders) -> None:
        self.placeholders = placeholders
        self._known = len(placeholders.by_value)

    @property
    def changed(self) -> bool:
        """New values were redacted in this turn (the mapping must be saved)."""
        return len(self.placeholders.by_value) != self._known

    def text(self, text: str) -> str:
        """`text` with sensitive values replaced by this conversation's placeholders."""
        return redact(text, self.placeholders) if text else text

    def restore(self, text: str) -> str:
        """`text` with placeholders turned back into the values."""
        return restore(text, self.placeholders) if "[" in text else text

    def messages(self, messages: Sequence[Message]) -> tuple[Message, ...]:
        """Messages as they may leave: texts and tool-call arguments redacted."""
        return tuple(
            replace(
                m,
                text=self.text(m.text),
                tool_calls=tuple(
                    ToolCall(c.id, c.name, self.text(c.arguments)) for c in m.tool_calls
                ),
            )
            for m in messages
        )

    def stored(self, steps: Sequence[Step], mode: str) -> list[Step]:
        """The turn's steps as REDACT_STORE says to keep them: `original` values or `redacted`."""
        convert = self.text if mode == "redacted" else self.restore
        return [
            replace(
                step,
                content=convert(step.content),
                tool_calls=tuple(
                    ToolCall(c.id, c.name, convert(c.arguments)) for c in step.tool_calls
                ),
            )
            for step in steps
        ]

    def model(self, model: ModelClient) -> RedactingModel:
        """`model` seen through this redactor."""
        return RedactingModel(model, self)

    def reply(self, reply: Reply) -> RestoringReply:
        """`reply` showing restored values."""
        return RestoringReply(reply, self)


class RedactingModel:
    """Sends redacted requests; tools get the real values back in their arguments."""

    def __init__(self, model: ModelClient, redactor: TurnRedactor) -> None:
        self._model = model
        self._redactor = redactor

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Like `ModelClient.stream`, redacting the request's messages first."""
        redacted = replace(request, messages=self._redactor.messages(request.messages))
        async for event in self._model.stream(redacted):
            if isinstance(event, Completed) and event.tool_calls:
                calls = tuple(
                    ToolCall(c.id, c.name, self._redactor.restore(c.arguments))
                    for c in event.tool_calls
                )
                event = replace(event, tool_calls=calls)
            yield event


class RestoringReply:
    """Wraps a Reply: placeholders in the model's text are shown as the original values."""

    def __init__(self, reply: Reply, redactor: TurnRedactor) -> None:
        self._reply = reply
        self._redactor = redactor
        self._held = ""

    async def begin(self) -> None:
        await self._reply.begin()

    async def append(self, delta: str) -> None:
        text = self._held + delta
        partial = _PARTIAL_PLACEHOLDER.search(text)
        cut = partial.start() if partial else len(text)
        self._held = text[cut:]
        if cut:
            await self._reply.append(self._redactor.restore(text[:cut]))

    async def finish(self, text: str) -> None:
        self._held = ""
        await self._reply.finish(self._redactor.restore(text))

    async def notice(self, text: str) -> None:
        await self._reply.notice(text)

    async def upload(self, file: OutboundFile) -> None:
        await self._reply.upload(file)
