"""The admin site in a real browser (headless chromium through Selenium): signing in, the
overview's charts after real turns, a conversation, a channel's prompt changed and used by the
next turn, a forged CSRF token refused, an erasure, Sign in with Slack; every page screenshotted
into tests/artifacts/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from core.store.erasure import REMOVED_TEXT
from simulator import Simulator
from tests.admin.browser import Browser, start_chromium
from tests.admin.conftest import TOKEN, AdminRig
from tests.fakes.slack import FakeSlack


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    driver = start_chromium()
    yield driver
    driver.quit()


@pytest.fixture
async def browser(chromium: WebDriver, admin: AdminRig) -> AsyncIterator[Browser]:
    page = Browser(chromium, admin.base)
    await page.open("/admin/login")
    await page._run(chromium.delete_all_cookies)  # cookies are per host: every test starts out
    yield page


async def sign_in(page: Browser) -> None:
    await page.open("/admin")
    assert page.path.startswith("/admin/login?next="), "sent to sign in first"
    await page.type("token", TOKEN)
    await page.submit("token-sign-in")
    assert page.path == "/admin", page.path


async def test_sign_in_and_every_page_after_real_turns(
    admin: AdminRig, browser: Browser, sim: Simulator
) -> None:
    await admin.turn("what is 6*7?", user="U1", channel="C-general", thread="math")
    await admin.turn("<b>bold</b> and <script>alert(1)</script>", user="U2", channel="C-random")
    sim.flag("insult-marker", harassment=0.99)
    await admin.turn("insult-marker", user="U3", channel="C-random", thread="mod")
    await browser.open("/admin/login")
    await browser.screenshot("admin-login")
    await sign_in(browser)
    assert await browser.count("svg.chart") == 4
    assert await browser.count("svg.chart rect.bar") == 120
    assert (await browser.text("#total-turns")) == "3"
    assert (await browser.text("#total-people")) == "3"
    await browser.screenshot("admin-overview")
    await browser.screenshot("admin-overview-phone", width=390)
    assert await browser.page_width(390) <= 390, "on a phone the page does not scroll sideways"
    for path, name in (
        ("/admin/usage", "usage"),
        ("/admin/quality", "quality"),
        ("/admin/moderation", "moderation"),
        ("/admin/conversations", "conversations"),
        ("/admin/settings?scope=channel:console:w1:C-general", "settings"),
        ("/admin/health", "health"),
        ("/admin/data", "data"),
    ):
        await browser.open(path)
        assert "parley admin" in browser.title and "Forbidden" not in browser.title, path
        await browser.screenshot(f"admin-{name}")
    assert await browser.script("return window.__pwned === undefined")
    found = await admin.services.store.browse.search(text="6*7")
    await browser.open(f"/admin/conversations/{found[0].id}")
    text = await browser.text()
    assert "what is 6*7?" in text and "call calculate(" in text and "42" in text
    assert "latency" in text and "gpt-6-luna" in text
    await browser.screenshot("admin-conversation")
    [escaped] = await admin.services.store.browse.search(text="<script>")
    await browser.open(f"/admin/conversations/{escaped.id}")
    assert "<script>alert(1)</script>" in await browser.text(), "shown as text, not run"
    assert await browser.count("main script") == 0 and await browser.count("main b") == 0


async def test_a_channel_prompt_changed_in_the_browser_is_what_the_model_gets(
    admin: AdminRig, browser: Browser, sim: Simulator
) -> None:
    await admin.turn("first", channel="C1")
    await sign_in(browser)
    await browser.open("/admin/settings?scope=channel:console:w1:C1")
    await browser.type("f-system_prompt", "Answer like a pirate.")
    await browser.submit("save-settings")
    assert "Saved (1 changes)" in await browser.text()
    assert "Answer like a pirate." in await browser.text("#setting-changes")
    sim.reset()
    await admin.turn("second", channel="C1")
    [request] = sim.requests_to("chat")
    assert request.body is not None
    system = request.body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].endswith("\n\nAnswer like a pirate."), "added to the global prompt"
    sim.reset()
    await admin.turn("elsewhere", channel="C2")
    assert "pirate" not in str(sim.requests_to("chat")[0].body), "only that channel"


async def test_a_forged_csrf_token_is_refused_in_the_browser(
    admin: AdminRig, browser: Browser
) -> None:
    await admin.turn("keep my words", user="U1")
    await sign_in(browser)
    await browser.open("/admin/data")
    await browser.script(
        "document.querySelector('#purge-form input[name=csrf_token]').value = 'forged-token'"
    )
    await browser.type("user_id", "U1")
    await browser.type("confirm", "U1")
    await browser.submit("purge-button")
    assert browser.title.startswith("Forbidden")
    assert "did not come from this site" in await browser.text()
    contents = [
        r[0] for r in await admin.services.store.db.fetchall("SELECT content FROM messages")
    ]
    assert "keep my words" in contents, "nothing was erased"
    await browser.screenshot("admin-csrf-refused")


async def test_an_admin_erases_a_person_from_their_conversation(
    admin: AdminRig, browser: Browser
) -> None:
    await admin.turn("please forget me", user="U7", thread="t7")
    await admin.turn("remember me", user="U8", thread="t7")
    await sign_in(browser)
    [found] = await admin.services.store.browse.search(user="U7")
    await browser.open(f"/admin/conversations/{found.id}")
    await browser.follow('a[href="/admin/data?user=U7"]')
    assert browser.path == "/admin/data?user=U7"
    await browser.type("confirm", "U7")
    await browser.submit("purge-button")
    assert "Erased U7: 1 messages, 1 answers" in await browser.text("#purge-report")
    await browser.screenshot("admin-purged")
    await browser.open(f"/admin/conversations/{found.id}")
    text = await browser.text()
    assert "please forget me" not in text and "remember me" in text
    assert "text removed (erased on request)" in text
    contents = [
        r[0] for r in await admin.services.store.db.fetchall("SELECT content FROM messages")
    ]
    assert contents.count(REMOVED_TEXT) == 2


async def test_sign_in_with_slack_in_the_browser(make_admin, chromium: WebDriver) -> None:  # type: ignore[no-untyped-def]
    async with FakeSlack() as slack:
        slack.users["U1"] = {"is_admin": True, "real_name": "Ada Admin"}
        rig = await make_admin(
            admin_token=None,
            slack_api_url=slack.api_url,
            slack_bot_token=slack.bot_token,
            slack_client_id=slack.client_id,
            slack_client_secret=slack.client_secret,
        )
        page = Browser(chromium, rig.base)
        await page.open("/admin/login")
        await page._run(chromium.delete_all_cookies)
        await page.open("/admin/login")
        await page.screenshot("admin-login-slack")
        await page.submit("slack-sign-in")  # to Slack's authorize page and straight back
        assert page.path == "/admin", page.path
        assert "Ada Admin" in await page.text("header")
        assert len(slack.authorizations) == 1
