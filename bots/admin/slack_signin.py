"""Sign in with Slack (OpenID Connect) for the admin site.

The browser is sent to Slack's `openid/connect/authorize` (on the host of SLACK_API_URL) with a
random state and nonce; Slack sends it back to `/admin/login/slack/callback` with a code. The
state must be one this site issued to this browser (bound to its login cookie), unexpired and
unused; the code is exchanged with `openid.connect.token` (SLACK_CLIENT_ID and
SLACK_CLIENT_SECRET); the ID token from that exchange must name this client, Slack as issuer, be
unexpired and carry our nonce (it comes straight from Slack over TLS, so its signature is not
checked again, as OpenID Connect Core 3.1.3.7 allows); the person is read with
`openid.connect.userInfo`. Admitted are the workspace's admins and owners (`users.info` with the
bot token, in the bot's own workspace) and ADMIN_USER_IDS.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import structlog
from aiohttp import web
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bots.admin.auth import LOGIN_COOKIE, Guard, is_https, redirect
from bots.slack.settings import SlackSettings
from core.store import Store
from core.store.sessions import LoginState, digest

log = structlog.get_logger(__name__)

CALLBACK = "/admin/login/slack/callback"
SCOPES = "openid profile"


class SignInRefused(Exception):
    """The sign-in cannot complete; the message is for the person signing in."""


@dataclass(frozen=True, slots=True)
class SlackPerson:
    """Who signed in, as Slack says."""

    user_id: str
    team_id: str
    name: str


def slack_origin(api_url: str) -> str:
    """`https://slack.com` for `https://slack.com/api/` (the same host serves the authorize page)."""
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}"


def id_token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (not verified: see the module docstring)."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise SignInRefused("Slack sent an ID token this site cannot read.") from None
    if not isinstance(data, dict):
        raise SignInRefused("Slack sent an ID token this site cannot read.")
    return data


def check_claims(claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str) -> None:
    """Refuse an ID token for another client or issuer, expired, or without our nonce."""
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("iss") != issuer or client_id not in audiences:
        raise SignInRefused("Slack's ID token was not issued for this site.")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] < time.time():
        raise SignInRefused("Slack's ID token has expired: sign in again.")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
        claims["nonce"], nonce
    ):
        raise SignInRefused("Slack's ID token does not belong to this sign-in: sign in again.")


def callback_url(request: web.Request, secure: bool) -> str:
    """Where Slack sends the browser back: this host's callback (register it in the Slack app)."""
    return f"{'https' if secure else request.scheme}://{request.host}{CALLBACK}"


