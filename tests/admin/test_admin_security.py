"""The admin site refuses who it must: no session, a tampered cookie, a non-admin, a missing or
forged CSRF token, too many sign-in attempts; it escapes what it shows and never shows a secret."""

from __future__ import annotations

import asyncio

import pytest
from markupsafe import escape

from tests.admin.client import csrf_of
from tests.admin.conftest import TOKEN, AdminRig

PAGES = [
    "/admin",
    "/admin/usage",
    "/admin/usage.csv?by=channel",
    "/admin/quality",
    "/admin/moderation",
    "/admin/conversations",
    "/admin/conversations/1",
    "/admin/settings",
    "/admin/health",
    "/admin/data",
]
ACTIONS = ["/admin/settings", "/admin/purge", "/admin/logout"]
XSS = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


async def test_every_page_sends_a_visitor_without_a_session_to_sign_in(admin: AdminRig) -> None:
    for path in PAGES:
        page = await admin.client.get(path)
        assert page.status == 303, path
        assert page.location.startswith("/admin/login?next="), path
    for path in ACTIONS:
        page = await admin.client.post(path, {"user_id": "U1", "confirm": "U1"})
        assert page.status == 303 and page.location.startswith("/admin/login"), path


async def test_a_tampered_or_unknown_session_cookie_is_no_session(admin: AdminRig) -> None:
    await admin.signed_in()
    good = admin.client.cookie("parley_admin")
    for forged in (good[:-1] + ("A" if good[-1] != "A" else "B"), good + "x", "x" * 43, "x" * 500):
        client = await admin.another_client()
        client.http.cookie_jar.update_cookies({"parley_admin": forged})
        page = await client.get("/admin")
        assert page.status == 303 and page.location.startswith("/admin/login"), forged
        cleared = [c for c in page.cookies if c.startswith("parley_admin=")]
        assert cleared and "Max-Age=0" in cleared[0], "the bad cookie is removed"
    assert (await admin.client.get("/admin")).status == 200, "the real session still works"


async def test_a_post_without_or_with_a_forged_csrf_token_is_refused(admin: AdminRig) -> None:
    client = await admin.signed_in()
    await admin.turn("hello")
    scope = "channel:console:w1:c1"
    for path in ACTIONS:
        for token in (None, "", "forged-" + "x" * 30):
            data = {"scope": scope, "system_prompt": "changed", "user_id": "u1", "confirm": "u1"}
            if token is not None:
                data["csrf_token"] = token
            page = await client.post(path, data)
            assert page.status == 403, (path, token)
    assert await admin.services.store.scoped.in_scope(scope) == {}, "nothing was changed"
    assert (await client.get("/admin")).status == 200, "still signed in: logout was refused too"
    other = await admin.another_client()
    await other.sign_in(TOKEN)
    theirs = await other.csrf()
    page = await client.post("/admin/settings", {"csrf_token": theirs, "scope": scope})
    assert page.status == 403, "another session's token is not this session's"


async def test_the_sign_in_form_needs_its_own_login_token(admin: AdminRig) -> None:
    page = await admin.client.post("/admin/login", {"token": TOKEN, "csrf_token": "guess"})
    assert page.status == 403
    fresh = await admin.another_client()
    login = await fresh.get("/admin/login")
    assert (await fresh.post("/admin/login", {"token": TOKEN})).status == 403
    ok = await fresh.post("/admin/login", {"token": TOKEN, "csrf_token": csrf_of(login.text)})
    assert ok.status == 303 and ok.location == "/admin"


async def test_wrong_tokens_are_limited_to_five_per_address_across_processes(
    make_admin,
) -> None:  # type: ignore[no-untyped-def]
    first = await make_admin()
    # A second "process": its own services and site on the same database.
    second = await make_admin(database_url=first.services.settings.store.url)
    for attempt in range(5):
        rig = first if attempt % 2 else second
        assert (await rig.client.sign_in("wrong-token-" + "x" * 20)).status == 401
    for rig in (first, second):
        refused = await rig.client.sign_in(TOKEN)
        assert refused.status == 429, "even the right token waits once the limit is reached"
        assert refused.headers["Retry-After"] == "300"


