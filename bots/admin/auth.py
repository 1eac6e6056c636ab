"""Who may see the admin site: sessions in cookies, CSRF tokens, the sign-in rate limit.

A session cookie carries a random 256-bit id (the database keeps its SHA-256); it is HttpOnly,
SameSite=Lax, scoped to /admin, and Secure when the request came over https (directly, or through
a proxy that says `X-Forwarded-Proto: https`). Every POST must carry the session's CSRF token.
Sign-in forms, before there is a session, carry the token of a separate login cookie instead
(which also binds a Sign in with Slack to the browser that started it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from bots.admin.render import SESSION_KEY, Pages
from bots.settings import AppSettings
from core.store import Store
from core.store.sessions import AdminSession

SESSION_COOKIE = "parley_admin"
LOGIN_COOKIE = "parley_admin_login"
ATTEMPTS = 5  # sign-in attempts per client address ...
WINDOW = 300.0  # ... per this many seconds
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def same(given: str, expected: str) -> bool:
    """Constant-time comparison (over digests, so not even the length leaks)."""
    digest = hashlib.sha256
    return hmac.compare_digest(
        digest(given.encode("utf-8", "surrogatepass")).digest(),
        digest(expected.encode("utf-8", "surrogatepass")).digest(),
    )


def redirect(location: str) -> web.Response:
    """303 See Other to `location`."""
    return web.Response(status=303, headers={"Location": location})


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site under /admin, else the overview."""
    if value and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin"


def is_https(request: web.Request) -> bool:
    """Whether the browser reached us over https (here, or at the proxy in front)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


class Guard:
    """Sessions, grants and CSRF for the admin site's handlers."""

    def __init__(self, settings: AppSettings, store: Store, pages: Pages) -> None:
        self._settings = settings
        self._store = store
        self._pages = pages

    # -- grants ---------------------------------------------------------------------------

    def token_grant(self) -> str | None:
        """The grant of an ADMIN_TOKEN sign-in: names the token, so changing it ends them."""
        token = self._settings.admin.token
        if token is None:
            return None
        fingerprint = hashlib.sha256(b"parley-admin:" + token.get_secret_value().encode())
        return "token:" + fingerprint.hexdigest()[:16]

    def grant_valid(self, session: AdminSession) -> bool:
        """False for a token session whose token is no longer ADMIN_TOKEN (it is signed out)."""
        if session.grant.startswith("token:"):
            return session.grant == self.token_grant()
        return True

    def still_admin(self, session: AdminSession) -> bool:
        """Whether the session's person is an admin now (ADMIN_USER_IDS may have changed)."""
        if session.grant == "admin-ids":
            return session.user_id in self._settings.access.admin_user_ids
        return True

    # -- requests -------------------------------------------------------------------------

    def client_ip(self, request: web.Request) -> str:
        """The client's address; with ADMIN_TRUST_PROXY, the one the proxy appended last."""
        if self._settings.admin.trust_proxy:
            forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")]
            if forwarded and forwarded[-1]:
                return forwarded[-1]
        return request.remote or ""

    def set_cookie(
        self,
        response: web.StreamResponse,
        request: web.Request,
        name: str,
        value: str,
        *,
        max_age: int | None = None,
    ) -> None:
        """Set one of the site's cookies with its flags."""
        response.set_cookie(
            name,
            value,
            path="/admin",
            max_age=max_age,
            httponly=True,
            samesite="Lax",
            secure=is_https(request),
        )

    def forget_cookie(self, response: web.StreamResponse, request: web.Request, name: str) -> None:
        """Remove one of the site's cookies from the browser."""
        self.set_cookie(response, request, name, "", max_age=0)

    async def session_of(self, request: web.Request) -> AdminSession | None:
        """The request's valid session, or None (no cookie, an unknown or expired id, a
        tampered value, a grant that no longer holds)."""
        session_id = request.cookies.get(SESSION_COOKIE, "")
        if not session_id or len(session_id) > 100:
            return None
        session = await self._store.sessions.get(session_id)
        return session if session is not None and self.grant_valid(session) else None

    async def start_session(
        self,
        request: web.Request,
        response: web.StreamResponse,
        *,
        user_id: str,
        user_name: str,
        grant: str,
    ) -> None:
        """Sign in: a new session (never one the browser brought) and its cookie."""
        session_id = secrets.token_urlsafe(32)
        hours = self._settings.admin.session_hours
        await self._store.sessions.create(
            session_id,
            user_id=user_id,
            user_name=user_name,
            grant=grant,
            csrf_token=secrets.token_urlsafe(32),
            ip=self.client_ip(request),
            lifetime=hours * 3600,
        )
        self.set_cookie(response, request, SESSION_COOKIE, session_id, max_age=int(hours * 3600))
        self.forget_cookie(response, request, LOGIN_COOKIE)

    async def end_session(self, request: web.Request, response: web.StreamResponse) -> None:
        """Sign out."""
        session_id = request.cookies.get(SESSION_COOKIE, "")
        if session_id:
            await self._store.sessions.end(session_id)
        self.forget_cookie(response, request, SESSION_COOKIE)

    def login_token(self, request: web.Request) -> str:
        """The browser's login cookie value (a new one when it has none yet)."""
        value = request.cookies.get(LOGIN_COOKIE, "")
        return value if 20 <= len(value) <= 100 else secrets.token_urlsafe(32)

    def login_form_ok(self, request: web.Request, form_token: str) -> bool:
        """Whether a sign-in form came with the browser's own login token."""
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        return bool(cookie) and same(form_token, cookie)

    # -- the rate limit -------------------------------------------------------------------

    async def begin_attempt(self, request: web.Request) -> int | None:
        """Count a sign-in attempt; None when this address has used up its attempts."""
        return await self._store.sessions.begin_attempt(
            self.client_ip(request), since=time.time() - WINDOW, limit=ATTEMPTS
        )

    async def forgive(self, attempt: int) -> None:
        """The attempt succeeded: it does not count."""
        await self._store.sessions.forgive(attempt)

    def refused(self, request: web.Request) -> web.Response:
        """429: too many failed sign-ins from this address."""
        response = self._pages.render(
            request,
            "message.html",
            status=429,
            title="Too many attempts",
            message=f"Too many failed sign-ins from your address: wait {int(WINDOW // 60)} "
            "minutes and try again.",
        )
        response.headers["Retry-After"] = str(int(WINDOW))
        return response

    # -- guarding handlers ----------------------------------------------------------------

    def forbidden(self, request: web.Request, message: str) -> web.Response:
        """403 with a reason."""
        return self._pages.render(
            request, "message.html", status=403, title="Forbidden", message=message
        )

    def protect(self, handler: Handler) -> Handler:
        """`handler` for signed-in admins only: no session is sent to sign in, a non-admin gets
        403, and so does a POST without the session's CSRF token."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            session = await self.session_of(request)
            if session is None:
                target = request.path_qs if request.method == "GET" else "/admin"
                response = redirect(f"/admin/login?next={quote(target, safe='')}")
                if SESSION_COOKIE in request.cookies:
                    self.forget_cookie(response, request, SESSION_COOKIE)
                return response
            request[SESSION_KEY] = session
            if not self.still_admin(session):
                return self.forbidden(
                    request, f"{session.user_name or session.user_id} is not an admin here."
                )
            if request.method == "POST":
                form = await request.post()
                token = form.get("csrf_token")
                if not isinstance(token, str) or not same(token, session.csrf_token):
                    return self.forbidden(
                        request,
                        "This form did not come from this site, or it expired. Go back, reload "
                        "the page and try again.",
                    )
            return await handler(request)

        return guarded
