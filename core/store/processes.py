"""Process liveness and the turns left behind by processes that stopped."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from core.events import ConversationKey, Platform
from core.store.db import Database, Tx
from core.store.records import Conversation
from core.store.usage import RELEASE


def new_owner() -> str:
    """This process's identity in the `turns.owner` and `processes` tables: host/pid/random."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def pid_alive(owner: str) -> bool | None:
    """For an owner on this host: whether its process exists; None for other hosts."""
    host, _, rest = owner.partition("/")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """A process that shares the database, as its heartbeat row says."""

    owner: str
    started_at: float
    seen_at: float


MAX_RUNS = 3  # a turn started this often without finishing is not tried again
PENDING_APPROVAL = "SELECT 1 FROM tool_approvals WHERE turn_id = ? AND status = 'pending'"


@dataclass(frozen=True, slots=True)
class Orphan:
    """A turn whose process stopped before finishing it: queued again (`requeued`), or closed."""

    turn_id: int
    conversation: Conversation
    key: ConversationKey
    was_running: bool
    requeued: bool = False


class Processes:
    """Heartbeats, and claiming the unfinished turns of processes that stopped beating."""

    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self.owner = owner

    async def beat(self) -> None:
        """Record that this process is alive."""
        now = time.time()
        await self._db.execute(
            "INSERT INTO processes (owner, started_at, seen_at) VALUES (?, ?, ?) "
            "ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
            (self.owner, now, now),
        )

    async def alive(self, owner: str, *, stale_after: float) -> bool:
        """Whether the process `owner` still beats (and, on this host, its pid exists)."""
        if owner == self.owner:
            return True
        row = await self._db.fetchone("SELECT seen_at FROM processes WHERE owner = ?", (owner,))
        if row is None or row[0] < time.time() - stale_after:
            return False
        return pid_alive(owner) is not False

    async def all(self) -> list[ProcessRow]:
        """Every process with a heartbeat row, the most recently seen first."""
        rows = await self._db.fetchall(
            "SELECT owner, started_at, seen_at FROM processes ORDER BY seen_at DESC"
        )
        return [ProcessRow(*row) for row in rows]

    async def leave(self) -> None:
        """Forget this process (a clean stop)."""
        await self._db.execute("DELETE FROM processes WHERE owner = ?", (self.owner,))

    async def claim_orphans(
        self,
        platform: Platform,
        *,
        stale_after: float,
        alive: Callable[[str], bool | None] = pid_alive,
        notice_within: float = 86_400,
    ) -> list[Orphan]:
        """Take the platform's unfinished turns of stopped processes, in one transaction (so each
        is taken by exactly one process), and return them.

        A process has stopped when it has not beaten for `stale_after` seconds, or at once when it
        ran on this host and its pid is gone. Its turns go back to the queue unclaimed, for any
        process to run again (`requeued`; a half-shown reply is replaced then), unless they
        cannot be re-run: stored before turns carried their event, started `MAX_RUNS` times,
        a regenerated attempt, or waiting for a tool approval (which resumes them) — those are
        marked `interrupted` and returned for the notice. Turns older than `notice_within` seconds
        are closed without being returned: nobody is waiting for an answer to a day-old message.
        """
        now = time.time()

        async def claim(tx: Tx) -> list[Orphan]:
            rows = await tx.fetchall(
                "SELECT t.id, t.status, t.owner, c.id, c.key, c.epoch, c.workspace, c.channel, "
                "c.thread, p.seen_at, t.created_at, t.event IS NOT NULL AND t.reply_to IS NOT "
                "NULL, t.runs, t.attempt "
                "FROM turns t JOIN conversations c ON c.id = t.conversation_id "
                "LEFT JOIN processes p ON p.owner = t.owner "
                "WHERE t.status IN ('queued', 'running') AND c.platform = ? AND t.owner != ? "
                "AND t.owner != '' ORDER BY t.id",
                (platform.value, self.owner),
            )
            orphans: list[Orphan] = []
            closed: list[int] = []
            requeued: list[int] = []
            gone = set()
            for row in rows:
                turn_id, status, owner, cid, key, epoch, workspace, channel, thread, seen, made = (
                    tuple(row)[:11]
                )
                stopped = seen is None or seen < now - stale_after or alive(owner) is False
                if not stopped:
                    continue
                gone.add(owner)
                if made < now - notice_within:
                    closed.append(turn_id)
                    continue
                rerun = (
                    bool(row[11])
                    and int(row[12]) < MAX_RUNS
                    and int(row[13]) == 1
                    and await tx.fetchone(PENDING_APPROVAL, (turn_id,)) is None
                )
                (requeued if rerun else closed).append(turn_id)
                orphans.append(
                    Orphan(
                        turn_id,
                        Conversation(cid, key, epoch),
                        ConversationKey(platform, workspace, channel, thread),
                        status == "running",
                        requeued=rerun,
                    )
                )
            await tx.executemany(
                "UPDATE turns SET status = 'interrupted', error = 'process stopped', "
                "finished_at = ? WHERE id = ? AND status IN ('queued', 'running')",
                [(now, turn_id) for turn_id in closed],
            )
            await tx.executemany(
                "UPDATE turns SET status = 'queued', owner = '' WHERE id = ? "
                "AND status IN ('queued', 'running')",
                [(turn_id,) for turn_id in requeued],
            )
            await tx.executemany(RELEASE, [(turn_id,) for turn_id in requeued])
            await tx.executemany(
                "DELETE FROM processes WHERE owner = ?", [(owner,) for owner in gone if owner]
            )
            return orphans

        return await self._db.write(claim)
