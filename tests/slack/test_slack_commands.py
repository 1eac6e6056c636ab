"""Slash commands are acknowledged within Slack's 3 seconds whatever they run, then answered through
their response_url (or ephemerally when that fails), over HTTP and over Socket Mode."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from structlog.testing import capture_logs

from bots.settings import AppSettings as Settings
from bots.slack.app import COMMAND_FAILED
from core.engine import STORE_FAILURE_MESSAGE
from core.store import StoreError
from simulator import Fail, Simulator, Text
from tests.slack.rig import Rig, add_slow_tool, mention, open_rig, open_socket_rig

ACK_BUDGET = 1.0  # seconds; Slack allows 3
SLOW = 4.0  # seconds a slow model takes: past Slack's budget
T = TypeVar("T")


@pytest.fixture
async def rig(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory
) -> AsyncIterator[Rig]:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as opened:
        yield opened


async def timed(request: Awaitable[T]) -> tuple[T, float]:
    """The request's result and how long it took; a request still unanswered after twice the
    budget fails the test (instead of waiting on a command that waits on the test)."""
    started = time.monotonic()
    result = await asyncio.wait_for(request, 2 * ACK_BUDGET + 1)
    return result, time.monotonic() - started


# -- HTTP -------------------------------------------------------------------------------------


async def test_a_slow_tool_command_is_acknowledged_at_once_over_http(rig: Rig) -> None:
    slow = add_slow_tool(rig.services)
    try:
        response, seconds = await timed(rig.command("/tool", "slow_report sales", key="slow"))
        assert response.status == 200
        assert seconds < ACK_BUDGET, f"acknowledged after {seconds:.2f} s"
        await asyncio.wait_for(slow.started.wait(), 10)
        assert rig.slack.response_posts["slow"] == [], "acknowledged while the tool still runs"
    finally:
        slow.release.set()
    posts = await rig.slack.wait_for_response("slow")
    assert posts[0]["text"] == "report on sales"
    assert posts[0]["response_type"] == "in_channel"


async def test_a_command_under_a_slow_image_model_is_acknowledged_at_once(rig: Rig) -> None:
    rig.sim.fail_next("images", Fail(503, delay=SLOW))  # answers after 4 s; the retry succeeds
    response, seconds = await timed(
        rig.command("/tool", 'generate_image prompt="a heron at dawn"', key="img")
    )
    assert response.status == 200
    assert seconds < ACK_BUDGET, f"acknowledged after {seconds:.2f} s"
    await rig.sim.wait_for("images")
    assert rig.slack.response_posts["img"] == [], "acknowledged while the image is generated"
    posts = await rig.slack.wait_for_response("img", timeout=SLOW + 15)
    assert posts[0]["text"] == "sent file image.png"
    await rig.slack.wait_for("files.completeUploadExternal")


async def test_ask_under_a_slow_model_is_acknowledged_at_once(rig: Rig) -> None:
    rig.sim.enqueue(Text("Twenty-five days a year.", delay=SLOW))
    response, seconds = await timed(rig.command("/ask", "how many holidays do we get?"))
    assert response.status == 200
    assert seconds < ACK_BUDGET, f"acknowledged after {seconds:.2f} s"
    await rig.slack.wait_for("chat.stopStream", timeout=SLOW + 15)
    assert any(m.get("text") == "Twenty-five days a year." for m in rig.slack.messages.values())


async def test_a_slow_command_typed_in_a_mention_is_acknowledged_at_once(rig: Rig) -> None:
    slow = add_slow_tool(rig.services)
    try:
        response, seconds = await timed(
            rig.event(mention("/tool slow_report churn", ts="100.000009", thread_ts="100.000001"))
        )
        assert response.status == 200
        assert seconds < ACK_BUDGET, f"acknowledged after {seconds:.2f} s"
        await asyncio.wait_for(slow.started.wait(), 10)
    finally:
        slow.release.set()
    await rig.slack.wait_for("chat.postMessage")
    posted = rig.slack.calls_to("chat.postMessage")[-1].args
    assert posted["text"] == "report on churn" and posted["thread_ts"] == "100.000001"


# -- response_url failures: the answer still reaches the user ----------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("kind", ["expired", "unreachable", "missing", "invalid"])
async def test_a_failed_response_url_falls_back_to_an_ephemeral_post(
    rig: Rig, closed_port: int, kind: str
) -> None:
    url = {
        "expired": rig.slack.response_url("gone", status=404),
        "unreachable": f"http://127.0.0.1:{closed_port}/respond/x",
        "missing": "",
        "invalid": "not a url",
    }[kind]
    with capture_logs() as logs:
        response = await rig.command("/model", "", response_url=url)
        assert response.status == 200
        (ephemeral,) = await rig.slack.wait_for("chat.postEphemeral")
        await rig.adapter.drain()
    assert ephemeral.args["channel"] == "C1" and ephemeral.args["user"] == "U1"
    assert "Model here: gpt-6-luna" in ephemeral.args["text"]
    assert COMMAND_FAILED not in ephemeral.args["text"]
    (failed,) = [e for e in logs if e["event"] == "slack_response_url_failed"]
    expected = {
        "expired": "HTTP 404",
        "unreachable": "Client",  # aiohttp's ClientConnectorError
        "missing": "missing response_url",
        "invalid": "InvalidUrl",  # aiohttp's InvalidUrlClientError
    }[kind]
    assert expected in failed["reason"], failed
    assert failed["command"] == "/model" and failed["fallback"] == "chat.postEphemeral"
    if kind == "expired":
        assert rig.slack.calls_to("response_url"), "the response_url was tried first"
    assert not any(e["log_level"] == "error" for e in logs), logs


async def test_a_command_that_fails_says_so_and_is_logged(rig: Rig) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("the ledger is locked")

    rig.services.engine.command = broken  # type: ignore[method-assign,assignment]
    with capture_logs() as logs:
        await rig.command("/usage", "", key="u")
        posts = await rig.slack.wait_for_response("u")
    assert posts[0]["text"] == COMMAND_FAILED
    (failed,) = [e for e in logs if e["event"] == "slack_command_failed"]
    assert "the ledger is locked" in failed["error"] and failed["command"] == "/usage"


# -- Socket Mode ------------------------------------------------------------------------------


async def test_a_slow_tool_command_is_acknowledged_at_once_over_socket_mode(
    make_settings: Callable[..., Settings],
) -> None:
    async with open_socket_rig(make_settings) as rig:
        slow = add_slow_tool(rig.services)
        try:
            envelope = await rig.command("/tool", "slow_report sales", key="slow")
            ack, seconds = await timed(rig.slack.wait_for_ack(envelope))
            assert ack["envelope_id"] == envelope
            assert seconds < ACK_BUDGET, f"acknowledged after {seconds:.2f} s"
            await asyncio.wait_for(slow.started.wait(), 10)
            assert rig.slack.response_posts["slow"] == [], "acked while the tool still runs"
        finally:
            slow.release.set()
        posts = await rig.slack.wait_for_response("slow")
        assert posts[0]["text"] == "report on sales"


async def test_a_command_under_a_slow_image_model_is_acknowledged_at_once_over_socket_mode(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    async with open_socket_rig(make_settings) as rig:
        sim.fail_next("images", Fail(503, delay=SLOW))
        envelope = await rig.command("/tool", 'generate_image prompt="a heron"', key="img")
        _, seconds = await timed(rig.slack.wait_for_ack(envelope))
        assert seconds < ACK_BUDGET, f"acknowledged after {seconds:.2f} s"
        assert rig.slack.response_posts["img"] == [], "acked while the image is generated"
        posts = await rig.slack.wait_for_response("img", timeout=SLOW + 15)
        assert posts[0]["text"] == "sent file image.png"


async def test_background_commands_are_kept_referenced_until_done(rig: Rig) -> None:
    slow = add_slow_tool(rig.services)
    await rig.command("/tool", "slow_report q3", key="q3")
    await asyncio.wait_for(slow.started.wait(), 10)
    assert len(rig.adapter._tasks) == 1, "the running command is held by the adapter"
    slow.release.set()
    await rig.slack.wait_for_response("q3")
    await rig.adapter.drain()
    assert not rig.adapter._tasks


async def test_ask_whose_question_cannot_be_stored_says_send_it_again(rig: Rig) -> None:
    async def unavailable(*_: object) -> None:
        raise StoreError("database is locked")

    rig.services.engine.submit = unavailable  # type: ignore[method-assign,assignment]
    await rig.command("/ask", "anyone there?", key="a")
    posts = await rig.slack.wait_for_response("a")
    assert posts[0]["text"] == STORE_FAILURE_MESSAGE
