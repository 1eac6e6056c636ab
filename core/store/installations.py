"""Installations of the app into workspaces (OAuth), with their tokens sealed at rest.

A row is keyed by platform, enterprise and team: an ordinary install has both ids (enterprise ''
outside Enterprise Grid), an org-wide Enterprise Grid install has the enterprise and team ''.
Every token column holds `SecretBox.seal(token)`: the database never sees a token. A token
refresh is claimed on the row first, so of several processes only one refreshes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.crypto import SecretBox
from core.store.db import Database, Row, Tx

_TOKENS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
_COLUMNS = (
    "app_id",
    "enterprise_name",
    "enterprise_url",
    "team_name",
    "bot_id",
    "bot_user_id",
    "bot_scopes",
    "bot_token",
    "bot_refresh_token",
    "bot_token_expires_at",
    "installer_user_id",
    "user_scopes",
    "user_token",
    "user_refresh_token",
    "user_token_expires_at",
    "token_type",
)
_KEY = "platform = ? AND enterprise_id = ? AND team_id = ?"
_FIELDS = (
    "enterprise_id, team_id, org_wide, installed_at, revoked_at, revoked_reason, "
    + ", ".join(_COLUMNS)
)
_SELECT = f"SELECT {_FIELDS} FROM installations WHERE {_KEY}"
_SELECT_TEAM = (
    f"SELECT {_FIELDS} FROM installations WHERE platform = ? AND team_id = ? AND org_wide = 0 "
    "ORDER BY installed_at DESC LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class InstallationKey:
    """Which installation: the platform, the enterprise ('' for none) and the team ('' for an
    org-wide install)."""

    platform: str
    enterprise_id: str
    team_id: str

    @classmethod
    def of(
        cls, platform: str, enterprise_id: str | None, team_id: str | None, *, org_wide: bool
    ) -> InstallationKey:
        """The key for the ids a platform reports; an org-wide install ignores the team."""
        return cls(platform, enterprise_id or "", "" if org_wide else team_id or "")

    @property
    def params(self) -> tuple[str, str, str]:
        return (self.platform, self.enterprise_id, self.team_id)

    @property
    def org_wide(self) -> bool:
        return bool(self.enterprise_id) and not self.team_id


@dataclass(frozen=True, slots=True)
class Installation:
    """One installation with its tokens in the clear (in memory only)."""

    key: InstallationKey
    app_id: str | None = None
    enterprise_name: str | None = None
    enterprise_url: str | None = None
    team_name: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_scopes: str | None = None
    bot_token: str | None = None
    bot_refresh_token: str | None = None
    bot_token_expires_at: int | None = None
    installer_user_id: str | None = None
    user_scopes: str | None = None
    user_token: str | None = None
    user_refresh_token: str | None = None
    user_token_expires_at: int | None = None
    token_type: str | None = None
    installed_at: float = 0.0
    revoked_at: float | None = None
    revoked_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class Installations:
    """Save, find, claim for refresh, mark revoked and delete installations."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box

    def _sealed(self, installation: Installation) -> list[object]:
        values = []
        for column in _COLUMNS:
            value = getattr(installation, column)
            values.append(self._box.seal_optional(value) if column in _TOKENS else value)
        return values

    def _opened(self, key: InstallationKey, row: Row) -> Installation:
        fields: dict[str, object] = {}
        for index, column in enumerate(_COLUMNS, start=6):
            value = row[index]
            fields[column] = self._box.open_optional(value) if column in _TOKENS else value
        return Installation(
            key=key,
            installed_at=float(row[3]),
            revoked_at=row[4],
            revoked_reason=row[5],
            **fields,  # type: ignore[arg-type]
        )

    async def save(self, installation: Installation) -> None:
        """Insert or replace the installation (a reinstall clears a revocation and any claim)."""
        now = time.time()
        columns = ", ".join(_COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS)
        key = installation.key
        await self._db.execute(
            f"INSERT INTO installations (platform, enterprise_id, team_id, org_wide, {columns}, "
            f"installed_at, updated_at) VALUES (?, ?, ?, ?, {marks}, ?, ?) "
            f"ON CONFLICT (platform, enterprise_id, team_id) DO UPDATE SET {updates}, "
            "org_wide = excluded.org_wide, installed_at = excluded.installed_at, "
            "updated_at = excluded.updated_at, revoked_at = NULL, revoked_reason = NULL, "
            "refresh_claimed_until = NULL, refresh_claimed_by = NULL",
            (*key.params, int(key.org_wide), *self._sealed(installation), now, now),
        )

    async def find(self, key: InstallationKey) -> Installation | None:
        """The installation under `key`, revoked or not; None when there is none."""
        row = await self._db.fetchone(_SELECT, key.params)
        return None if row is None else self._opened(key, row)

    async def find_for_team(self, platform: str, team_id: str) -> Installation | None:
        """The installation serving a workspace: its own, else its organization's org-wide one
        (for a workspace seen under it: `remember_team`)."""
        own = await self._db.fetchone(_SELECT_TEAM, (platform, team_id))
        if own is not None:
            return self._opened(InstallationKey(platform, own[0], team_id), own)
        row = await self._db.fetchone(
            "SELECT enterprise_id FROM installation_teams WHERE platform = ? AND team_id = ?",
            (platform, team_id),
        )
        if row is None:
            return None
        return await self.find(InstallationKey(platform, str(row[0]), ""))

    async def remember_team(self, platform: str, team_id: str, enterprise_id: str) -> None:
        """Note that `team_id` belongs to `enterprise_id` (for replies after a restart)."""
        await self._db.execute(
            "INSERT INTO installation_teams (platform, team_id, enterprise_id) VALUES (?, ?, ?) "
            "ON CONFLICT (platform, team_id) DO UPDATE SET enterprise_id = excluded.enterprise_id",
            (platform, team_id, enterprise_id),
        )

    async def delete(self, key: InstallationKey) -> bool:
        """Forget the installation and its tokens (uninstalled); True if there was one."""

        async def remove(tx: Tx) -> bool:
            removed = await tx.execute(f"DELETE FROM installations WHERE {_KEY}", key.params)
            if key.org_wide:
                await tx.execute(
                    "DELETE FROM installation_teams WHERE platform = ? AND enterprise_id = ?",
                    (key.platform, key.enterprise_id),
                )
            return removed > 0

        return await self._db.write(remove, serializable=False)

    async def forget_user_token(self, key: InstallationKey, user_id: str) -> bool:
        """Drop the installer's user token (revoked) and keep the bot's; True if it was there."""
        changed = await self._db.execute(
            "UPDATE installations SET user_token = NULL, user_refresh_token = NULL, "
            f"user_token_expires_at = NULL, updated_at = ? WHERE {_KEY} "
            "AND installer_user_id = ? AND user_token IS NOT NULL",
            (time.time(), *key.params, user_id),
        )
        return changed > 0

    async def mark_revoked(self, key: InstallationKey, reason: str) -> bool:
        """Record that the platform refused the bot token (`invalid_auth`, `token_revoked`);
        True the first time. The row stays, without tokens, until uninstalled or reinstalled."""
        changed = await self._db.execute(
            "UPDATE installations SET revoked_at = ?, revoked_reason = ?, bot_token = NULL, "
            "bot_refresh_token = NULL, user_token = NULL, user_refresh_token = NULL, "
            f"updated_at = ? WHERE {_KEY} AND revoked_at IS NULL",
            (time.time(), reason[:200], time.time(), *key.params),
        )
        return changed > 0

    async def claim_refresh(
        self, key: InstallationKey, *, expires_at: int | None, owner: str, hold: float
    ) -> bool:
        """Claim the refresh of the token that expires at `expires_at` for `hold` seconds; False
        when another process holds the claim, or already refreshed (the expiry moved on)."""
        now = time.time()
        claimed = await self._db.execute(
            "UPDATE installations SET refresh_claimed_until = ?, refresh_claimed_by = ? "
            f"WHERE {_KEY} AND revoked_at IS NULL AND COALESCE(bot_token_expires_at, 0) = ? "
            "AND (refresh_claimed_until IS NULL OR refresh_claimed_until < ?)",
            (now + hold, owner, *key.params, expires_at or 0, now),
        )
        return claimed == 1

    async def finish_refresh(self, refreshed: Installation, *, owner: str) -> bool:
        """Store the refreshed tokens and drop the claim, if `owner` still holds it."""
        rotating = (
            "bot_token",
            "bot_refresh_token",
            "bot_token_expires_at",
            "user_token",
            "user_refresh_token",
            "user_token_expires_at",
        )
        sealed = dict(zip(_COLUMNS, self._sealed(refreshed), strict=True))
        changed = await self._db.execute(
            "UPDATE installations SET "
            + ", ".join(f"{c} = ?" for c in rotating)
            + ", updated_at = ?, refresh_claimed_until = NULL, refresh_claimed_by = NULL "
            f"WHERE {_KEY} AND refresh_claimed_by = ?",
            (*(sealed[c] for c in rotating), time.time(), *refreshed.key.params, owner),
        )
        return changed == 1

    async def release_refresh(self, key: InstallationKey, *, owner: str) -> None:
        """Give up a claim (the refresh failed) so another attempt may be made."""
        await self._db.execute(
            "UPDATE installations SET refresh_claimed_until = NULL, refresh_claimed_by = NULL "
            f"WHERE {_KEY} AND refresh_claimed_by = ?",
            (*key.params, owner),
        )

    async def count(self, platform: str) -> int:
        """How many live (not revoked) installations the platform has."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) FROM installations WHERE platform = ? AND revoked_at IS NULL",
            (platform,),
        )
        return int(row[0]) if row else 0
