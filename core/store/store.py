"""The store: one object that owns the database and the table-family helpers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from core.events import Event
from core.store import conversations, deliveries, messages
from core.store.audit import AuditLog
from core.store.browse import Browse
from core.store.connect import connect
from core.store.conversations import Conversations
from core.store.db import Database, QueueFull, Tx
from core.store.deliveries import Deliveries
from core.store.erasure import Erasure
from core.store.exports import Exports
from core.store.interactive import Interactive
from core.store.jobs import JobLeases
from core.store.knowledge import Knowledge
from core.store.memory import Pins, Summaries
from core.store.messages import Messages
from core.store.moderation import ModerationLog
from core.store.oauth_states import OAuthStates
from core.store.overrides import ScopedSettings
from core.store.processes import Processes, new_owner
from core.store.queue import OLDEST_UNCLAIMED, UNCLAIMED, TurnQueue
from core.store.records import Accepted, Conversation, Step
from core.store.redactions import Redactions
from core.store.remote import RemoteConversations, VectorStores
from core.store.reports import Reports
from core.store.schedules import Schedules
from core.store.sessions import AdminSessions
from core.store.spacing import Spacing
from core.store.text import storable
from core.store.turns import Turns, user_key
from core.store.usage import RELEASE, UsageLog

# Who holds the open turns of a conversation ('' for turns waiting unclaimed).
OPEN_OWNERS = (
    "SELECT DISTINCT owner FROM turns WHERE conversation_id = ? AND status IN ('queued', 'running')"
)


async def _waiting(tx: Tx, limit: int | None) -> int:
    """How many turns wait unclaimed, at most; raises `QueueFull` at `limit`.

    The ids between the oldest waiting turn and the newest turn bound the count from above, at
    the cost of two index look-ups; only a bound past the limit is checked by counting (up to
    the limit: at a long queue, counting it for every event would cost what the queue grows by).
    """
    row = await tx.fetchone(OLDEST_UNCLAIMED)
    if row is None or row[0] is None:
        return 0
    newest = await tx.fetchone("SELECT MAX(id) FROM turns")
    waiting = int(newest[0]) - int(row[0]) + 1 if newest is not None else 1
    if limit is None or waiting < limit:
        return waiting
    counted = await tx.fetchone(UNCLAIMED, (limit,))
    waiting = int(counted[0]) if counted else 0
    if waiting >= limit:
        raise QueueFull(
            f"{waiting} turns are queued (TURN_QUEUE_LIMIT={limit}); the event is refused so the "
            "platform delivers it again later"
        )
    return waiting


class Store:
    """All persistent state; the writes that belong together are single transactions here."""

    def __init__(self, db: Database, owner: str | None = None) -> None:
        self.db = db
        self.processes = Processes(db, owner or new_owner())
        self.conversations = Conversations(db)
        self.messages = Messages(db)
        self.turns = Turns(db)
        self.queue = TurnQueue(db, self.processes.owner)
        self.deliveries = Deliveries(db)
        self.usage = UsageLog(db)
        self.summaries = Summaries(db)
        self.pins = Pins(db)
        self.scoped = ScopedSettings(db)
        self.moderation = ModerationLog(db)
        self.remote = RemoteConversations(db)
        self.vector_stores = VectorStores(db)
        self.redactions = Redactions(db)
        self.spacing = Spacing(db)
        self.knowledge = Knowledge(db)
        self.oauth_states = OAuthStates(db)
        self.interactive = Interactive(db)
        self.audit = AuditLog(db)
        self.jobs = JobLeases(db, self.processes.owner)
        self.sessions = AdminSessions(db)
        self.reports = Reports(db)
        self.browse = Browse(db)
        self.erasure = Erasure(db)
        self.exports = Exports(db)
        self.schedules = Schedules(db, self.processes.owner)

    @classmethod
    async def open(
        cls, location: str | Path, *, busy_timeout_ms: int = 5000, pool_size: int = 10
    ) -> Store:
        """Open the database (a `DATABASE_URL` or a SQLite file) and bring its schema up to date."""
        db = connect(location, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
        await db.open()
        try:
            await db.migrate()
        except Exception:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        """Close the database."""
        await self.db.close()

    async def accept(
        self,
        event: Event,
        *,
        text: str,
        tokens: int,
        delivery_ttl: float,
        attachments: Sequence[dict[str, object]] = (),
        reply_to: str | None = None,
        run_here: bool = True,
        queue_limit: int | None = None,
    ) -> Accepted | None:
        """Claim the delivery and store the user's message and a queued turn, atomically.

        Returns None when the delivery was seen before (a redelivery), and then writes nothing.
        Turn ids grow in acceptance order within a conversation (the upsert locks its row).

        The turn is this process's to run when `run_here` and no earlier open turn of the
        conversation belongs to another process or waits unclaimed. Otherwise, when the reply can
        be rebuilt elsewhere (`reply_to`, its address as JSON), it waits in the queue unclaimed
        (`Accepted.queued`) for any process to claim; past `queue_limit` unclaimed turns,
        `QueueFull` is raised and nothing is written. A turn that must run here although another
        process has an earlier one open comes back `behind_others`.
        """
        now = time.time()
        owner = self.processes.owner

        async def store(tx: Tx) -> Accepted | None:
            if not await deliveries.claim(
                tx, event.platform.value, event.delivery_id, now, delivery_ttl
            ):
                return None
            conversation = await conversations.upsert(tx, event.key, now)
            owners = {str(row[0]) for row in await tx.fetchall(OPEN_OWNERS, (conversation.id,))}
            elsewhere = bool(owners - {owner})
            queued = reply_to is not None and (elsewhere or not run_here)
            waiting = await _waiting(tx, queue_limit) if queued else 0
            message_id = await messages.insert(
                tx,
                conversation,
                role="user",
                content=text,
                tokens=tokens,
                user_id=event.user.id,
                user_name=event.user.name,
                attachments=attachments,
            )
            row = await tx.fetchone(
                "INSERT INTO turns (conversation_id, user_message_id, delivery_id, status, "
                "created_at, user_key, owner, event, reply_to, runs) "
                "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    conversation.id,
                    message_id,
                    event.delivery_id,
                    now,
                    user_key(event),
                    "" if queued else owner,
                    event.to_json(),
                    reply_to,
                    0 if queued else 1,  # times started: a claim counts the next
                ),
            )
            assert row is not None
            turn_id = int(row[0])
            await tx.execute("UPDATE messages SET turn_id = ? WHERE id = ?", (turn_id, message_id))
            return Accepted(
                conversation,
                message_id,
                turn_id,
                behind_others=elsewhere and not queued,
                queued=queued,
                waiting=waiting,
                after_own=owner in owners,
            )

        # Read committed suffices: the delivery's unique key makes the claim once-only, and the
        # conversation row stays locked from the upsert to the commit, so turns of one
        # conversation are numbered in order and the check for earlier ones sees them all.
        return await self.db.write(store, serializable=False, urgent=True)

    async def finish_turn(
        self,
        turn_id: int,
        conversation: Conversation,
        *,
        steps: Sequence[Step],
        status: str = "done",
        error: str = "",
        only_open: bool = False,
    ) -> bool:
        """Store the turn's assistant/tool messages and close the turn (releasing its spending
        hold), atomically. With `only_open`, nothing is written unless the turn is still queued or
        running; returns whether it was written."""
        now = time.time()

        async def store(tx: Tx) -> bool:
            closed = await tx.execute(
                "UPDATE turns SET status = ?, error = ?, finished_at = ? WHERE id = ?"
                + (" AND status IN ('queued', 'running')" if only_open else ""),
                (status, storable(error[:500]), now, turn_id),
            )
            if only_open and not closed:
                return False
            for step in steps:
                await messages.insert(
                    tx,
                    conversation,
                    role=step.role,
                    content=step.content,
                    tokens=step.tokens,
                    turn_id=turn_id,
                    tool_calls=step.tool_calls,
                    tool_call_id=step.tool_call_id,
                )
            await tx.execute(RELEASE, (turn_id,))
            return True

        return await self.db.write(store, serializable=False)  # writes only this turn's rows
