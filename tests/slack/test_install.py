"""Multi-workspace Slack: install through Bolt's OAuth flow against the fake Slack, each team
answered with its own token, bad installs storing nothing, uninstall and revocation, Enterprise
Grid org-wide installs, and tokens sealed at rest (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bots.settings import AppSettings
from core.events import MAIN_THREAD, ConversationKey, Platform
from core.store.installations import InstallationKey, Installations
from simulator import Simulator
from tests.fakes.slack import Grant, Workspace
from tests.slack.install_rig import (
    InstallRig,
    install_settings,
    mention_in,
    open_install_rig,
    open_server,
    post_event,
)

TEAM_A = Workspace("TA", bot_user_id="UBA", bot_id="BBA")
TEAM_B = Workspace("TB", bot_user_id="UBB", bot_id="BBB")
ORG = Workspace(None, bot_user_id="UBE", bot_id="BBE", enterprise_id="E1", org_wide=True)


@pytest.fixture
async def rig(
    sim: Simulator,
    make_settings: Callable[..., AppSettings],
    aiohttp_server_factory,
    on_both_backends: str,
) -> AsyncIterator[InstallRig]:
    async with open_install_rig(
        make_settings, aiohttp_server_factory, database_url=on_both_backends
    ) as opened:
        yield opened


def installations(rig: InstallRig) -> Installations:
    store = rig.server.adapter.workspaces.installations
    assert store is not None
    return store


async def rows(rig: InstallRig) -> list[tuple[str, str]]:
    found = await rig.server.services.store.db.fetchall(
        "SELECT enterprise_id, team_id FROM installations ORDER BY team_id"
    )
    return [(r[0], r[1]) for r in found]


async def answered_with(rig: InstallRig, token: str, count: int = 1) -> list[str]:
    """Wait for `count` finished replies sent with `token`; the texts of its stream stops."""
    await rig.slack.wait_for("chat.stopStream", count=count)
    return [c.method for c in rig.slack.calls_with(token)]


async def test_the_install_page_offers_slack_with_a_state_cookie(rig: InstallRig) -> None:
    status, page, link, cookie = await rig.open_install_page()
    assert status == 200 and "Add to Slack" in page
    assert link.startswith(rig.slack.base + "/oauth/v2/authorize?state=")
    assert "client_id=CLIENT1" in link and "scope=app_mentions:read," in link
    state = link.split("state=")[1].split("&")[0]
    assert cookie == f"slack-app-oauth-state={state}"
    assert "Add to Discord" not in page  # no DISCORD_TOKEN here


async def test_two_workspaces_are_installed_and_each_answered_with_its_own_token(
    rig: InstallRig,
) -> None:
    for workspace in (TEAM_A, TEAM_B):
        status, page = await rig.install(Grant(workspace))
        assert status == 200 and "Parley is installed" in page
    assert await rows(rig) == [("", "TA"), ("", "TB")]
    token_a, token_b = rig.slack.token_of("TA"), rig.slack.token_of("TB")

    assert await rig.event(TEAM_A, mention_in(TEAM_A, "hello from A")) == 200
    await rig.slack.wait_for("chat.stopStream")
    assert await rig.event(TEAM_B, mention_in(TEAM_B, "hello from B")) == 200
    await rig.slack.wait_for("chat.stopStream", count=2)

    sent_a = {c.method for c in rig.slack.calls_with(token_a)}
    sent_b = {c.method for c in rig.slack.calls_with(token_b)}
    assert {"users.info", "chat.startStream", "chat.stopStream"} <= sent_a
    assert {"users.info", "chat.startStream", "chat.stopStream"} <= sent_b
    stops = rig.slack.calls_to("chat.stopStream")
    assert [c.token for c in stops] == [token_a, token_b]
    # No call went out with another team's token or with none at all.
    replies = [c for c in rig.slack.calls if c.method.startswith(("chat.", "users."))]
    assert all(c.token in (token_a, token_b) for c in replies)


async def test_history_and_access_read_with_the_workspaces_own_token(rig: InstallRig) -> None:
    """The history tools, /summarize and digests read a channel as its own workspace's bot."""
    assert (await rig.install(Grant(TEAM_A)))[0] == 200
    rig.slack.channels["C1"] = {"id": "C1", "is_member": True, "is_private": False}
    rig.slack.members["C1"] = ["UA1"]
    rig.slack.history["C1"] = [{"ts": "1.000001", "user": "UA1", "text": "the plan is set"}]
    key = ConversationKey(Platform.SLACK, "TA", "C1", MAIN_THREAD)
    adapter = rig.server.adapter
    access = await adapter.access(key, "UA1")
    page = await adapter.history(key)
    assert access.readable and access.member
    assert [m.text for m in page.messages] == ["the plan is set"]
    reads = [c for c in rig.slack.calls if c.method.startswith(("conversations.", "auth.test"))]
    assert reads and {c.token for c in reads} == {rig.slack.token_of("TA")}


