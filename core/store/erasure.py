"""Removing text: one person's everywhere (`purge --user`), and everyone's past RETENTION_DAYS.

A message whose text is removed keeps its row (its turn, token count and usage stay, so budgets
and reports still add up): its content becomes `REMOVED_TEXT`, tool-call arguments `{}`,
attachment details are dropped, and `removed` says why ('erasure' or 'retention').
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from core.store.db import Database, Tx

REMOVED_TEXT = "[message removed]"
REMOVED_TOKENS = 4  # o200k tokens of REMOVED_TEXT, so context budgets stay right
REMOVED_EXCERPT = "[removed]"
BATCH = 1000  # retention removes text in transactions of this many messages

# The turns a person started: their answers are theirs to remove too.
_THEIR_TURNS = (
    "SELECT t.id FROM turns t JOIN messages m ON m.id = t.user_message_id "
    "WHERE m.user_id = ? AND m.role = 'user'"
)
_THEIR_CONVERSATIONS = (
    "SELECT DISTINCT conversation_id FROM messages WHERE user_id = ? AND role = 'user'"
)


@dataclass(frozen=True, slots=True)
class Erased:
    """What removing one person's text changed (zeros when run again)."""

    messages: int = 0
    answers: int = 0
    pins: int = 0
    moderation_excerpts: int = 0
    feedback_comments: int = 0
    summaries: int = 0
    schedules: int = 0


@dataclass(frozen=True, slots=True)
class Expired:
    """What one retention pass removed."""

    messages: int = 0
    moderation_excerpts: int = 0
    pins: int = 0
    summaries: int = 0
    feedback_comments: int = 0

    @property
    def anything(self) -> bool:
        """Whether the pass changed anything."""
        return any(
            (
                self.messages,
                self.moderation_excerpts,
                self.pins,
                self.summaries,
                self.feedback_comments,
            )
        )


async def _blank_tool_arguments(tx: Tx, where: str, params: tuple[object, ...]) -> None:
    """Replace the arguments of the matching messages' tool calls with `{}` (ids and names stay,
    so a tool result still follows its call)."""
    rows = await tx.fetchall(
        f"SELECT id, tool_calls FROM messages WHERE tool_calls IS NOT NULL AND {where}", params
    )
    updates = []
    for row in rows:
        calls = json.loads(row[1])
        blank = [{**call, "arguments": "{}"} for call in calls]
        if blank != calls:
            updates.append((json.dumps(blank), row[0]))
    await tx.executemany("UPDATE messages SET tool_calls = ? WHERE id = ?", updates)


