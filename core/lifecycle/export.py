"""Exports as JSON Lines: a conversation or a channel as stored, and fine-tuning data.

`conversation` and `channel` write one line per stored message (see `message_record`).
`fine_tune` writes OpenAI's chat fine-tuning format, one example per conversation epoch with a
liked answer: `{"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role":
"assistant", ..., "weight": 1}, ...]}`. An answer is liked when it has a 👍 and no 👎; the
example ends with the last liked answer of its epoch, earlier answers are context with `"weight":
0` unless liked too. Turns that did not end with an answer, tool calls and their results, and
messages whose text was removed are left out. The system message is the conversation's current
system prompt (global plus workspace, channel and thread additions).

Text is redacted as the store redacts it (`core.governance.redaction.redact`, with the
conversation's own placeholders, so a value has the placeholder the model saw) unless asked not to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from core.conversation.overrides import resolve_config
from core.events import ConversationKey
from core.governance.redaction import Placeholders, redact
from core.settings import Settings
from core.store import Store
from core.store.exports import ExportConversation
from core.store.records import MessageRecord


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What an export wrote."""

    kind: str
    target: str
    conversations: int
    turns: int
    lines: int
    seconds: float
    redacted: bool


class _Redactor:
    """Redacts one conversation's text with a copy of its stored placeholders (or not at all)."""

    def __init__(self, placeholders: Placeholders | None) -> None:
        self._placeholders = placeholders

    def __call__(self, text: str) -> str:
        return text if self._placeholders is None else redact(text, self._placeholders)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def message_record(
    conversation: ExportConversation, message: MessageRecord, clean: _Redactor
) -> dict[str, Any]:
    """The JSON object of one stored message; `content` is null where the text was removed."""
    return {
        "conversation": conversation.key,
        "platform": conversation.platform,
        "workspace": conversation.workspace,
        "channel": conversation.channel,
        "thread": conversation.thread,
        "epoch": message.epoch,
        "turn": message.turn_id,
        "turn_status": message.turn_status,
        "model": message.model,
        "message": message.id,
        "role": message.role,
        "user_id": message.user_id,
        "user_name": message.user_name,
        "content": None if message.removed else clean(message.content),
        "removed": message.removed,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": clean(c.arguments)}
            for c in message.tool_calls
        ],
        "tool_call_id": message.tool_call_id,
        "tokens": message.tokens,
        "created_at": _iso(message.created_at),
    }


def _turns(messages: Sequence[MessageRecord]) -> dict[int, tuple[str, str]]:
    """Per answered turn (in order): the user's text and the final answer, where both are
    stored; other turns are absent."""
    asked: dict[int, str] = {}
    answered: dict[int, str] = {}
    for m in messages:
        if m.turn_id is None or m.turn_status != "done" or m.removed:
            continue
        if m.role == "user" and m.content.strip():
            asked.setdefault(m.turn_id, m.content)
        elif m.role == "assistant" and not m.tool_calls and m.content.strip():
            answered[m.turn_id] = m.content  # the last assistant text of the turn
    return {turn: (asked[turn], answered[turn]) for turn in asked if turn in answered}


def fine_tune_examples(
    system: str,
    messages: Sequence[MessageRecord],
    verdicts: dict[int, tuple[int, int]],
    clean: _Redactor,
) -> list[dict[str, Any]]:
    """One example per epoch with a liked answer (see the module docstring)."""
    liked = {turn for turn, (up, down) in verdicts.items() if up > 0 and down == 0}
    examples = []
    epochs = sorted({m.epoch for m in messages})
    for epoch in epochs:
        turns = _turns([m for m in messages if m.epoch == epoch])
        ends = [turn for turn in turns if turn in liked]
        if not ends:
            continue
        chat: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        for turn, (question, answer) in turns.items():
            if turn > ends[-1]:
                break
            chat.append({"role": "user", "content": clean(question)})
            weight = 1 if turn in liked else 0
            chat.append({"role": "assistant", "content": clean(answer), "weight": weight})
        examples.append({"messages": chat})
    return examples


class Exporter:
    """Writes exports to a text stream and records each in the audit log."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def conversation(
        self, key: str, out: TextIO, *, actor: str, redacted: bool = True
    ) -> ExportReport | None:
        """Every message of one conversation (None when there is no such conversation)."""
        found = await self._store.exports.by_key(key)
        if found is None:
            return None
        return await self._messages("conversation", key, [found], out, actor, redacted)

    async def channel(
        self, channel: str, out: TextIO, *, actor: str, redacted: bool = True
    ) -> ExportReport:
        """Every message of every conversation in a channel."""
        found = await self._store.exports.in_channel(channel)
        return await self._messages("channel", channel, found, out, actor, redacted)

    async def fine_tune(self, out: TextIO, *, actor: str) -> ExportReport:
        """Fine-tuning examples from liked answers; always redacted."""
        started = time.perf_counter()
        found = await self._store.exports.with_feedback("positive")
        lines = turns = 0
        async for batch in self._store.exports.batches(found):
            ids = [conversation.id for conversation, _ in batch]
            verdicts = await self._store.exports.verdicts(ids)
            cleaners = await self._redactors(ids, True)
            for conversation, messages in batch:
                config = await resolve_config(
                    self._settings, self._store, ConversationKey.parse(conversation.key)
                )
                examples = fine_tune_examples(
                    config.system_prompt, messages, verdicts, cleaners(conversation.id)
                )
                for example in examples:
                    out.write(json.dumps(example, ensure_ascii=False) + "\n")
                    lines += 1
                    turns += sum(1 for m in example["messages"] if m["role"] == "assistant")
        report = ExportReport(
            "fine-tune", "", len(found), turns, lines, time.perf_counter() - started, True
        )
        await self._audit(report, actor)
        return report

    async def _messages(
        self,
        kind: str,
        target: str,
        conversations: list[ExportConversation],
        out: TextIO,
        actor: str,
        redacted: bool,
    ) -> ExportReport:
        started = time.perf_counter()
        lines, turns = 0, set()
        async for batch in self._store.exports.batches(conversations):
            cleaners = await self._redactors([c.id for c, _ in batch], redacted)
            for conversation, messages in batch:
                clean = cleaners(conversation.id)
                for message in messages:
                    record = message_record(conversation, message, clean)
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    lines += 1
                    if message.turn_id is not None:
                        turns.add(message.turn_id)
        report = ExportReport(
            kind,
            target,
            len(conversations),
            len(turns),
            lines,
            time.perf_counter() - started,
            redacted,
        )
        await self._audit(report, actor)
        return report

    async def _redactors(
        self, conversation_ids: list[int], redacted: bool
    ) -> Callable[[int], _Redactor]:
        """Per conversation of a batch: its redactor (a copy of its stored placeholders)."""
        if not redacted:
            return lambda _id: _Redactor(None)
        stored = await self._store.redactions.of_many(conversation_ids)
        return lambda conversation_id: _Redactor(stored.get(conversation_id, Placeholders()))

    async def _audit(self, report: ExportReport, actor: str) -> None:
        detail = {
            "conversations": report.conversations,
            "turns": report.turns,
            "lines": report.lines,
            "redacted": report.redacted,
        }
        await self._store.audit.record(actor, f"export.{report.kind}", report.target, detail)
