"""Starting the Slack adapter: the bot token is checked against `auth.test` (one clear line when
Slack rejects it or cannot be reached), and building the adapter logs no spurious Bolt warning."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from bots.errors import StartupError
from bots.services import Services
from bots.settings import AppSettings as Settings
from bots.slack.app import SlackAdapter
from tests.fakes.slack import FakeSlack

REJECTED = (
    "Slack rejected SLACK_BOT_TOKEN (invalid_auth): copy the Bot User OAuth Token again from the "
    "app's OAuth & Permissions page"
)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def _adapter(
    services: Services, make_settings: Callable[..., Settings], **slack: str
) -> SlackAdapter:
    settings = make_settings(**{f"slack_{k}": v for k, v in slack.items()})
    return SlackAdapter(settings.slack, services.engine)


async def test_a_good_token_is_verified_and_the_bot_user_id_cached(
    slack: FakeSlack, services: Services, make_settings: Callable[..., Settings]
) -> None:
    adapter = await _adapter(
        services, make_settings, bot_token=slack.bot_token, api_url=slack.api_url
    )
    try:
        await adapter.verify_token()
        assert await adapter.bot_user_id() == slack.bot_user_id
        assert len(slack.calls_to("auth.test")) == 1, "the bot user id came from the check"
    finally:
        await adapter.close()


async def test_a_wrong_token_stops_the_start_with_one_line(
    slack: FakeSlack, services: Services, make_settings: Callable[..., Settings]
) -> None:
    adapter = await _adapter(
        services, make_settings, bot_token="xoxb-not-the-token", api_url=slack.api_url
    )
    try:
        with pytest.raises(StartupError) as raised:
            await adapter.verify_token()
    finally:
        await adapter.close()
    assert str(raised.value) == REJECTED
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize("code", ["not_authed", "account_inactive", "token_revoked"])
async def test_a_revoked_or_inactive_token_stops_the_start(
    slack: FakeSlack, services: Services, make_settings: Callable[..., Settings], code: str
) -> None:
    slack.fail_next("auth.test", code)
    adapter = await _adapter(
        services, make_settings, bot_token=slack.bot_token, api_url=slack.api_url
    )
    try:
        with pytest.raises(StartupError) as raised:
            await adapter.verify_token()
    finally:
        await adapter.close()
    assert str(raised.value) == REJECTED.replace("invalid_auth", code)


async def test_an_unreachable_api_url_stops_the_start_naming_the_url(
    services: Services, make_settings: Callable[..., Settings], closed_port: int
) -> None:
    url = f"http://127.0.0.1:{closed_port}/api/"
    adapter = await _adapter(services, make_settings, bot_token="xoxb-x", api_url=url)
    try:
        with pytest.raises(StartupError) as raised:
            await adapter.verify_token()
    finally:
        await adapter.close()
    message = str(raised.value)
    assert f"SLACK_API_URL={url}" in message and "unreachable" in message, message
    assert "\n" not in message


async def test_building_the_adapter_logs_no_token_will_be_unused_warning(
    slack: FakeSlack,
    services: Services,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)  # as in production; Bolt reads it
    caplog.set_level(logging.DEBUG)
    adapter = await _adapter(
        services, make_settings, bot_token=slack.bot_token, api_url=slack.api_url
    )
    await adapter.close()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("slack_bolt")]
    assert not [m for m in messages if "will be unused" in m], messages
    other = logging.getLogger("slack_bolt.AsyncApp")
    with caplog.at_level(logging.WARNING):
        other.warning("a different Bolt warning")
    assert "a different Bolt warning" in caplog.text, "only that one message is filtered"
