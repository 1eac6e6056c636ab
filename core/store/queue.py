"""The durable turn queue: stored turns waiting for a process with free capacity to run them.

A turn that its accepting process does not start at once is stored unclaimed (`owner = ''`),
with its event as JSON and where its reply goes. Any process serving the platform claims
queued turns in id order, one conversation's turns strictly one after another: a turn is
claimable only when no earlier turn of its conversation is still open. PostgreSQL claims with
`FOR UPDATE SKIP LOCKED`, so processes claiming at once take different turns; SQLite has one
writer, which decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.store.db import Database, Tx
from core.store.records import Conversation

# Queued turns nobody has claimed, up to a bound (an index-only count: cheap at any queue length).
UNCLAIMED = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM turns WHERE status = 'queued' AND owner = '' LIMIT ?) q"
)
OLDEST_UNCLAIMED = "SELECT MIN(id) FROM turns WHERE status = 'queued' AND owner = ''"
# The claimable turns of some platforms, oldest first: queued, unclaimed, and the first open turn
# of their conversation. `{lock}` is PostgreSQL's row lock, empty on SQLite.
CLAIMABLE = (
    "SELECT t.id FROM turns t JOIN conversations c ON c.id = t.conversation_id "
    "WHERE t.status = 'queued' AND t.owner = '' AND c.platform IN ({platforms}) "
    "AND NOT EXISTS (SELECT 1 FROM turns e WHERE e.conversation_id = t.conversation_id "
    "AND e.id < t.id AND e.status IN ('queued', 'running')) "
    "ORDER BY t.id LIMIT ?{lock}"
)
CLAIMED = (
    "SELECT t.id, t.user_message_id, t.event, t.reply_to, t.reply_ref, t.runs, t.attempt, "
    "c.id, c.key, m.epoch FROM turns t JOIN conversations c ON c.id = t.conversation_id "
    "JOIN messages m ON m.id = t.user_message_id WHERE t.id IN ({ids}) ORDER BY t.id"
)


@dataclass(frozen=True, slots=True)
class QueuedTurn:
    """A claimed turn with everything needed to run it here."""

    turn_id: int
    conversation: Conversation  # with the epoch its message was stored in
    message_id: int
    event: str  # `Event.to_json()`
    reply_to: str  # the reply's address as JSON
    reply_ref: str  # the message a crashed run showed first ('' for none)
    runs: int  # times started, this one included (more than 1: a re-run after a crash)
    attempt: int


class TurnQueue:
    """Claims of queued turns, and what a running turn records for a possible re-run."""

    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self._owner = owner

    async def waiting(self, limit: int = 1) -> int:
        """How many turns wait unclaimed (counted up to `limit`)."""
        row = await self._db.fetchone(UNCLAIMED, (limit,))
        return int(row[0]) if row else 0

    async def claim(self, platforms: Iterable[str], limit: int) -> list[QueuedTurn]:
        """Take up to `limit` claimable turns of `platforms` for this process, oldest first."""
        names = sorted(set(platforms))
        if not names or limit < 1:
            return []
        lock = " FOR UPDATE OF t SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        claimable = CLAIMABLE.format(platforms=", ".join("?" * len(names)), lock=lock)

        async def take(tx: Tx) -> list[QueuedTurn]:
            ids = [int(row[0]) for row in await tx.fetchall(claimable, (*names, limit))]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            await tx.execute(
                f"UPDATE turns SET owner = ?, runs = runs + 1 WHERE id IN ({marks})",
                (self._owner, *ids),
            )
            rows = await tx.fetchall(CLAIMED.format(ids=marks), ids)
            return [
                QueuedTurn(
                    turn_id=int(r[0]),
                    conversation=Conversation(int(r[7]), str(r[8]), int(r[9])),
                    message_id=int(r[1]),
                    event=str(r[2]),
                    reply_to=str(r[3]),
                    reply_ref=str(r[4]),
                    runs=int(r[5]),
                    attempt=int(r[6]),
                )
                for r in rows
            ]

        # Read committed: the row locks (PostgreSQL) or the one writer (SQLite) make each claim
        # once-only, and an earlier open turn of the conversation is seen as soon as committed.
        return await self._db.write(take, serializable=False)

    async def give_back(self, turn_id: int) -> None:
        """Return a claimed turn that has not started to the queue (for any process to claim)."""
        await self._db.execute(
            "UPDATE turns SET owner = '' WHERE id = ? AND status = 'queued' AND owner = ?",
            (turn_id, self._owner),
        )

    async def shown(self, turn_id: int, ref: str) -> None:
        """The turn's reply showed its first message, `ref` (a re-run replaces it)."""
        await self._db.execute(
            "UPDATE turns SET reply_ref = ? WHERE id = ? AND reply_ref = ''", (ref, turn_id)
        )
