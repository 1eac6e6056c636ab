"""Bolt's authorize step for many workspaces: each request gets its own team's token.

`TeamAuthorize` finds the installation of the request's team (or of its Enterprise Grid
organization for an org-wide install) in the database and answers Bolt with its bot token, so
every listener's `client` carries that team's token; it leaves the installation in the context,
where `Workspaces.bind` gives it to the client of the workspace the event came from. No
`auth.test` per request: the installation already names the bot.

With token rotation (the installation has a refresh token), a token that expires within
`refresh_before` seconds is refreshed by Bolt's `AsyncTokenRotator` (`oauth.v2.access` with
`grant_type=refresh_token`), exactly once across every process on the database: the refresh is
claimed on the installation's row first. A process that loses the claim keeps using the current
token, which is still valid (refreshes start long before expiry); only when it has already
expired does it wait, briefly, for the winner's new one.

When the app turns token rotation on (`SLACK_TOKEN_ROTATION`), installations made before still
hold long-lived tokens: each is exchanged for an expiring one and a refresh token
(`oauth.v2.exchange`) at its first use, claimed the same way, so once across processes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import structlog
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator

from bots.slack.oauth_stores import from_bolt, key_of, to_bolt
from bots.slack.workspaces import INSTALLATION, REVOKED_ERRORS, Workspaces
from core.store.installations import Installation, InstallationKey, Installations

log = structlog.get_logger(__name__)

REFRESH_BEFORE_SECONDS = 7200  # Bolt's default: refresh two hours before expiry
CLAIM_SECONDS = 30.0  # how long a refresh claim holds if its process dies mid-refresh
WAIT_FOR_REFRESH_SECONDS = 10.0
_DEAD_REFRESH = REVOKED_ERRORS | {"invalid_refresh_token", "invalid_grant"}


class TeamAuthorize(AsyncAuthorize):
    """The installation of the request's team, refreshed when due; None when there is none."""

    def __init__(
        self,
        workspaces: Workspaces,
        installations: Installations,
        rotator: AsyncTokenRotator,
        *,
        owner: str,
        refresh_before: float = REFRESH_BEFORE_SECONDS,
        exchange_long_lived: bool = False,
    ) -> None:
        self._workspaces = workspaces
        self._installations = installations
        self._rotator = rotator
        self._owner = owner
        self._refresh_before = refresh_before
        self._exchange_long_lived = exchange_long_lived
        self._not_exchanged: set[InstallationKey] = set()  # refused here: not asked again

    async def __call__(  # type: ignore[override]
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **_: object,
    ) -> AuthorizeResult | None:
        org_wide = bool(context.is_enterprise_install)
        key = key_of(enterprise_id, team_id, is_enterprise_install=org_wide)
        team = team_id or enterprise_id or ""
        found = await self._installations.find(key)
        if found is None or found.revoked or not found.bot_token:
            reason = "revoked" if found is not None else "no installation"
            self._workspaces.not_installed(team, enterprise_id, reason)
            return None
        fresh = await self.fresh(found)
        if fresh is None:
            return None
        context[INSTALLATION] = fresh  # for `Workspaces.bind`, which knows the event's workspace
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            team=fresh.team_name,
            url=fresh.enterprise_url,
            bot_user_id=fresh.bot_user_id,
            bot_id=fresh.bot_id,
            bot_token=fresh.bot_token,
            bot_scopes=fresh.bot_scopes,
            user_token=fresh.user_token if fresh.installer_user_id == user_id else None,
        )

    async def fresh(self, installation: Installation) -> Installation | None:
        """The installation with a token good for a while: as it is, or refreshed (by this
        process or another); None when its token is dead."""
        expires = installation.bot_token_expires_at
        if installation.bot_refresh_token is None or expires is None:
            if self._exchange_long_lived and installation.key not in self._not_exchanged:
                return await self._exchanged(installation)
            return installation
        now = time.time()
        if expires > now + self._refresh_before:
            return installation
        key = installation.key
        claimed = await self._installations.claim_refresh(
            key, expires_at=expires, owner=self._owner, hold=CLAIM_SECONDS
        )
        if not claimed:
            return (
                installation if expires > now + 1 else await self._refreshed_elsewhere(installation)
            )
        try:
            rotated = await self._rotator.perform_token_rotation(
                installation=to_bolt(installation),
                minutes_before_expiration=max(1, int(self._refresh_before // 60)),
            )
        except SlackTokenRotationError as exc:
            await self._installations.release_refresh(key, owner=self._owner)
            code = _error_code(exc.api_error)
            log.error("slack_token_refresh_failed", team=key.team_id, error=code)
            if code in _DEAD_REFRESH:
                await self._installations.mark_revoked(key, code)
                self._workspaces.forget(key)
                return None
            return installation if expires > now else None
        if rotated is None:
            await self._installations.release_refresh(key, owner=self._owner)
            return installation
        refreshed = from_bolt(rotated)
        await self._installations.finish_refresh(refreshed, owner=self._owner)
        log.info(
            "slack_token_refreshed",
            enterprise=key.enterprise_id or None,
            team=key.team_id or None,
            expires_in_s=int((refreshed.bot_token_expires_at or now) - now),
        )
        return refreshed

    async def _exchanged(self, installation: Installation) -> Installation | None:
        """A long-lived token exchanged for an expiring one (by this process or another)."""
        key = installation.key
        claimed = await self._installations.claim_refresh(
            key, expires_at=None, owner=self._owner, hold=CLAIM_SECONDS
        )
        if not claimed:  # another process exchanges it; the old token ends with the exchange
            return await self._refreshed_elsewhere(installation)
        rotator = self._rotator
        try:
            answer = await rotator.client.oauth_v2_exchange(
                token=installation.bot_token or "",
                client_id=rotator.client_id,
                client_secret=rotator.client_secret,
            )
        except SlackApiError as exc:
            await self._installations.release_refresh(key, owner=self._owner)
            code = _error_code(exc)
            log.error("slack_token_exchange_failed", team=key.team_id or None, error=code)
            if code in _DEAD_REFRESH | {"invalid_token"}:
                await self._installations.mark_revoked(key, code)
                self._workspaces.forget(key)
                return None
            self._not_exchanged.add(key)  # e.g. rotation is off in the app: the token stays good
            return installation
        now = time.time()
        exchanged = replace(
            installation,
            bot_token=str(answer["access_token"]),
            bot_refresh_token=str(answer["refresh_token"]),
            bot_token_expires_at=int(now) + int(answer["expires_in"]),
        )
        await self._installations.finish_refresh(exchanged, owner=self._owner)
        log.info(
            "slack_token_exchanged",
            enterprise=key.enterprise_id or None,
            team=key.team_id or None,
            expires_in_s=int(answer["expires_in"]),
        )
        return exchanged

    async def _refreshed_elsewhere(self, installation: Installation) -> Installation | None:
        """Wait for the process holding the claim to store the new token (ours has expired)."""
        deadline = time.monotonic() + WAIT_FOR_REFRESH_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            found = await self._installations.find(installation.key)
            if found is None or found.revoked:
                return None
            if found.bot_token_expires_at != installation.bot_token_expires_at:
                return found
        log.error("slack_token_refresh_waited_out", team=installation.key.team_id)
        return None


def _error_code(error: SlackApiError) -> str:
    """The `error` of a failed Web API answer."""
    data = getattr(error.response, "data", None)
    return str(data.get("error", "unknown")) if isinstance(data, dict) else "unknown"
