"""Processed platform delivery ids, kept for a while so that redeliveries are no-ops."""

from __future__ import annotations

import time

from core.store.db import Database, Tx

CLAIM = (
    "INSERT INTO deliveries (platform, delivery_id, received_at, expires_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)


async def claim(tx: Tx, platform: str, delivery_id: str, now: float, ttl: float) -> bool:
    """Record the delivery inside the caller's transaction; False when it was seen before."""
    return await tx.execute(CLAIM, (platform, delivery_id, now, now + ttl)) == 1


class Deliveries:
    """Housekeeping for the delivery table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def seen(self, platform: str, delivery_id: str) -> bool:
        """True when this delivery was already accepted."""
        row = await self._db.fetchone(
            "SELECT 1 FROM deliveries WHERE platform = ? AND delivery_id = ?",
            (platform, delivery_id),
        )
        return row is not None

    async def purge_expired(self, now: float | None = None) -> int:
        """Forget deliveries past their expiry; returns how many."""
        return await self._db.execute(
            "DELETE FROM deliveries WHERE expires_at < ?", (now or time.time(),)
        )
