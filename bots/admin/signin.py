"""Signing in with ADMIN_TOKEN, and out; the sign-in page offers whichever ways are configured."""

from __future__ import annotations

from aiohttp import web

from bots.admin.auth import LOGIN_COOKIE, Guard, redirect, safe_next, same
from bots.admin.render import Pages
from bots.settings import AppSettings


class TokenSignIn:
    """`GET /admin/login`, `POST /admin/login` (the token) and `POST /admin/logout`."""

    def __init__(self, settings: AppSettings, guard: Guard, pages: Pages, *, slack: bool) -> None:
        self._settings = settings
        self._guard = guard
        self._pages = pages
        self._slack = slack

    def page(
        self, request: web.Request, *, status: int = 200, error: str = "", next_path: str = ""
    ) -> web.Response:
        """The sign-in page, with a login cookie for its forms."""
        token = self._guard.login_token(request)
        response = self._pages.render(
            request,
            "login.html",
            status=status,
            title="Sign in",
            csrf=token,
            error=error,
            next_path=safe_next(next_path or request.query.get("next")),
            token_enabled=self._settings.admin.token is not None,
            slack_enabled=self._slack,
        )
        self._guard.set_cookie(response, request, LOGIN_COOKIE, token, max_age=3600)
        return response

    async def show(self, request: web.Request) -> web.StreamResponse:
        """The sign-in page (or the overview for someone signed in already)."""
        if await self._guard.session_of(request) is not None:
            return redirect(safe_next(request.query.get("next")))
        return self.page(request)

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        """Check the token, within the rate limit."""
        form = await request.post()
        next_path = str(form.get("next", ""))
        if not self._guard.login_form_ok(request, str(form.get("csrf_token", ""))):
            return self._guard.forbidden(
                request, "The sign-in form expired or came from elsewhere: reload it and try again."
            )
        expected = self._settings.admin.token
        if expected is None:
            return self.page(request, status=403, error="Token sign-in is off (ADMIN_TOKEN).")
        attempt = await self._guard.begin_attempt(request)
        if attempt is None:
            return self._guard.refused(request)
        if not same(str(form.get("token", "")), expected.get_secret_value()):
            return self.page(
                request, status=401, error="That is not the token.", next_path=next_path
            )
        await self._guard.forgive(attempt)
        grant = self._guard.token_grant()
        assert grant is not None
        response = redirect(safe_next(next_path))
        await self._guard.start_session(
            request, response, user_id="admin-token", user_name="ADMIN_TOKEN", grant=grant
        )
        return response

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        """End the session (a protected POST: the CSRF token was checked)."""
        response = redirect("/admin/login")
        await self._guard.end_session(request, response)
        return response