class Erasure:
    """The SQL of removing text; `core.lifecycle` adds the server-side conversations."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def erase_person(self, user_id: str) -> Erased:
        """Remove one person's text in every platform and workspace, in one transaction: their
        messages (and name on them), the answers to their messages, their pins, the moderation
        excerpts about them, their feedback comments, the running summaries of the
        conversations they took part in, and their schedules (cancelled, the prompts blanked).
        Idempotent."""
        now = time.time()

        async def erase(tx: Tx) -> Erased:
            await _blank_tool_arguments(tx, f"turn_id IN ({_THEIR_TURNS})", (user_id,))
            messages = await tx.execute(
                "UPDATE messages SET content = ?, tokens = ?, user_name = '', attachments = NULL, "
                "removed = 'erasure', removed_at = ? "
                "WHERE user_id = ? AND role = 'user' AND removed != 'erasure'",
                (REMOVED_TEXT, REMOVED_TOKENS, now, user_id),
            )
            answers = await tx.execute(
                "UPDATE messages SET content = ?, tokens = ?, attachments = NULL, "
                "removed = 'erasure', removed_at = ? "
                f"WHERE turn_id IN ({_THEIR_TURNS}) AND role IN ('assistant', 'tool') "
                "AND removed != 'erasure'",
                (REMOVED_TEXT, REMOVED_TOKENS, now, user_id),
            )
            pins = await tx.execute("DELETE FROM pins WHERE pinned_by = ?", (user_id,))
            excerpts = await tx.execute(
                "UPDATE moderation_events SET excerpt = ? WHERE user_id = ? AND excerpt != ?",
                (REMOVED_EXCERPT, user_id, REMOVED_EXCERPT),
            )
            comments = await tx.execute(
                "UPDATE feedback SET comment = '' WHERE user_id = ? AND comment != ''", (user_id,)
            )
            summaries = await tx.execute(
                "UPDATE summaries SET text = '', facts = '[]', open_questions = '[]', "
                "covers_until = 0, tokens = 0 "
                f"WHERE conversation_id IN ({_THEIR_CONVERSATIONS}) "
                "AND (text != '' OR facts != '[]' OR open_questions != '[]' OR covers_until != 0)",
                (user_id,),
            )
            schedules = await tx.execute(
                "UPDATE schedules SET status = 'cancelled', prompt = '', owner_name = '', "
                "updated_at = ? WHERE owner_id = ? "
                "AND (status != 'cancelled' OR prompt != '' OR owner_name != '')",
                (now, user_id),
            )
            return Erased(messages, answers, pins, excerpts, comments, summaries, schedules)

        return await self._db.write(erase)

    async def remote_of_person(self, user_id: str) -> list[str]:
        """The server-side conversation ids (every epoch) of conversations the person wrote in."""
        rows = await self._db.fetchall(
            "SELECT remote_id FROM remote_conversations "
            f"WHERE conversation_id IN ({_THEIR_CONVERSATIONS}) ORDER BY created_at",
            (user_id,),
        )
        return [row[0] for row in rows]

    async def remote_idle_since(self, before: float) -> list[str]:
        """The server-side conversation ids of conversations with no message since `before`."""
        rows = await self._db.fetchall(
            "SELECT r.remote_id FROM remote_conversations r "
            "JOIN conversations c ON c.id = r.conversation_id WHERE c.updated_at < ? "
            "ORDER BY r.created_at",
            (before,),
        )
        return [row[0] for row in rows]

    async def forget_remote(self, remote_id: str) -> None:
        """Drop the mapping of a server-side conversation that was deleted remotely."""
        await self._db.execute("DELETE FROM remote_conversations WHERE remote_id = ?", (remote_id,))

    async def expire_text(self, before: float) -> Expired:
        """Remove the text stored before a time: messages (in batches, so writers are not held
        up), moderation excerpts, pins, summaries not updated since, feedback comments."""
        messages = 0
        while True:
            changed = await self._db.write(
                lambda tx: self._expire_messages(tx, before), serializable=False
            )
            messages += changed
            if changed < BATCH:
                break

        async def rest(tx: Tx) -> Expired:
            excerpts = await tx.execute(
                "UPDATE moderation_events SET excerpt = ? WHERE created_at < ? AND excerpt != ?",
                (REMOVED_EXCERPT, before, REMOVED_EXCERPT),
            )
            pins = await tx.execute("DELETE FROM pins WHERE created_at < ?", (before,))
            summaries = await tx.execute(
                "UPDATE summaries SET text = '', facts = '[]', open_questions = '[]' "
                "WHERE updated_at < ? AND (text != '' OR facts != '[]' OR open_questions != '[]')",
                (before,),
            )
            comments = await tx.execute(
                "UPDATE feedback SET comment = '' WHERE created_at < ? AND comment != ''",
                (before,),
            )
            return Expired(messages, excerpts, pins, summaries, comments)

        return await self._db.write(rest, serializable=False)

    async def _expire_messages(self, tx: Tx, before: float) -> int:
        rows = await tx.fetchall(
            "SELECT id FROM messages WHERE created_at < ? AND removed_at IS NULL "
            "ORDER BY created_at LIMIT ?",
            (before, BATCH),
        )
        ids = [row[0] for row in rows]
        if not ids:
            return 0
        marks = ", ".join("?" * len(ids))
        await _blank_tool_arguments(tx, f"id IN ({marks})", tuple(ids))
        return await tx.execute(
            "UPDATE messages SET content = ?, tokens = ?, attachments = NULL, "
            f"removed = 'retention', removed_at = ? WHERE id IN ({marks})",
            (REMOVED_TEXT, REMOVED_TOKENS, time.time(), *ids),
        )
