"""Which Web API client (which token) serves each Slack workspace.

With SLACK_BOT_TOKEN there is one workspace and one client. With SLACK_CLIENT_ID every workspace
has its own installation in the database; `Workspaces` keeps one client per team whose token the
authorize step (bots/slack/authorize.py) sets before any listener runs, and which a token refresh
updates in place, so replies already under way carry on with the new token. A team is only ever
answered with its own installation's token.

A call refused with `invalid_auth`, `token_revoked` or `account_inactive` marks the installation
revoked at once (`RevocationWatcher`, which sees every response of every client): the team is then
treated as not installed until someone installs the app again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from core.events import OutboundFile, Reply, is_interactive
from core.interactive.controls import ApprovalPrompt, Controls
from core.store.installations import Installation, InstallationKey, Installations

log = structlog.get_logger(__name__)

# Errors that mean the token itself is dead (not a missing scope or a passing fault).
REVOKED_ERRORS = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed"})
INSTALL_FIX = "install the app into the workspace at /slack/install"
INSTALLATION = "parley_installation"  # the Bolt context key authorize leaves it under
FILE_TEAMS_KEPT = 10_000  # attachment URL -> team, for downloads with the right token


@dataclass
class _Team:
    client: AsyncWebClient
    key: InstallationKey | None = None
    bot_user_id: str = ""


class Workspaces:
    """Per-team Web API clients: the single token's, or each installation's."""

    def __init__(
        self,
        make_client: Callable[[str | None], AsyncWebClient],
        token: str | None,
        *,
        installations: Installations | None = None,
    ) -> None:
        self._make_client = make_client
        self.installations = installations
        self.default = make_client(token)
        """The single token's client; with installations, the tokenless one for OAuth calls."""
        self._teams: dict[str, _Team] = {}
        self._file_teams: OrderedDict[str, str] = OrderedDict()
        self._told: set[str] = set()  # teams whose missing installation was logged
        self._org_teams: set[str] = set()  # workspaces remembered under an org-wide install

    @property
    def multi(self) -> bool:
        """True when each workspace has its own installation."""
        return self.installations is not None

    def client(self, team: str) -> AsyncWebClient:
        """The client for `team` (the single token's in single-workspace mode)."""
        if not self.multi:
            return self.default
        entry = self._teams.get(team)
        if entry is None:
            entry = self._teams[team] = _Team(self._make_client(None))
        return entry.client

    def bot_user_id(self, team: str) -> str:
        """The bot's user id in `team`, as its installation says ('' when unknown)."""
        entry = self._teams.get(team)
        return entry.bot_user_id if entry is not None else ""

    def use(self, team: str, installation: Installation) -> AsyncWebClient:
        """Serve `team` with `installation`'s bot token from now on; its client."""
        client = self.client(team)
        client.token = installation.bot_token
        entry = self._teams[team]
        entry.key = installation.key
        entry.bot_user_id = installation.bot_user_id or ""
        self._told.discard(team)
        return client

    async def bind(self, team: str, context: Mapping[str, Any]) -> None:
        """Serve `team` (the workspace an event or command came from) with the installation the
        authorize step found for the request, remembering an org-wide install's workspaces."""
        installation = context.get(INSTALLATION)
        if not isinstance(installation, Installation) or not team:
            return
        self.use(team, installation)
        key = installation.key
        if key.org_wide and team not in self._org_teams and self.installations is not None:
            await self.installations.remember_team(key.platform, team, key.enterprise_id)
            self._org_teams.add(team)

    def forget(self, key: InstallationKey) -> list[str]:
        """Stop serving every team of an installation (uninstalled, revoked); their ids."""
        gone = [team for team, entry in self._teams.items() if entry.key == key]
        for team in gone:
            self._teams[team].client.token = None
            self._teams[team].key = None
        return gone

    async def uninstalled(
        self, enterprise_id: str | None, team_id: str | None, *, org_wide: bool
    ) -> None:
        """`app_uninstalled`: forget the installation and its tokens, and stop serving it."""
        if self.installations is None:
            log.warning(
                "slack_app_uninstalled", team=team_id, fix="SLACK_BOT_TOKEN no longer works"
            )
            return
        key = InstallationKey.of("slack", enterprise_id, team_id, org_wide=org_wide)
        removed = await self.installations.delete(key)
        log.info(
            "slack_uninstalled",
            enterprise=enterprise_id,
            team=team_id,
            removed=removed,
            teams=self.forget(key),
        )

    async def tokens_revoked(
        self,
        enterprise_id: str | None,
        team_id: str | None,
        *,
        org_wide: bool,
        bot: bool,
        users: list[str],
    ) -> None:
        """`tokens_revoked`: a revoked bot token removes the installation; revoked user tokens
        are dropped from it."""
        if bot:
            await self.uninstalled(enterprise_id, team_id, org_wide=org_wide)
            return
        if self.installations is None:
            return
        key = InstallationKey.of("slack", enterprise_id, team_id, org_wide=org_wide)
        for user in users:
            await self.installations.forget_user_token(key, user)
        log.info("slack_user_tokens_revoked", team=team_id, users=len(users))

    def not_installed(self, team: str, enterprise: str | None, reason: str) -> None:
        """Log, once per team and process, that an event came for a team we cannot serve."""
        if team in self._told:
            return
        self._told.add(team)
        log.warning(
            "slack_team_not_installed",
            team=team,
            enterprise=enterprise,
            reason=reason,
            fix=INSTALL_FIX,
        )

    async def ensure(self, team: str) -> AsyncWebClient:
        """The client for `team`, loading its installation when this process has not served it
        yet (a reply after a restart). Without one the client has no token, and Slack says so."""
        client = self.client(team)
        if not self.multi or client.token:
            return client
        assert self.installations is not None
        found = await self.installations.find_for_team("slack", team)
        if found is None or found.revoked or not found.bot_token:
            self.not_installed(team, None, "no installation" if found is None else "revoked")
            return client
        return self.use(team, found)

    def note_files(self, urls: Iterable[str], team: str) -> None:
        """Remember which team the attachments at `urls` came from (downloads need its token)."""
        for url in urls:
            self._file_teams[url] = team
            self._file_teams.move_to_end(url)
        while len(self._file_teams) > FILE_TEAMS_KEPT:
            self._file_teams.popitem(last=False)

    def token_for_file(self, url: str) -> str | None:
        """The bot token that may download the attachment at `url`."""
        if not self.multi:
            return self.default.token
        team = self._file_teams.get(url)
        return self._teams[team].client.token if team in self._teams else None

    async def rejected(self, token: str, error: str) -> None:
        """Slack refused `token` for good: mark its installation revoked and stop using it."""
        if not self.multi:
            return  # one token: the start-up check and the logs say what to fix
        keys = {e.key for e in self._teams.values() if e.key and e.client.token == token}
        for key in keys:
            assert self.installations is not None
            first = await self.installations.mark_revoked(key, error)
            teams = self.forget(key)
            if first:
                log.warning(
                    "slack_installation_revoked",
                    enterprise=key.enterprise_id or None,
                    team=key.team_id or None,
                    teams=teams,
                    error=error,
                    fix=INSTALL_FIX,
                )


