"""Multi-workspace install: `GET /slack/install` and `GET /slack/oauth_redirect`, by Bolt's
OAuth flow (`AsyncOAuthFlow`) over our installation and state stores.

The install page issues a state (stored in the database, and set as a cookie in the installer's
browser) and links to Slack's authorize URL with it. The redirect checks that the state came
back in the same browser and was issued here and not used before, exchanges the code with
`oauth.v2.access` and stores the installation, tokens sealed. A denied install, a forged,
replayed or expired state, or a failed exchange gets a page that says so, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Installation as BoltInstallation
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import pages
from bots.slack.oauth_stores import SlackInstallationStore, SlackStateStore
from bots.slack.settings import SlackSettings
from core.store.oauth_states import OAuthStates

log = structlog.get_logger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600
HTML = {"Content-Type": "text/html; charset=utf-8"}


def authorization_url(api_url: str) -> str:
    """Slack's authorize page next to its Web API (slack.com, GovSlack, a test double)."""
    base = api_url.rstrip("/").removesuffix("/api")
    return f"{base}/oauth/v2/authorize"


class SlackInstaller:
    """The install routes; `on_installed` hears of each new installation (in this process).
    Without a `client`, the Bolt app the flow is given to lends its own (tokenless) one."""

    def __init__(
        self,
        settings: SlackSettings,
        installation_store: SlackInstallationStore,
        states: OAuthStates,
        *,
        client: AsyncWebClient | None = None,
        discord_invite: str | None = None,
        on_installed: Callable[[BoltInstallation], None] = lambda _: None,
    ) -> None:
        assert settings.client_id and settings.client_secret, "SLACK_CLIENT_ID and _SECRET"
        self._discord_invite = discord_invite
        self._on_installed = on_installed
        self.flow = AsyncOAuthFlow(
            client=client,
            settings=AsyncOAuthSettings(
                client_id=settings.client_id,
                client_secret=settings.client_secret.get_secret_value(),
                scopes=list(settings.scopes),
                user_scopes=[],
                redirect_uri=settings.redirect_uri,
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
                authorization_url=authorization_url(settings.api_url),
                callback_options=AsyncCallbackOptions(success=self._success, failure=self._failure),
                installation_store=installation_store,
                state_store=SlackStateStore(states, expiration_seconds=STATE_SECONDS),
                state_expiration_seconds=STATE_SECONDS,
            ),
        )

    def install(self, web_app: web.Application) -> None:
        """Serve the two routes on `web_app`."""
        web_app.router.add_get(INSTALL_PATH, self._install_page)
        web_app.router.add_get(REDIRECT_PATH, self._redirect)

    async def _install_page(self, request: web.Request) -> web.Response:
        bolt = _bolt_request(request)
        flow = self.flow
        state = await flow.issue_new_state(bolt)
        url = await flow.build_authorize_url(state, bolt)
        cookie = flow.settings.state_utils.build_set_cookie_for_new_state(state)
        body = pages.install_page(url, self._discord_invite)
        return await to_aiohttp_response(
            BoltResponse(status=200, body=body, headers={**HTML, "Set-Cookie": [cookie]})
        )

    async def _redirect(self, request: web.Request) -> web.Response:
        return await to_aiohttp_response(await self.flow.handle_callback(_bolt_request(request)))

    async def _success(self, args: AsyncSuccessArgs) -> BoltResponse:
        installation = args.installation
        log.info(
            "slack_installed",
            team=installation.team_id,
            enterprise=installation.enterprise_id,
            org_wide=bool(installation.is_enterprise_install),
            installer=installation.user_id,
            rotating=installation.bot_refresh_token is not None,
        )
        self._on_installed(installation)
        body = pages.installed_page(
            installation.team_name, org_wide=bool(installation.is_enterprise_install)
        )
        return self._page(200, body)

    async def _failure(self, args: AsyncFailureArgs) -> BoltResponse:
        log.warning(
            "slack_install_failed",
            reason=args.reason,
            error=type(args.error).__name__ if args.error else None,
        )
        status = 200 if args.reason == "access_denied" else args.suggested_status_code
        return self._page(status, pages.failure_page(args.reason))

    def _page(self, status: int, body: str) -> BoltResponse:
        delete = self.flow.settings.state_utils.build_set_cookie_for_deletion()
        return BoltResponse(status=status, body=body, headers={**HTML, "Set-Cookie": [delete]})


def _bolt_request(request: web.Request) -> AsyncBoltRequest:
    headers: dict[str, str | Sequence[str]] = {}
    for name in request.headers:
        headers[name.lower()] = request.headers.getall(name)
    return AsyncBoltRequest(body="", query=request.query_string, headers=headers)
