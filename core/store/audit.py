"""The audit log: who changed which setting, purged whose messages, exported what."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from core.store.db import Database, Tx
from core.store.text import storable

INSERT = "INSERT INTO audit_log (created_at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited action."""

    id: int
    created_at: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


async def insert(tx: Tx, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
    """Record one action inside the caller's transaction (so the change and its entry commit
    together)."""
    await tx.execute(INSERT, _values(actor, action, target, detail))


def _values(actor: str, action: str, target: str, detail: dict[str, Any]) -> tuple[object, ...]:
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    return (time.time(), storable(actor), action, storable(target), storable(text))


class AuditLog:
    """Writes and reads of the audit log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
    ) -> None:
        """Record one action in its own transaction."""
        await self._db.execute(INSERT, _values(actor, action, target, detail or {}))

    async def recent(self, limit: int = 100, *, action_prefix: str = "") -> list[AuditEntry]:
        """The newest entries, optionally only actions starting with `action_prefix`."""
        sql = "SELECT id, created_at, actor, action, target, detail FROM audit_log"
        params: tuple[object, ...] = ()
        if action_prefix:
            sql += " WHERE substr(action, 1, ?) = ?"
            params = (len(action_prefix), action_prefix)
        rows = await self._db.fetchall(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [
            AuditEntry(row[0], row[1], row[2], row[3], row[4], json.loads(row[5])) for row in rows
        ]