async def test_an_event_for_a_team_without_an_installation_is_acked_and_logged_once(
    rig: InstallRig,
) -> None:
    stranger = Workspace("TX", bot_user_id="UBX")
    with capture_logs() as logs:
        statuses = [await rig.event(stranger, mention_in(stranger, f"hi {n}")) for n in range(3)]
    assert statuses == [200, 200, 200]  # acknowledged: Slack does not retry
    told = [e for e in logs if e["event"] == "slack_team_not_installed"]
    assert len(told) == 1 and told[0]["team"] == "TX"
    assert "/slack/install" in told[0]["fix"]
    await rig.server.services.engine.drain()
    assert not rig.slack.calls_to("chat.startStream") and not rig.slack.calls_to("users.info")


async def test_denied_forged_replayed_and_failed_installs_say_so_and_store_nothing(
    rig: InstallRig,
) -> None:
    status, page = await rig.install("access_denied")
    assert status == 200 and "Installation cancelled" in page

    _, _, link, cookie = await rig.open_install_page()
    state = link.split("state=")[1].split("&")[0]
    code = rig.slack.approve(Grant(TEAM_A))
    forged = f"{rig.url}/slack/oauth_redirect?code={code}&state=forged"
    status, page = await rig.redirect(forged, cookie="slack-app-oauth-state=forged")
    assert status == 401 and "expired" in page  # never issued here
    status, page = await rig.redirect(
        f"{rig.url}/slack/oauth_redirect?code={code}&state={state}", cookie=""
    )
    assert status == 400 and "Start from the install page" in page  # not this browser

    good = f"{rig.url}/slack/oauth_redirect?code={code}&state={state}"
    assert (await rig.redirect(good, cookie=cookie))[0] == 200
    await rig.server.services.store.db.execute("DELETE FROM installations")
    status, page = await rig.redirect(good, cookie=cookie)  # the same state again
    assert status == 401 and "already used" in page

    _, _, link, cookie = await rig.open_install_page()
    state = link.split("state=")[1].split("&")[0]
    bad_code = f"{rig.url}/slack/oauth_redirect?code=never-issued&state={state}"
    status, page = await rig.redirect(bad_code, cookie=cookie)
    assert status == 401 and "Slack refused the installation" in page
    assert await rows(rig) == []


async def test_uninstall_removes_the_installation_and_stops_the_team(rig: InstallRig) -> None:
    await rig.install(Grant(TEAM_A))
    await rig.install(Grant(TEAM_B))
    await rig.event(TEAM_A, {"type": "app_uninstalled"})
    assert await rows(rig) == [("", "TB")]
    with capture_logs() as logs:
        assert await rig.event(TEAM_A, mention_in(TEAM_A, "still there?")) == 200
    assert [e["team"] for e in logs if e["event"] == "slack_team_not_installed"] == ["TA"]
    await rig.event(TEAM_B, {"type": "tokens_revoked", "tokens": {"bot": ["UBB"]}})
    assert await rows(rig) == []
    await rig.server.services.engine.drain()
    assert not rig.slack.calls_to("chat.startStream")