async def test_concurrent_guesses_cannot_pass_the_limit_together(admin: AdminRig) -> None:
    clients = [await admin.another_client() for _ in range(20)]
    pages = await asyncio.gather(*(c.sign_in("wrong-token-" + "y" * 20) for c in clients))
    statuses = sorted(p.status for p in pages)
    assert statuses.count(401) == 5 and statuses.count(429) == 15, statuses


async def test_a_successful_sign_in_does_not_count_against_the_limit(admin: AdminRig) -> None:
    for _ in range(10):
        client = await admin.another_client()
        assert (await client.sign_in(TOKEN)).status == 303


async def test_session_cookies_are_httponly_lax_and_secure_over_https(admin: AdminRig) -> None:
    page = await admin.client.sign_in(TOKEN)
    session = next(c for c in page.cookies if c.startswith("parley_admin="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/admin" in session
    assert "Secure" not in session, "plain http on loopback"
    behind_proxy = await admin.another_client()
    https = {"X-Forwarded-Proto": "https"}
    login = await behind_proxy.get("/admin/login", **https)
    assert login.cookies and all("Secure" in c for c in login.cookies)
    token = csrf_of(login.text)  # a Secure cookie is not sent over plain http: send it by hand
    page = await behind_proxy.post(
        "/admin/login",
        {"token": TOKEN, "csrf_token": token},
        **https,
        Cookie=f"parley_admin_login={token}",
    )
    assert page.status == 303
    session = next(c for c in page.cookies if c.startswith("parley_admin="))
    assert "Secure" in session and "HttpOnly" in session


async def test_pages_carry_security_headers(admin: AdminRig) -> None:
    client = await admin.signed_in()
    for path in ("/admin", "/admin/login"):
        headers = (await client.get(path)).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert "script-src" not in headers["Content-Security-Policy"], "no script runs at all"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"


async def test_signing_out_ends_the_session_in_the_database(admin: AdminRig) -> None:
    client = await admin.signed_in()
    cookie = client.cookie("parley_admin")
    page = await client.post("/admin/logout", {"csrf_token": await client.csrf()})
    assert page.status == 303
    replay = await admin.another_client()
    replay.http.cookie_jar.update_cookies({"parley_admin": cookie})
    assert (await replay.get("/admin")).status == 303, "the old cookie opens nothing"


async def test_a_changed_admin_token_signs_its_sessions_out(make_admin) -> None:  # type: ignore[no-untyped-def]
    first = await make_admin()
    client = await first.signed_in()
    cookie = client.cookie("parley_admin")
    rotated = await make_admin(
        database_url=first.services.settings.store.url, admin_token="rotated-token-" + "z" * 10
    )
    replay = await rotated.another_client()
    replay.http.cookie_jar.update_cookies({"parley_admin": cookie})
    assert (await replay.get("/admin")).status == 303


async def test_someone_no_longer_in_admin_user_ids_gets_403(make_admin) -> None:  # type: ignore[no-untyped-def]
    rig = await make_admin(admin_user_ids="U9")
    session_id = "s" * 43
    await rig.services.store.sessions.create(
        session_id,
        user_id="U9",
        user_name="Nine",
        grant="admin-ids",
        csrf_token="c" * 43,
        ip="127.0.0.1",
        lifetime=600,
    )
    demoted = await make_admin(database_url=rig.services.settings.store.url, admin_user_ids="U8")
    for target in (rig, demoted):
        client = await target.another_client()
        client.http.cookie_jar.update_cookies({"parley_admin": session_id})
        page = await client.get("/admin")
        assert page.status == (200 if target is rig else 403)
    assert "not an admin" in page.text


async def test_stored_html_and_script_are_shown_as_text(make_admin) -> None:  # type: ignore[no-untyped-def]
    rig = await make_admin(moderation_keep_text=True)
    await rig.turn(f"first {XSS}", user="u<script>", channel="c1")
    client = await rig.signed_in()
    conversation = await rig.services.store.browse.search(text="pwned")
    assert conversation, "the search finds the message"
    pages = [
        f"/admin/conversations/{conversation[0].id}",
        "/admin/conversations?text=%3Cscript%3E",
        "/admin/conversations?user=" + "u%3Cscript",
        "/admin/usage",
        "/admin/settings?scope=channel:console:w1:c1",
    ]
    for path in pages:
        page = await client.get(path)
        assert page.status == 200, path
        assert "<script" not in page.text and "<img" not in page.text, path
    detail = await client.get(pages[0])
    assert str(escape(XSS)) in detail.text, "the message is shown, as text"


async def test_search_terms_are_bound_parameters(admin: AdminRig) -> None:
    await admin.turn("an ordinary message")
    client = await admin.signed_in()
    for term in ("' OR 1=1 --", "%", "_", "\\", "x'); DROP TABLE messages; --"):
        page = await client.get(f"/admin/conversations?text={term}")
        assert page.status == 200
        assert "No conversations match." in page.text, term
    assert await admin.services.store.browse.search(text="ordinary"), "the table is still there"
    assert await admin.services.store.browse.search(text="ORDINARY"), "case-insensitive"


async def test_no_configured_secret_appears_on_any_page(make_admin) -> None:  # type: ignore[no-untyped-def]
    rig = await make_admin(
        slack_bot_token="xoxb-secret-bot-token-123",
        slack_signing_secret="signing-secret-456",
        slack_client_id="CLIENT1",
        slack_client_secret="client-secret-789",
        metrics_token="metrics-token-abc-123",
        discord_token="discord-secret-token-def",
        openai_moderation_api_key="sk-moderation-secret",
    )
    await rig.turn("hello")
    secrets = rig.services.settings.secrets()
    assert TOKEN in secrets and "client-secret-789" in secrets and len(secrets) == 8
    login = await rig.client.get("/admin/login")
    assert not any(secret in login.text for secret in secrets)
    client = await rig.signed_in()
    for path in [*PAGES, "/admin/settings?scope=channel:console:w1:c1"]:
        page = await client.get(path)
        assert page.status == 200, path
        for secret in secrets:
            assert secret not in page.text, (path, "a secret was rendered")
            assert all(secret not in v for v in page.headers.values())


@pytest.mark.parametrize("path", ["/admin/conversations/abc", "/admin/conversations/999999"])
async def test_an_unknown_conversation_is_404(admin: AdminRig, path: str) -> None:
    client = await admin.signed_in()
    assert (await client.get(path)).status == 404


async def test_the_site_is_closed_to_everyone_when_no_sign_in_is_configured(make_admin) -> None:  # type: ignore[no-untyped-def]
    rig = await make_admin(admin_token=None)
    page = await rig.client.get("/admin/login")
    assert "Sign-in is not configured" in page.text
    form = {"token": "anything-" + "x" * 20, "csrf_token": rig.client.cookie("parley_admin_login")}
    assert (await rig.client.post("/admin/login", form)).status == 403
    assert (await rig.client.get("/admin")).status == 303


async def test_a_forged_forwarded_for_does_not_escape_the_limit_unless_the_proxy_is_trusted(
    make_admin,
) -> None:  # type: ignore[no-untyped-def]
    direct = await make_admin()
    for n in range(6):
        page = await _guess(direct, f"10.0.0.{n}")
        assert page.status == (401 if n < 5 else 429), "X-Forwarded-For is not believed"
    proxied = await make_admin(admin_trust_proxy=True)
    for _ in range(5):
        assert (await _guess(proxied, "spoofed, 203.0.113.7")).status == 401
    assert (await _guess(proxied, "203.0.113.7")).status == 429, "the proxy's last entry counts"
    assert (await _guess(proxied, "203.0.113.8")).status == 401, "another client is not held up"


async def _guess(rig: AdminRig, forwarded_for: str):  # type: ignore[no-untyped-def]
    client = await rig.another_client()
    login = await client.get("/admin/login")
    return await client.post(
        "/admin/login",
        {"token": "wrong-token-" + "w" * 20, "csrf_token": csrf_of(login.text)},
        **{"X-Forwarded-For": forwarded_for},
    )