class RevocationWatcher(AsyncRetryHandler):
    """Sees every Web API response (slack_sdk consults retry handlers on each one) and reports a
    refused token to `Workspaces.rejected`. It never asks for a retry."""

    def __init__(self, on_rejected: Callable[[str, str], Awaitable[None]]) -> None:
        super().__init__(max_retry_count=1_000_000)
        self._on_rejected = on_rejected

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        body: Any = response.body if response is not None else None
        if isinstance(body, dict) and body.get("ok") is False:
            code = str(body.get("error", ""))
            if code in REVOKED_ERRORS:
                token = _bearer(request.headers or {})
                if token:
                    await self._on_rejected(token, code)
        return False


def _bearer(headers: Mapping[str, str | list[str]]) -> str:
    """The bearer token of a request's headers (slack_sdk gives each header as a list)."""
    for name, value in headers.items():
        if name.lower() == "authorization":
            first = value[0] if isinstance(value, list) and value else value
            return str(first).removeprefix("Bearer ").strip()
    return ""


class EnsuredReply:
    """A reply into a team this process may not have served yet: the team's installation is
    loaded before the first call (replies after a restart, recovered and queued turns).

    With `address` it is `Addressable` (and rebuilt from it elsewhere); the controls, approvals
    and `on_shown` of the reply it wraps pass through.
    """

    def __init__(
        self,
        make: Callable[[AsyncWebClient], Reply],
        team: str,
        ws: Workspaces,
        address: dict[str, Any] | None = None,
    ) -> None:
        self._make = make
        self._team = team
        self._workspaces = ws
        self._reply: Reply | None = None
        self._address = address
        self._on_shown: Callable[[str], None] | None = None

    async def _inner(self) -> Reply:
        if self._reply is None:
            self._reply = self._make(await self._workspaces.ensure(self._team))
            watch = getattr(self._reply, "on_shown", None)
            if self._on_shown is not None and watch is not None:
                watch(self._on_shown)
        return self._reply

    def address(self) -> dict[str, Any]:
        return dict(self._address or {})

    def on_shown(self, callback: Callable[[str], None]) -> None:
        self._on_shown = callback

    async def begin(self) -> None:
        await (await self._inner()).begin()

    async def append(self, delta: str) -> None:
        await (await self._inner()).append(delta)

    async def finish(self, text: str) -> None:
        await (await self._inner()).finish(text)

    async def notice(self, text: str) -> None:
        await (await self._inner()).notice(text)

    async def upload(self, file: OutboundFile) -> None:
        await (await self._inner()).upload(file)

    async def live(self, controls: Controls) -> None:
        inner = await self._inner()
        if is_interactive(inner):
            await inner.live(controls)

    async def finish_with(self, text: str, controls: Controls | None) -> None:
        inner = await self._inner()
        if is_interactive(inner):
            await inner.finish_with(text, controls)
        else:
            await inner.finish(text)

    async def ask_approval(self, prompt: ApprovalPrompt) -> None:
        inner = await self._inner()
        if is_interactive(inner):
            await inner.ask_approval(prompt)
        else:
            await inner.notice(prompt.text)