async def test_a_revoked_token_is_marked_at_the_first_refusal(rig: InstallRig) -> None:
    await rig.install(Grant(TEAM_A))
    await rig.event(TEAM_A, mention_in(TEAM_A, "first"))
    await rig.slack.wait_for("chat.stopStream")
    rig.slack.revoked.add(rig.slack.token_of("TA"))  # revoked in Slack, no event sent
    with capture_logs() as logs:
        await rig.event(TEAM_A, mention_in(TEAM_A, "second"))
        await rig.server.services.engine.drain()
        found = await installations(rig).find(InstallationKey("slack", "", "TA"))
        assert found is not None and found.revoked and found.revoked_reason == "token_revoked"
        assert found.bot_token is None
        await rig.event(TEAM_A, mention_in(TEAM_A, "third"))
    assert sum(e["event"] == "slack_installation_revoked" for e in logs) == 1
    assert sum(e["event"] == "slack_team_not_installed" for e in logs) == 1
    assert len(rig.slack.calls_to("chat.stopStream")) == 1
    await rig.install(Grant(TEAM_A))  # installing again brings it back
    await rig.event(TEAM_A, mention_in(TEAM_A, "back"))
    await rig.slack.wait_for("chat.stopStream", count=2)


async def test_an_org_wide_enterprise_install_serves_every_workspace_of_the_org(
    rig: InstallRig,
) -> None:
    status, page = await rig.install(Grant(ORG))
    assert status == 200 and "your organization" in page
    assert await rows(rig) == [("E1", "")]
    token = rig.slack.token_of("E1")
    for n, team in enumerate(("T1", "T2"), start=1):
        await rig.event(ORG, mention_in(ORG, f"from {team}", team=team))
        await rig.slack.wait_for("chat.stopStream", count=n)
    assert {c.token for c in rig.slack.calls_to("chat.stopStream")} == {token}
    # After a restart a reply into T2 (knowing only the workspace) finds the org's install.
    found = await installations(rig).find_for_team("slack", "T2")
    assert found is not None and found.key == InstallationKey("slack", "E1", "")


async def test_tokens_are_sealed_in_the_database(rig: InstallRig, on_both_backends: str) -> None:
    await rig.install(Grant(TEAM_A, rotation=True))
    token = rig.slack.token_of("TA")
    refresh = next(iter(rig.slack._refresh_tokens))
    db = rig.server.services.store.db
    row = await db.fetchone("SELECT bot_token, bot_refresh_token FROM installations")
    assert row is not None and row[0].startswith("gAAAA") and row[1].startswith("gAAAA")
    if on_both_backends.startswith("sqlite"):
        await db.close()  # everything checkpointed into the file (and its WAL) is on disk
        raw = b"".join(
            p.read_bytes()
            for p in Path(on_both_backends.removeprefix("sqlite:///")).parent.glob("bot.db*")
        )
        await db.open()
    else:
        everything = await db.fetchall("SELECT * FROM installations")
        raw = repr([tuple(r) for r in everything]).encode()
    assert raw and token.encode() not in raw and refresh.encode() not in raw
    assert b"TA" in raw  # the row is there, only its tokens are unreadable


async def test_concurrent_installs_consume_each_state_once(rig: InstallRig) -> None:
    _, _, link, cookie = await rig.open_install_page()
    state = link.split("state=")[1].split("&")[0]
    codes = [rig.slack.approve(Grant(w)) for w in (TEAM_A, TEAM_B)]
    results = await asyncio.gather(
        *(
            rig.redirect(f"{rig.url}/slack/oauth_redirect?code={c}&state={state}", cookie=cookie)
            for c in codes
        )
    )
    assert sorted(status for status, _ in results) == [200, 401]
    assert len(await rows(rig)) == 1


