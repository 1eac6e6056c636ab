"""Feedback, attempts (regenerate), stopped replies and pending tool approvals."""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.events import ConversationKey
from core.store.db import Database, Row, Tx
from core.store.text import storable

APPROVAL_COLUMNS = (
    "id, turn_id, conversation_id, attempt, call_id, tool, arguments, requested_by, status, "
    "decided_by, owner, resumed_by, created_at, expires_at, hosted_server"
)


@dataclass(frozen=True, slots=True)
class TurnState:
    """What a click needs to know about the turn it refers to."""

    turn_id: int
    conversation_id: int
    key: ConversationKey
    status: str
    attempt: int
    stopped: bool
    owner: str
    user_message_id: int
    user_id: str
    user_name: str
    text: str
    current_epoch: bool  # False after /reset: the turn is no longer part of the conversation


@dataclass(frozen=True, slots=True)
class Approval:
    """One tool call waiting for (or past) a person's decision."""

    id: int
    turn_id: int
    conversation_id: int
    attempt: int
    call_id: str
    tool: str
    arguments: str
    requested_by: str
    status: str
    decided_by: str
    owner: str
    resumed_by: str
    created_at: float
    expires_at: float
    hosted_server: str = ""  # a hosted MCP server's approval request, not a call we run


@dataclass(frozen=True, slots=True)
class ChannelFeedback:
    """Ratings of one channel's replies."""

    channel: str
    positive: int
    negative: int

    @property
    def rate(self) -> float:
        """The share of positive ratings."""
        total = self.positive + self.negative
        return self.positive / total if total else 0.0