class SlackSignIn:
    """The two steps of Sign in with Slack."""

    def __init__(
        self,
        settings: SlackSettings,
        admin_ids: frozenset[str],
        store: Store,
        guard: Guard,
    ) -> None:
        assert settings.client_id and settings.client_secret
        self._settings = settings
        self._client_id = settings.client_id
        self._client_secret = settings.client_secret
        self._admin_ids = admin_ids
        self._store = store
        self._guard = guard
        self.origin = slack_origin(settings.api_url)

    async def start(self, request: web.Request) -> web.StreamResponse:
        """`POST /admin/login/slack`: send the browser to Slack with a fresh state and nonce."""
        form = await request.post()
        if not self._guard.login_form_ok(request, str(form.get("csrf_token", ""))):
            return self._guard.forbidden(
                request, "The sign-in form expired or came from elsewhere: reload it and try again."
            )
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        redirect_uri = callback_url(request, is_https(request))
        browser = digest(request.cookies.get(LOGIN_COOKIE, ""))
        await self._store.sessions.save_login_state(state, LoginState(nonce, browser, redirect_uri))
        query = urlencode(
            {
                "response_type": "code",
                "scope": SCOPES,
                "client_id": self._client_id,
                "state": state,
                "nonce": nonce,
                "redirect_uri": redirect_uri,
            }
        )
        return redirect(f"{self.origin}/openid/connect/authorize?{query}")

    async def callback(self, request: web.Request) -> web.StreamResponse:
        """`GET /admin/login/slack/callback`: check everything, then open a session."""
        attempt = await self._guard.begin_attempt(request)
        if attempt is None:
            return self._guard.refused(request)
        try:
            person, grant = await self._admit(request)
        except SignInRefused as exc:
            log.warning("admin_sign_in_refused", reason=str(exc))
            return self._guard.forbidden(request, str(exc))
        await self._guard.forgive(attempt)
        response = redirect("/admin")
        await self._guard.start_session(
            request, response, user_id=person.user_id, user_name=person.name, grant=grant
        )
        log.info("admin_signed_in", user_id=person.user_id, via="slack", grant=grant)
        return response

    async def _admit(self, request: web.Request) -> tuple[SlackPerson, str]:
        """The person and their grant, or SignInRefused saying why not."""
        state = await self._store.sessions.take_login_state(request.query.get("state", ""))
        browser = digest(request.cookies.get(LOGIN_COOKIE, ""))
        if state is None or not secrets.compare_digest(state.browser_hash, browser):
            raise SignInRefused(
                "This sign-in was not started in this browser, or it expired: start again."
            )
        if "error" in request.query or not request.query.get("code"):
            raise SignInRefused("Slack did not sign you in (cancelled or refused).")
        person = await self._identify(request.query["code"], state)
        if person.user_id in self._admin_ids:
            return person, "admin-ids"
        if await self._workspace_admin(person):
            return person, "slack-admin"
        raise SignInRefused(f"{person.name or person.user_id} is not an admin of this workspace.")

    async def _identify(self, code: str, state: LoginState) -> SlackPerson:
        """Exchange the code and read the person (openid.connect.token, .userInfo)."""
        client = AsyncWebClient(base_url=self._settings.api_url)
        try:
            token = await client.openid_connect_token(
                client_id=self._client_id,
                client_secret=self._client_secret.get_secret_value(),
                code=code,
                redirect_uri=state.redirect_uri,
            )
            claims = id_token_claims(str(token.get("id_token", "")))
            check_claims(claims, issuer=self.origin, client_id=self._client_id, nonce=state.nonce)
            user_client = AsyncWebClient(
                token=str(token["access_token"]), base_url=self._settings.api_url
            )
            info = await user_client.openid_connect_userInfo()
        except SlackApiError as exc:
            log.warning("slack_sign_in_failed", error=exc.response.get("error"))
            raise SignInRefused("Slack refused the sign-in: start again.") from None
        except (SlackClientError, OSError, KeyError) as exc:
            log.warning("slack_sign_in_failed", error=type(exc).__name__)
            raise SignInRefused("Slack could not be reached to finish the sign-in.") from None
        user_id = str(info.get("https://slack.com/user_id") or info.get("sub") or "")
        if not user_id or user_id != str(
            claims.get("https://slack.com/user_id") or claims.get("sub")
        ):
            raise SignInRefused("Slack's answers about who you are do not agree: start again.")
        return SlackPerson(
            user_id, str(info.get("https://slack.com/team_id") or ""), str(info.get("name") or "")
        )

    async def _workspace_admin(self, person: SlackPerson) -> bool:
        """Whether the person is an admin or owner of the bot's workspace (needs the bot token)."""
        if self._settings.bot_token is None:
            return False
        bot = AsyncWebClient(
            token=self._settings.bot_token.get_secret_value(), base_url=self._settings.api_url
        )
        try:
            team = await bot.auth_test()
            if person.team_id and team.get("team_id") != person.team_id:
                return False
            user = (await bot.users_info(user=person.user_id)).get("user") or {}
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("slack_admin_check_failed", error=str(exc)[:200])
            return False
        return user.get("is_admin") is True or user.get("is_owner") is True