async def test_a_due_token_is_refreshed_once_by_two_processes_on_one_database(
    sim: Simulator,
    make_settings: Callable[..., AppSettings],
    aiohttp_server_factory,
    on_both_backends: str,
) -> None:
    async with open_install_rig(
        make_settings, aiohttp_server_factory, database_url=on_both_backends
    ) as rig:
        grant = Grant(TEAM_A, rotation=True, expires_in=3600)  # within the 2 h refresh window
        assert (await rig.install(grant))[0] == 200
        old = rig.slack.token_of("TA")
        grant.expires_in = 43_200  # the refreshed token lasts 12 h, as Slack's do
        settings = install_settings(make_settings, rig.slack, database_url=on_both_backends)
        async with open_server(settings, aiohttp_server_factory) as second:
            statuses = await asyncio.gather(
                rig.event(TEAM_A, mention_in(TEAM_A, "one")),
                post_event(rig.http, second.url, TEAM_A, mention_in(TEAM_A, "two")),
            )
            assert statuses == [200, 200]
            await rig.slack.wait_for("chat.stopStream", count=2)
            assert rig.slack.refreshes == 1  # one process refreshed, the other kept the old one
            new = rig.slack.token_of("TA")
            assert new != old
            found = await installations(rig).find(InstallationKey("slack", "", "TA"))
            assert found is not None and found.bot_token == new
            assert found.bot_token_expires_at is not None
            assert found.bot_token_expires_at > time.time() + 40_000
            stops = [c.token for c in rig.slack.calls_to("chat.stopStream")]
            assert set(stops) <= {old, new} and new in stops
            # From now on both processes answer with the new token, and nobody refreshes again.
            await rig.event(TEAM_A, mention_in(TEAM_A, "three"))
            await post_event(rig.http, second.url, TEAM_A, mention_in(TEAM_A, "four"))
            await rig.slack.wait_for("chat.stopStream", count=4)
            assert [c.token for c in rig.slack.calls_to("chat.stopStream")][2:] == [new, new]
            assert rig.slack.refreshes == 1
            await second.services.engine.drain()


async def test_turning_rotation_on_exchanges_each_long_lived_token_once_across_processes(
    sim: Simulator,
    make_settings: Callable[..., AppSettings],
    aiohttp_server_factory,
    on_both_backends: str,
) -> None:
    async with open_install_rig(
        make_settings, aiohttp_server_factory, database_url=on_both_backends
    ) as rig:
        assert (await rig.install(Grant(TEAM_A)))[0] == 200  # before rotation: long-lived
        old = rig.slack.token_of("TA")
        rotating = install_settings(
            make_settings, rig.slack, database_url=on_both_backends, slack_token_rotation=True
        )
        async with (
            open_server(rotating, aiohttp_server_factory) as first,
            open_server(rotating, aiohttp_server_factory) as second,
        ):
            statuses = await asyncio.gather(
                post_event(rig.http, first.url, TEAM_A, mention_in(TEAM_A, "one")),
                post_event(rig.http, second.url, TEAM_A, mention_in(TEAM_A, "two")),
            )
            assert statuses == [200, 200]
            await rig.slack.wait_for("chat.stopStream", count=2)
            assert rig.slack.exchanges == 1, "one process exchanged, the other waited for it"
            new = rig.slack.token_of("TA")
            assert new != old
            found = await installations(rig).find(InstallationKey("slack", "", "TA"))
            assert found is not None and found.bot_token == new
            assert found.bot_refresh_token and found.bot_token_expires_at
            stops = [c.token for c in rig.slack.calls_to("chat.stopStream")]
            assert stops == [new, new], "the exchanged (old) token is never used again"
            await first.services.engine.drain()
            await second.services.engine.drain()


@pytest.mark.parametrize(
    ("secret_key", "message"),
    [(None, "SECRET_KEY is not set: "), ("short", "SECRET_KEY is shorter than 32 characters: ")],
)
def test_a_missing_or_short_secret_key_stops_the_start_with_one_line(
    make_settings: Callable[..., AppSettings], secret_key: str | None, message: str
) -> None:
    from bots.errors import UsageError
    from bots.serve import check_platform_settings

    settings = make_settings(
        slack_client_id="CLIENT1",
        slack_client_secret="client-secret",
        slack_signing_secret="s",
        secret_key=secret_key,
    )
    with pytest.raises(UsageError) as raised:
        check_platform_settings(settings, http=True, connections=False)
    text = str(raised.value)
    assert text.startswith(message) and "\n" not in text and "token_urlsafe" in text


async def test_the_install_page_links_the_discord_invite_when_discord_is_configured(
    sim: Simulator, make_settings: Callable[..., AppSettings], aiohttp_server_factory
) -> None:
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"  # 123456789012345678
    async with open_install_rig(make_settings, aiohttp_server_factory, discord_token=token) as rig:
        _, page, link, _ = await rig.open_install_page()
    assert link and "Add to Discord" in page
    assert "client_id=123456789012345678" in page and "scope=bot+applications.commands" in page
