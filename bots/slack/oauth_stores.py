"""Bolt's installation and OAuth state stores over our database (core/store).

`SlackInstallationStore` is the `AsyncInstallationStore` Bolt's OAuth flow saves into and its
token rotation reads from; the tokens are sealed with SECRET_KEY before they reach a row.
`SlackStateStore` is the `AsyncOAuthStateStore` the install page issues states from and the
redirect consumes them in (once, across every process sharing the database).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.installation_store import Installation as BoltInstallation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from core.store.installations import Installation, InstallationKey, Installations
from core.store.oauth_states import OAuthStates

PLATFORM = "slack"
log = logging.getLogger(__name__)


def key_of(
    enterprise_id: str | None, team_id: str | None, *, is_enterprise_install: bool | None
) -> InstallationKey:
    """Our key for the ids Bolt passes (an org-wide install ignores the team, as Bolt's own
    stores do)."""
    return InstallationKey.of(
        PLATFORM, enterprise_id, team_id, org_wide=bool(is_enterprise_install)
    )


def _scopes(value: str | Sequence[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    return ",".join(value) or None


def from_bolt(installation: BoltInstallation) -> Installation:
    """Our record of a Bolt installation (tokens still in the clear: the store seals them)."""
    return Installation(
        key=key_of(
            installation.enterprise_id,
            installation.team_id,
            is_enterprise_install=installation.is_enterprise_install,
        ),
        app_id=installation.app_id,
        enterprise_name=installation.enterprise_name,
        enterprise_url=installation.enterprise_url,
        team_name=installation.team_name,
        bot_id=installation.bot_id,
        bot_user_id=installation.bot_user_id,
        bot_scopes=_scopes(installation.bot_scopes),
        bot_token=installation.bot_token,
        bot_refresh_token=installation.bot_refresh_token,
        bot_token_expires_at=installation.bot_token_expires_at,
        installer_user_id=installation.user_id,
        user_scopes=_scopes(installation.user_scopes),
        user_token=installation.user_token,
        user_refresh_token=installation.user_refresh_token,
        user_token_expires_at=installation.user_token_expires_at,
        token_type=installation.token_type,
        installed_at=float(installation.installed_at),
    )


def to_bolt(installation: Installation) -> BoltInstallation:
    """Bolt's installation for our record."""
    key = installation.key
    return BoltInstallation(
        app_id=installation.app_id,
        enterprise_id=key.enterprise_id or None,
        enterprise_name=installation.enterprise_name,
        enterprise_url=installation.enterprise_url,
        team_id=key.team_id or None,
        team_name=installation.team_name,
        bot_token=installation.bot_token,
        bot_id=installation.bot_id,
        bot_user_id=installation.bot_user_id,
        bot_scopes=installation.bot_scopes or "",
        bot_refresh_token=installation.bot_refresh_token,
        bot_token_expires_at=installation.bot_token_expires_at,
        user_id=installation.installer_user_id or "",
        user_token=installation.user_token,
        user_scopes=installation.user_scopes or "",
        user_refresh_token=installation.user_refresh_token,
        user_token_expires_at=installation.user_token_expires_at,
        is_enterprise_install=key.org_wide,
        token_type=installation.token_type,
        installed_at=installation.installed_at,
    )


class SlackInstallationStore(AsyncInstallationStore):
    """Bolt's installation store over `core.store.installations` (one row per workspace or
    organization; the bot's installation, with the installer's user token when one was granted).
    A revoked installation is found by nobody: its team is not installed until reinstalled."""

    def __init__(self, installations: Installations) -> None:
        self.installations = installations

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: BoltInstallation) -> None:
        await self.installations.save(from_bolt(installation))

    async def async_save_bot(self, bot: Bot) -> None:
        key = key_of(
            bot.enterprise_id, bot.team_id, is_enterprise_install=bot.is_enterprise_install
        )
        found = await self.installations.find(key)
        if found is None:
            return
        await self.async_save(
            _with_bot(to_bolt(found), bot),
        )

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        found = await self.async_find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        return found.to_bot() if found is not None and found.bot_token else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> BoltInstallation | None:
        key = key_of(enterprise_id, team_id, is_enterprise_install=is_enterprise_install)
        found = await self.installations.find(key)
        if found is None or found.revoked:
            return None
        if user_id is not None and found.installer_user_id != user_id:
            return None  # no per-user installations: only the installer's is kept
        return to_bolt(found)

    async def async_delete_bot(
        self, *, enterprise_id: str | None, team_id: str | None, **_: Any
    ) -> None:
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        **_: Any,
    ) -> None:
        for org_wide in (False, True):
            key = key_of(enterprise_id, team_id, is_enterprise_install=org_wide)
            if user_id is None:
                await self.installations.delete(key)
            else:
                await self.installations.forget_user_token(key, user_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)


def _with_bot(installation: BoltInstallation, bot: Bot) -> BoltInstallation:
    """The installation with the bot's (refreshed) tokens."""
    installation.bot_token = bot.bot_token
    installation.bot_refresh_token = bot.bot_refresh_token
    installation.bot_token_expires_at = bot.bot_token_expires_at
    return installation


class SlackStateStore(AsyncOAuthStateStore):
    """OAuth states in the database: a random value per install page, consumed once."""

    def __init__(self, states: OAuthStates, *, expiration_seconds: int) -> None:
        self.states = states
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        await self.states.issue(state, self.expiration_seconds)
        return state

    async def async_consume(self, state: str) -> bool:
        return bool(state) and await self.states.consume(state)
