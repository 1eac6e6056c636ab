"""OAuth `state` values: issued by an install page, consumed once by the redirect that returns."""

from __future__ import annotations

import time

from core.store.db import Database


class OAuthStates:
    """Issue a state that lives `ttl` seconds; consume it at most once, in any process."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def issue(self, state: str, ttl: float) -> None:
        """Remember `state` until `ttl` seconds from now (and forget expired ones)."""
        now = time.time()
        await self._db.execute("DELETE FROM oauth_states WHERE expires_at < ?", (now,))
        await self._db.execute(
            "INSERT INTO oauth_states (state, expires_at) VALUES (?, ?)", (state, now + ttl)
        )

    async def consume(self, state: str) -> bool:
        """True once for a state that was issued and has not expired; False for a forged,
        replayed or expired one. One statement, so two redirects with one state cannot both win."""
        taken = await self._db.execute(
            "DELETE FROM oauth_states WHERE state = ? AND expires_at >= ?", (state, time.time())
        )
        return taken == 1
