"""Feedback on answers: one 👍 or 👎 (with an optional comment) per person and turn."""

from __future__ import annotations

import time
from typing import Literal

from core.store.db import Database
from core.store.text import storable

Value = Literal["positive", "negative"]


class FeedbackLog:
    """Writes of feedback; the reports and exports read it in their own modules."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, turn_id: int, user_id: str, value: Value, comment: str = "") -> None:
        """Store (or change) one person's feedback on one turn's answer."""
        await self._db.execute(
            "INSERT INTO feedback (turn_id, user_id, value, comment, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (turn_id, user_id) DO UPDATE SET "
            "value = excluded.value, comment = excluded.comment, created_at = excluded.created_at",
            (turn_id, storable(user_id), value, storable(comment), time.time()),
        )
