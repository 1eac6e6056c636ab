"""Settings stored per scope (workspace, channel, thread), edited by admins at run time."""

from __future__ import annotations

import json
import time
from typing import Any

from core.events import ConversationKey
from core.store import audit
from core.store.db import Database, Tx
from core.store.text import storable

SELECT_ONE = "SELECT value FROM scoped_settings WHERE scope = ? AND name = ?"


def scope_chain(key: ConversationKey) -> tuple[str, str, str]:
    """The scopes that apply to a conversation, broadest first."""
    workspace = f"workspace:{key.platform}:{key.workspace}"
    channel = f"channel:{key.platform}:{key.workspace}:{key.channel}"
    return workspace, channel, f"thread:{key}"


class ScopedSettings:
    """Name/value overrides per scope; narrower scopes win."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def layers(self, key: ConversationKey) -> list[dict[str, Any]]:
        """The overrides that apply to a conversation: workspace, channel, thread (in that order)."""
        chain = scope_chain(key)
        rows = await self._db.fetchall(
            "SELECT scope, name, value FROM scoped_settings WHERE scope IN (?, ?, ?)", chain
        )
        layers: list[dict[str, Any]] = [{} for _ in chain]
        rank = {scope: i for i, scope in enumerate(chain)}
        for row in rows:
            layers[rank[row["scope"]]][row["name"]] = json.loads(row["value"])
        return layers

    async def set(
        self, scope: str, name: str, value: Any, by: str, *, via: str = "command"
    ) -> None:
        """Set one override (upsert), recorded in the audit log with the value it replaced."""

        async def store(tx: Tx) -> None:
            old = await tx.fetchone(SELECT_ONE, (scope, name))
            await tx.execute(
                "INSERT INTO scoped_settings (scope, name, value, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, name) DO UPDATE SET "
                "value = excluded.value, updated_by = excluded.updated_by, "
                "updated_at = excluded.updated_at",
                (scope, name, json.dumps(value), storable(by), time.time()),
            )
            detail = {"name": name, "old": json.loads(old[0]) if old else None, "new": value}
            await audit.insert(tx, by, "setting.set", scope, {**detail, "via": via})

        await self._db.write(store)

    async def clear(self, scope: str, name: str, by: str = "", *, via: str = "command") -> bool:
        """Remove one override (audited); True if it existed."""

        async def remove(tx: Tx) -> bool:
            old = await tx.fetchone(
                "DELETE FROM scoped_settings WHERE scope = ? AND name = ? RETURNING value",
                (scope, name),
            )
            if old is None:
                return False
            detail = {"name": name, "old": json.loads(old[0]), "new": None, "via": via}
            await audit.insert(tx, by, "setting.clear", scope, detail)
            return True

        return await self._db.write(remove)

    async def in_scope(self, scope: str) -> dict[str, Any]:
        """The overrides set directly on one scope."""
        rows = await self._db.fetchall(
            "SELECT name, value FROM scoped_settings WHERE scope = ? ORDER BY name", (scope,)
        )
        return {row["name"]: json.loads(row["value"]) for row in rows}

    async def in_workspace(self, platform: str, workspace: str) -> dict[str, dict[str, Any]]:
        """Every override of a workspace and its channels and threads, by scope."""
        rows = await self._db.fetchall(
            "SELECT scope, name, value FROM scoped_settings WHERE scope = ? OR scope LIKE ? "
            "OR scope LIKE ? ORDER BY scope, name",
            (
                f"workspace:{platform}:{workspace}",
                f"channel:{platform}:{workspace}:%",
                f"thread:{platform}:{workspace}:%",
            ),
        )
        scopes: dict[str, dict[str, Any]] = {}
        for row in rows:
            scopes.setdefault(row["scope"], {})[row["name"]] = json.loads(row["value"])
        return scopes

    async def scopes(self) -> list[str]:
        """Every scope that has an override."""
        rows = await self._db.fetchall("SELECT DISTINCT scope FROM scoped_settings ORDER BY scope")
        return [row[0] for row in rows]
