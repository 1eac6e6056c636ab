"""Running summaries and pinned notes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from core.store.db import Database
from core.store.messages import message_from_row
from core.store.records import Conversation, StoredMessage
from core.store.text import storable


@dataclass(frozen=True, slots=True)
class Summary:
    """The running summary of a conversation's older turns, up to turn `covers_until`."""

    text: str = ""
    facts: tuple[str, ...] = ()
    open_questions: tuple[str, ...] = ()
    covers_until: int = 0
    tokens: int = 0
    failures: int = 0
    retry_after: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.text and not self.facts


@dataclass(frozen=True, slots=True)
class Pin:
    """A note always sent with the conversation's context."""

    id: int
    text: str
    tokens: int
    pinned_by: str = field(default="")


class Summaries:
    """Reads and writes of running summaries."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, conversation: Conversation) -> Summary:
        """The summary of the conversation's current epoch (empty if none yet)."""
        row = await self._db.fetchone(
            "SELECT text, facts, open_questions, covers_until, tokens, failures, retry_after "
            "FROM summaries WHERE conversation_id = ? AND epoch = ?",
            (conversation.id, conversation.epoch),
        )
        if row is None:
            return Summary()
        return Summary(
            row["text"],
            tuple(json.loads(row["facts"])),
            tuple(json.loads(row["open_questions"])),
            row["covers_until"],
            row["tokens"],
            row["failures"],
            row["retry_after"],
        )

    async def save(self, conversation: Conversation, summary: Summary, model: str) -> None:
        """Store a new summary, clearing any failure count, unless the stored one covers more."""
        await self._db.execute(
            "INSERT INTO summaries (conversation_id, epoch, text, facts, open_questions, "
            "covers_until, tokens, model, failures, retry_after, last_error, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, '', ?) "
            "ON CONFLICT (conversation_id, epoch) DO UPDATE SET text = excluded.text, "
            "facts = excluded.facts, open_questions = excluded.open_questions, "
            "covers_until = excluded.covers_until, tokens = excluded.tokens, "
            "model = excluded.model, failures = 0, retry_after = 0, last_error = '', "
            "updated_at = excluded.updated_at "
            # A slower summarizer elsewhere must not replace a summary that covers more turns.
            "WHERE excluded.covers_until >= summaries.covers_until",
            (
                conversation.id,
                conversation.epoch,
                storable(summary.text),
                json.dumps([storable(fact) for fact in summary.facts]),
                json.dumps([storable(question) for question in summary.open_questions]),
                summary.covers_until,
                summary.tokens,
                model,
                time.time(),
            ),
        )

    async def record_failure(self, conversation: Conversation, error: str, retry_at: float) -> None:
        """Count a failed summary attempt and when to try again."""
        await self._db.execute(
            "INSERT INTO summaries (conversation_id, epoch, failures, retry_after, last_error, "
            "updated_at) VALUES (?, ?, 1, ?, ?, ?) "
            "ON CONFLICT (conversation_id, epoch) DO UPDATE SET failures = summaries.failures + 1, "
            "retry_after = excluded.retry_after, last_error = excluded.last_error",
            (conversation.id, conversation.epoch, retry_at, storable(error[:500]), time.time()),
        )

    async def unsummarized_tokens(
        self, conversation: Conversation, after_turn: int, up_to_turn: int
    ) -> int:
        """Tokens of the current epoch's messages in turns (`after_turn`, `up_to_turn`]."""
        row = await self._db.fetchone(
            "SELECT COALESCE(SUM(tokens), 0) FROM messages "
            "WHERE conversation_id = ? AND epoch = ? AND turn_id > ? AND turn_id <= ?",
            (conversation.id, conversation.epoch, after_turn, up_to_turn),
        )
        return int(row[0]) if row else 0

    async def unsummarized(
        self, conversation: Conversation, after_turn: int, up_to_turn: int, limit_tokens: int
    ) -> list[tuple[int, StoredMessage]]:
        """Whole turns after `after_turn`, oldest first, until about `limit_tokens` tokens.

        Returns (turn id, message) pairs; a turn is never split, so tool calls stay with results.
        """
        picked: list[tuple[int, StoredMessage]] = []
        total = 0
        rows = self._db.iterate(
            "SELECT id, role, content, user_id, user_name, tokens, tool_calls, tool_call_id, "
            "turn_id FROM messages WHERE conversation_id = ? AND epoch = ? AND turn_id > ? "
            "AND turn_id <= ? ORDER BY turn_id, id",
            (conversation.id, conversation.epoch, after_turn, up_to_turn),
        )
        async for row in rows:
            if total >= limit_tokens and row["turn_id"] != picked[-1][0]:
                break
            picked.append((row["turn_id"], message_from_row(row)))
            total += row["tokens"]
        return picked


class Pins:
    """Pinned notes of a conversation."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, conversation: Conversation, text: str, tokens: int, by: str) -> int:
        """Pin a note; returns its id."""
        params = (
            conversation.id,
            conversation.epoch,
            storable(text),
            tokens,
            storable(by),
            time.time(),
        )
        row = await self._db.write(
            lambda tx: tx.fetchone(
                "INSERT INTO pins (conversation_id, epoch, text, tokens, pinned_by, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                params,
            ),
            serializable=False,
        )
        assert row is not None
        return int(row[0])

    async def remove(self, conversation: Conversation, pin_id: int | None) -> int:
        """Unpin one note (or all when `pin_id` is None); returns how many were removed."""
        if pin_id is None:
            return await self._db.execute(
                "DELETE FROM pins WHERE conversation_id = ? AND epoch = ?",
                (conversation.id, conversation.epoch),
            )
        return await self._db.execute(
            "DELETE FROM pins WHERE conversation_id = ? AND epoch = ? AND id = ?",
            (conversation.id, conversation.epoch, pin_id),
        )

    async def list(self, conversation: Conversation) -> list[Pin]:
        """The conversation's pins, oldest first."""
        rows = await self._db.fetchall(
            "SELECT id, text, tokens, pinned_by FROM pins WHERE conversation_id = ? AND epoch = ? "
            "ORDER BY id",
            (conversation.id, conversation.epoch),
        )
        return [Pin(*row) for row in rows]
