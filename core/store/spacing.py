"""Actions spaced out across every process that shares the database."""

from __future__ import annotations

import time

from core.store.db import Database, Tx


class Spacing:
    """`claim(name, interval)`: take the next turn of a spaced action, or learn how long to wait."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, name: str, interval: float) -> float:
        """0 when the action may happen now (and it is recorded as happening), else the seconds
        until it may. One transaction, so two processes never both get 0 within `interval`."""

        async def take(tx: Tx) -> float:
            now = time.time()
            row = await tx.fetchone("SELECT last_at FROM spaced_actions WHERE name = ?", (name,))
            wait = 0.0 if row is None else row[0] + interval - now
            if wait > 0:
                return wait
            await tx.execute(
                "INSERT INTO spaced_actions (name, last_at) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET last_at = excluded.last_at",
                (name, now),
            )
            return 0.0

        return await self._db.write(take)
