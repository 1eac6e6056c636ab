"""Turns: one per accepted user message, with a status that survives crashes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from core.events import Event
from core.store.db import Database, Tx
from core.store.text import storable
from core.store.usage import RELEASE

# An earlier turn of the same conversation, still open, that another process runs.
EARLIER_ELSEWHERE = (
    "SELECT 1 FROM turns WHERE conversation_id = ? AND id < ? "
    "AND status IN ('queued', 'running') AND owner != ? LIMIT 1"
)


def user_key(event: Event) -> str:
    """Who a turn is for, across conversations: platform, workspace and user id."""
    return f"{event.platform}:{event.workspace}:{event.user.id}"


@dataclass(frozen=True, slots=True)
class TurnRow:
    """A turn as stored."""

    id: int
    conversation_id: int
    user_message_id: int
    status: str
    model: str
    error: str


class Turns:
    """Status changes and reads of turns."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def mark_running(self, turn_id: int, model: str) -> None:
        """The turn's model call is starting."""
        await self._db.execute(
            "UPDATE turns SET status = 'running', model = ?, started_at = ? WHERE id = ?",
            (model, time.time(), turn_id),
        )

    async def mark_failed(self, turn_id: int, error: str) -> None:
        """The turn failed for good (the user was told); its spending hold is released."""
        now = time.time()

        async def fail(tx: Tx) -> None:
            await tx.execute(
                "UPDATE turns SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
                (storable(error[:500]), now, turn_id),
            )
            await tx.execute(RELEASE, (turn_id,))

        await self._db.write(fail, serializable=False)  # writes only this turn's rows

    async def get(self, turn_id: int) -> TurnRow | None:
        """One turn by id."""
        row = await self._db.fetchone(
            "SELECT id, conversation_id, user_message_id, status, model, error "
            "FROM turns WHERE id = ?",
            (turn_id,),
        )
        return TurnRow(*row) if row else None

    async def unfinished(self) -> list[TurnRow]:
        """Turns left queued or running, e.g. by a crash."""
        rows = await self._db.fetchall(
            "SELECT id, conversation_id, user_message_id, status, model, error FROM turns "
            "WHERE status IN ('queued', 'running') ORDER BY id"
        )
        return [TurnRow(*row) for row in rows]

    async def count_before(self, key: str, since: float, turn_id: int) -> int:
        """How many turns a user started since a time, before turn `turn_id` (for rate limits).

        Counting by turn id rather than by arrival in this process gives every process the same
        answer: the n-th turn of the minute is the n-th whichever process runs it.
        """
        row = await self._db.fetchone(
            "SELECT COUNT(*) FROM turns WHERE user_key = ? AND created_at >= ? AND id < ?",
            (key, since, turn_id),
        )
        return int(row[0]) if row else 0

    async def earlier_open(self, conversation_id: int, turn_id: int) -> bool:
        """Whether an earlier turn of the conversation is still queued or running."""
        row = await self._db.fetchone(
            "SELECT 1 FROM turns WHERE conversation_id = ? AND id < ? "
            "AND status IN ('queued', 'running') LIMIT 1",
            (conversation_id, turn_id),
        )
        return row is not None

    async def wait_for_earlier(
        self, conversation_id: int, turn_id: int, owner: str, *, poll: float = 0.02
    ) -> None:
        """Return once no other process has an earlier turn of the conversation open.

        Within one process the engine keeps turns in order itself; this covers turns of one
        conversation accepted by different processes. A process that dies leaves its turns to
        recovery, which closes them, so the wait ends.
        """
        delay = poll
        while await self._db.fetchone(EARLIER_ELSEWHERE, (conversation_id, turn_id, owner)):
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)
