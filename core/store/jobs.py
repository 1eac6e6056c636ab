"""Periodic jobs that one process at a time runs, decided in the database.

A job is due when its last run ended `interval` seconds ago; a process that claims it holds a
lease until it reports the run done (or until the lease runs out, when it died mid-run).
"""

from __future__ import annotations

import time

from core.store.db import Database, Tx


class JobLeases:
    """`claim` the next run of a job; `done` or `release` it after."""

    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self.owner = owner

    async def claim(self, name: str, *, interval: float, lease: float) -> bool:
        """True when the job is due and nobody holds it (this process neither): it is now ours
        until `lease` seconds from now. One transaction, so two processes never both get True."""

        async def take(tx: Tx) -> bool:
            now = time.time()
            row = await tx.fetchone(
                "SELECT lease_until, last_done_at FROM job_leases WHERE name = ?", (name,)
            )
            if row is not None and (row[0] > now or row[1] + interval > now):
                return False  # running somewhere (this process too), or not due yet
            await tx.execute(
                "INSERT INTO job_leases (name, owner, lease_until, last_done_at) "
                "VALUES (?, ?, ?, 0) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "lease_until = excluded.lease_until",
                (name, self.owner, now + lease),
            )
            return True

        return await self._db.write(take)

    async def done(self, name: str) -> None:
        """The run this process claimed finished: the next is due `interval` from now."""
        await self._db.execute(
            "UPDATE job_leases SET lease_until = 0, last_done_at = ? WHERE name = ? AND owner = ?",
            (time.time(), name, self.owner),
        )

    async def release(self, name: str) -> None:
        """The run failed: give the lease back so the next attempt need not wait for it."""
        await self._db.execute(
            "UPDATE job_leases SET lease_until = 0 WHERE name = ? AND owner = ?",
            (name, self.owner),
        )

    async def last_done(self, name: str) -> float | None:
        """When the job last finished, or None if it never did."""
        row = await self._db.fetchone("SELECT last_done_at FROM job_leases WHERE name = ?", (name,))
        return float(row[0]) if row and row[0] else None
