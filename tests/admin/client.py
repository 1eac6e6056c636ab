"""An HTTP client for the admin site that keeps cookies, reads CSRF tokens and signs in."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp
from yarl import URL

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF.search(html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


@dataclass
class Page:
    """A response as the tests look at it."""

    status: int
    text: str
    headers: dict[str, str]
    cookies: list[str]

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


class AdminClient:
    """One browser's worth of cookies against the site at `base`."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    def cookie(self, name: str) -> str:
        """The value of one of the site's cookies in this client's jar ('' if none)."""
        found = self.http.cookie_jar.filter_cookies(URL(self.base + "/admin")).get(name)
        return found.value if found else ""

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **headers: str) -> Page:
        async with self.http.get(
            self.base + path, allow_redirects=False, headers=headers
        ) as response:
            return await _page(response)

    async def post(self, path: str, data: dict[str, str], **headers: str) -> Page:
        async with self.http.post(
            self.base + path, data=data, allow_redirects=False, headers=headers
        ) as response:
            return await _page(response)

    async def sign_in(self, token: str) -> Page:
        """Sign in with ADMIN_TOKEN through the sign-in form."""
        login = await self.get("/admin/login")
        return await self.post(
            "/admin/login", {"csrf_token": csrf_of(login.text), "token": token, "next": "/admin"}
        )

    async def csrf(self, path: str = "/admin/data") -> str:
        """The session's CSRF token, from a page with a form."""
        return csrf_of((await self.get(path)).text)


async def _page(response: aiohttp.ClientResponse) -> Page:
    return Page(
        response.status,
        await response.text(),
        dict(response.headers),
        response.headers.getall("Set-Cookie", []),
    )
