"""Sign in with Slack against the fake Slack (OpenID Connect through slack_sdk): who is admitted,
and every way a sign-in is refused (state, browser, nonce, client, refusal, another workspace)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.admin.client import AdminClient, Page, csrf_of
from tests.admin.conftest import AdminRig
from tests.fakes.slack import FakeSlack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def make_slack_admin(make_admin, slack: FakeSlack) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    async def make(**overrides: object) -> AdminRig:
        values: dict[str, object] = {
            "admin_token": None,
            "slack_api_url": slack.api_url,
            "slack_bot_token": slack.bot_token,
            "slack_client_id": slack.client_id,
            "slack_client_secret": slack.client_secret,
            **overrides,
        }
        return await make_admin(**values)

    return make


async def start(client: AdminClient) -> Page:
    """Press "Sign in with Slack": the redirect to Slack's authorize page."""
    login = await client.get("/admin/login")
    assert "Sign in with Slack" in login.text
    return await client.post("/admin/login/slack", {"csrf_token": csrf_of(login.text)})


async def at_slack(client: AdminClient, authorize: str) -> str:
    """Visit the (fake) authorize page; returns where Slack sends the browser back."""
    async with client.http.get(authorize, allow_redirects=False) as response:
        assert response.status == 302
        return response.headers["Location"]


async def sign_in(client: AdminClient) -> Page:
    """The whole flow in one browser; the callback's answer."""
    back = await at_slack(client, (await start(client)).location)
    return await client.get(back.removeprefix(client.base))


async def test_a_workspace_admin_signs_in(make_slack_admin, slack: FakeSlack) -> None:  # type: ignore[no-untyped-def]
    slack.users["U1"] = {"is_admin": True, "real_name": "Ada Admin"}
    rig = await make_slack_admin()
    redirect = await start(rig.client)
    assert redirect.status == 303
    target = urlsplit(redirect.location)
    assert f"{target.scheme}://{target.netloc}" == slack.base, "the host of SLACK_API_URL"
    assert target.path == "/openid/connect/authorize"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["response_type"] == "code" and query["scope"] == "openid profile"
    assert query["client_id"] == slack.client_id
    assert query["redirect_uri"] == f"{rig.base}/admin/login/slack/callback"
    assert len(query["state"]) >= 40 and len(query["nonce"]) >= 40
    assert query["state"] != query["nonce"]
    back = await at_slack(rig.client, redirect.location)
    done = await rig.client.get(back.removeprefix(rig.base))
    assert done.status == 303 and done.location == "/admin"
    assert any(c.startswith("parley_admin=") for c in done.cookies)
    overview = await rig.client.get("/admin")
    assert overview.status == 200 and "Ada Admin" in overview.text
    assert [c.method for c in slack.calls if c.method.startswith("openid")] == [
        "openid.connect.token",
        "openid.connect.userInfo",
    ]
    assert slack.calls_to("users.info")[-1].args["user"] == "U1"


async def test_an_owner_and_admin_user_ids_are_admitted(make_slack_admin, slack: FakeSlack) -> None:  # type: ignore[no-untyped-def]
    slack.users["U2"] = {"is_owner": True}
    rig = await make_slack_admin(admin_user_ids="U3")
    slack.signin_user = "U2"
    assert (await sign_in(rig.client)).location == "/admin"
    slack.signin_user = "U3"  # not a Slack admin, but listed
    other = await rig.another_client()
    assert (await sign_in(other)).location == "/admin"
    assert (await other.get("/admin")).status == 200


async def test_a_member_who_is_not_an_admin_gets_403(make_slack_admin, slack: FakeSlack) -> None:  # type: ignore[no-untyped-def]
    rig = await make_slack_admin()
    page = await sign_in(rig.client)
    assert page.status == 403 and "not an admin" in page.text
    assert not any(c.startswith("parley_admin=") and "Max-Age=0" not in c for c in page.cookies)
    assert (await rig.client.get("/admin")).status == 303


async def test_an_admin_of_another_workspace_gets_403(make_slack_admin, slack: FakeSlack) -> None:  # type: ignore[no-untyped-def]
    slack.users["U1"] = {"is_admin": True}
    slack.signin_team = "T-OTHER"
    rig = await make_slack_admin()
    assert (await sign_in(rig.client)).status == 403


async def test_a_state_is_good_once_and_in_the_browser_that_started_it(
    make_slack_admin, slack: FakeSlack
) -> None:  # type: ignore[no-untyped-def]
    slack.users["U1"] = {"is_admin": True}
    rig = await make_slack_admin()
    back = await at_slack(rig.client, (await start(rig.client)).location)
    stranger = await rig.another_client()
    await stranger.get("/admin/login")  # has a login cookie of its own
    assert (await stranger.get(back.removeprefix(rig.base))).status == 403, "another browser"
    # The state was consumed by the refused attempt: even the right browser cannot use it now.
    assert (await rig.client.get(back.removeprefix(rig.base))).status == 403
    fresh = await at_slack(rig.client, (await start(rig.client)).location)
    assert (await rig.client.get(fresh.removeprefix(rig.base))).status == 303
    replay = await rig.another_client()
    assert (await replay.get(fresh.removeprefix(rig.base))).status == 403, "used already"


async def test_a_forged_state_or_a_wrong_nonce_is_refused(
    make_slack_admin, slack: FakeSlack
) -> None:  # type: ignore[no-untyped-def]
    slack.users["U1"] = {"is_admin": True}
    rig = await make_slack_admin()
    back = await at_slack(rig.client, (await start(rig.client)).location)
    forged = back.replace("state=", "state=x")
    assert (await rig.client.get(forged.removeprefix(rig.base))).status == 403
    back = await at_slack(rig.client, (await start(rig.client)).location)
    code = parse_qs(urlsplit(back).query)["code"][0]
    slack._codes[code]["nonce"] = "someone-elses-nonce"
    page = await rig.client.get(back.removeprefix(rig.base))
    assert page.status == 403 and "does not belong to this sign-in" in page.text


async def test_a_refusal_at_slack_or_a_wrong_client_secret_is_refused(
    make_slack_admin, slack: FakeSlack
) -> None:  # type: ignore[no-untyped-def]
    slack.users["U1"] = {"is_admin": True}
    rig = await make_slack_admin()
    slack.signin_refused = True
    assert (await sign_in(rig.client)).status == 403
    slack.signin_refused = False
    wrong = await make_slack_admin(
        slack_client_secret="not-the-secret", database_url=rig.services.settings.store.url
    )
    page = await sign_in(wrong.client)
    assert page.status == 403 and "refused" in page.text
    assert "not-the-secret" not in page.text and slack.client_secret not in page.text


async def test_sign_in_failures_count_against_the_rate_limit(
    make_slack_admin, slack: FakeSlack
) -> None:  # type: ignore[no-untyped-def]
    rig = await make_slack_admin()
    for _ in range(5):
        assert (await sign_in(rig.client)).status == 403  # U1 is no admin
    slack.users["U1"] = {"is_admin": True}
    assert (await sign_in(rig.client)).status == 429