class Interactive:
    """Reads and conditional writes behind reply controls and tool approvals."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- turns ------------------------------------------------------------------------------

    async def turn(self, turn_id: int) -> TurnState | None:
        """The turn, its conversation and its user's message; None when it does not exist."""
        row = await self._db.fetchone(
            "SELECT t.id, t.conversation_id, c.key, t.status, t.attempt, t.stopped, t.owner, "
            "t.user_message_id, m.user_id, m.user_name, m.content, m.epoch = c.epoch "
            "FROM turns t JOIN conversations c ON c.id = t.conversation_id "
            "JOIN messages m ON m.id = t.user_message_id WHERE t.id = ?",
            (turn_id,),
        )
        if row is None:
            return None
        return TurnState(
            turn_id=int(row[0]),
            conversation_id=int(row[1]),
            key=ConversationKey.parse(row[2]),
            status=row[3],
            attempt=int(row[4]),
            stopped=bool(row[5]),
            owner=row[6],
            user_message_id=int(row[7]),
            user_id=row[8],
            user_name=row[9],
            text=row[10],
            current_epoch=bool(row[11]),
        )

    async def reopen(self, turn_id: int, attempt: int, owner: str) -> int | None:
        """Start a new attempt of a finished turn, once: its answers so far become superseded.

        Conditional on the attempt the click saw and on the turn being finished, so a second
        click (or one on another process) changes nothing; returns the new attempt or None.
        """
        return await self._new_attempt(turn_id, attempt, owner, ("done", "failed", "interrupted"))

    async def take_over(self, turn_id: int, attempt: int, owner: str) -> int | None:
        """Take a turn whose process stopped (waiting for an approval) to resume it here, once:
        what recovery wrote for it (the interrupted notice) becomes superseded."""
        return await self._new_attempt(
            turn_id, attempt, owner, ("queued", "running", "interrupted")
        )

    async def _new_attempt(
        self, turn_id: int, attempt: int, owner: str, statuses: tuple[str, str, str]
    ) -> int | None:
        async def start(tx: Tx) -> int | None:
            changed = await tx.execute(
                "UPDATE turns SET status = 'queued', attempt = attempt + 1, stopped = 0, "
                "error = '', finished_at = NULL, owner = ? WHERE id = ? AND attempt = ? "
                "AND status IN (?, ?, ?)",
                (owner, turn_id, attempt, *statuses),
            )
            if not changed:
                return None
            await tx.execute(
                "UPDATE messages SET superseded = 1 WHERE turn_id = ? AND role != 'user' "
                "AND superseded = 0",
                (turn_id,),
            )
            return attempt + 1

        return await self._db.write(start, serializable=False)

    async def mark_stopped(self, turn_id: int) -> None:
        """The reply was stopped by a person; its partial answer is the turn's answer."""
        await self._db.execute("UPDATE turns SET stopped = 1 WHERE id = ?", (turn_id,))

    async def request_stop(self, turn_id: int) -> bool:
        """Ask whichever process runs the turn to stop it; False when it is not running."""
        changed = await self._db.execute(
            "UPDATE turns SET stopped = 1 WHERE id = ? AND status IN ('queued', 'running')",
            (turn_id,),
        )
        return bool(changed)

    async def stop_requested(self, turn_id: int) -> bool:
        """Whether a stop was asked for the (running) turn."""
        row = await self._db.fetchone("SELECT stopped FROM turns WHERE id = ?", (turn_id,))
        return bool(row and row[0])

    # -- feedback ---------------------------------------------------------------------------

    async def rate(self, turn_id: int, user_id: str, value: str, comment: str = "") -> None:
        """Store a person's 👍 or 👎 on a turn's answer; the last one wins (an earlier comment is
        kept unless a new one is given)."""
        await self._db.execute(
            "INSERT INTO feedback (turn_id, user_id, value, comment, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (turn_id, user_id) DO UPDATE SET "
            "value = excluded.value, comment = CASE WHEN excluded.comment = '' THEN feedback.comment "
            "ELSE excluded.comment END, "
            "created_at = excluded.created_at",
            (
                turn_id,
                storable(user_id),
                value,
                storable(comment),
                time.time(),
            ),
        )

    async def rating(self, turn_id: int, user_id: str) -> tuple[str, str] | None:
        """A user's rating of a turn: (value, comment)."""
        row = await self._db.fetchone(
            "SELECT value, comment FROM feedback WHERE turn_id = ? AND user_id = ?",
            (turn_id, user_id),
        )
        return (row[0], row[1]) if row else None

    async def feedback_by_channel(
        self, platform: str, workspace: str, since: float
    ) -> list[ChannelFeedback]:
        """Positive and negative ratings per channel of a workspace since a time."""
        rows = await self._db.fetchall(
            "SELECT c.channel, SUM(CASE WHEN f.value = 'positive' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN f.value = 'negative' THEN 1 ELSE 0 END) FROM feedback f "
            "JOIN turns t ON t.id = f.turn_id JOIN conversations c ON c.id = t.conversation_id "
            "WHERE c.platform = ? AND c.workspace = ? AND f.created_at >= ? "
            "GROUP BY c.channel ORDER BY c.channel",
            (platform, workspace, since),
        )
        return [ChannelFeedback(row[0], int(row[1]), int(row[2])) for row in rows]

    async def channels_of(
        self, platform: str, workspace: str, user_id: str, limit: int = 10
    ) -> list[str]:
        """The channels where a user talks to the bot, most recent first."""
        rows = await self._db.fetchall(
            "SELECT c.channel, MAX(m.created_at) FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.platform = ? AND c.workspace = ? AND m.user_id = ? AND m.role = 'user' "
            "GROUP BY c.channel ORDER BY MAX(m.created_at) DESC LIMIT ?",
            (platform, workspace, user_id, limit),
        )
        return [row[0] for row in rows]

    # -- tool approvals ---------------------------------------------------------------------

    async def ask_approval(
        self,
        *,
        turn_id: int,
        conversation_id: int,
        attempt: int,
        call_id: str,
        tool: str,
        arguments: str,
        requested_by: str,
        owner: str,
        expires_at: float,
        hosted_server: str = "",
    ) -> int:
        """Persist a pending tool call; returns its id."""
        row = await self._db.write(
            lambda tx: tx.fetchone(
                "INSERT INTO tool_approvals (turn_id, conversation_id, attempt, call_id, tool, "
                "arguments, requested_by, owner, created_at, expires_at, hosted_server) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    turn_id,
                    conversation_id,
                    attempt,
                    storable(call_id),
                    storable(tool),
                    storable(arguments),
                    storable(requested_by),
                    owner,
                    time.time(),
                    expires_at,
                    hosted_server,
                ),
            ),
            serializable=False,
        )
        assert row is not None
        return int(row[0])

    async def approval(self, approval_id: int) -> Approval | None:
        """One approval by id."""
        row = await self._db.fetchone(
            f"SELECT {APPROVAL_COLUMNS} FROM tool_approvals WHERE id = ?", (approval_id,)
        )
        return _approval(row) if row else None

    async def decide(self, approval_id: int, status: str, by: str) -> bool:
        """Decide a pending approval, exactly once across processes; True for the one decision
        that counted."""
        now = time.time()
        sql = (
            "UPDATE tool_approvals SET status = ?, decided_by = ?, decided_at = ? "
            "WHERE id = ? AND status = 'pending'"
        )
        params: tuple[object, ...] = (status, storable(by), now, approval_id)
        if status != "expired":  # a click past the deadline is too late, even before the sweep
            sql += " AND expires_at > ?"
            params += (now,)
        changed = await self._db.execute(sql, params)
        return bool(changed)

    async def claim_resume(self, approval_id: int, owner: str) -> bool:
        """Take over an approved call whose turn's process is gone, exactly once."""
        changed = await self._db.execute(
            "UPDATE tool_approvals SET resumed_by = ? WHERE id = ? AND status != 'pending' "
            "AND resumed_by = ''",
            (owner, approval_id),
        )
        return bool(changed)


def _approval(row: Row) -> Approval:
    return Approval(
        id=int(row[0]),
        turn_id=int(row[1]),
        conversation_id=int(row[2]),
        attempt=int(row[3]),
        call_id=row[4],
        tool=row[5],
        arguments=row[6],
        requested_by=row[7],
        status=row[8],
        decided_by=row[9],
        owner=row[10],
        resumed_by=row[11],
        created_at=float(row[12]),
        expires_at=float(row[13]),
        hosted_server=row[14],
    )
