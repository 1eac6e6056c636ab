"""Bad input never gets a 500 (which Slack redelivers) nor a traceback: odd timestamps are
answered, malformed interactivity and assistant payloads get a 400 before Bolt sees them, and
well-formed interactivity the bot does not use gets a 200. Over HTTP and over Socket Mode."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from bots.settings import AppSettings as Settings
from simulator import Simulator
from tests.fakes.slack import FakeSlack, sign
from tests.slack.rig import SECRET, Rig, event_callback, mention, open_rig, open_socket_rig

FORM = "application/x-www-form-urlencoded"
Check = Callable[[Sequence[Mapping[str, Any]]], None]


@pytest.fixture
async def rig(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory
) -> AsyncIterator[Rig]:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as opened:
        yield opened


async def _answer_in(slack: FakeSlack, thread_ts: str) -> str:
    """The finished streamed reply in a thread."""
    await slack.wait_for("chat.stopStream")
    (message,) = [m for m in slack.messages.values() if m.get("thread_ts") == thread_ts]
    return str(message["text"])


@pytest.fixture
def no_failures(caplog: pytest.LogCaptureFixture) -> Check:
    """A check that neither our logs (structlog) nor the libraries' (logging) hold an error or
    a traceback."""
    caplog.set_level(logging.INFO)

    def check(logs: Sequence[Mapping[str, Any]]) -> None:
        ours = [e for e in logs if e["log_level"] == "error" or "exc_info" in e]
        theirs = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert not ours and not theirs, (ours, [r.getMessage() for r in theirs])

    return check


async def _interaction(rig: Rig, payload: Any) -> tuple[int, str]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    response = await rig.post(body, content_type=FORM)
    return response.status, await response.text()


# -- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "envelope, ts",
    [
        ({"event_time": 10**20}, "100.000001"),
        ({"event_time": -(10**12)}, "100.000001"),
        ({"event_time": None}, "abc"),
        ({"event_time": None}, "NaN"),
    ],
    ids=["event_time-1e20", "event_time-negative", "ts-abc", "ts-NaN"],
)
async def test_unusable_timestamps_are_still_answered(
    rig: Rig, no_failures: Check, envelope: dict[str, Any], ts: str
) -> None:
    body = event_callback(mention("hello there", ts=ts), "EvTime") | envelope
    if body["event_time"] is None:
        del body["event_time"]  # so the message's own ts is what dates it
    raw = json.dumps(body).encode()
    with capture_logs() as logs:
        response = await rig.post(raw, sign(SECRET, raw))
        assert response.status == 200
        assert await _answer_in(rig.slack, ts) == "You said: hello there"
    no_failures(logs)


# -- interactivity ----------------------------------------------------------------------------

USER = {"id": "U1", "team_id": "T1"}
MALFORMED_INTERACTIONS: dict[str, dict[str, Any]] = {
    "actions-a-string": {"type": "block_actions", "user": USER, "actions": "junk"},
    "actions-of-numbers": {"type": "block_actions", "user": USER, "actions": [1, 2]},
    "action_id-a-number": {"type": "block_actions", "user": USER, "actions": [{"action_id": 5}]},
    "actions-empty": {"type": "block_actions", "user": USER, "actions": []},
    "actions-null": {"type": "block_actions", "user": USER, "actions": None},
    "response_urls-junk": {
        "type": "block_actions",
        "actions": [{"action_id": "a"}],
        "response_urls": [5],
    },
    "suggestion-action_id-a-number": {"type": "block_suggestion", "action_id": 5, "value": "x"},
    "suggestion-value-a-list": {"type": "block_suggestion", "action_id": "a", "value": []},
    "view-without-type": {"type": "view_submission", "view": {"callback_id": "cb", "id": "V1"}},
    "view-a-string": {"type": "view_submission", "view": "junk"},
    "shortcut-callback_id-a-number": {"type": "shortcut", "callback_id": 5},
}


@pytest.mark.parametrize("payload", MALFORMED_INTERACTIONS.values(), ids=MALFORMED_INTERACTIONS)
async def test_malformed_interactions_get_a_400(
    rig: Rig, no_failures: Check, payload: dict[str, Any]
) -> None:
    with capture_logs() as logs:
        status, text = await _interaction(rig, payload)
    assert status == 400, (status, text)
    no_failures(logs)


WELL_FORMED_INTERACTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "button": (
        {
            "type": "block_actions",
            "user": USER,
            "team": {"id": "T1"},
            "trigger_id": "tr1",
            "response_url": "https://hooks.slack.com/actions/T1/1/x",
            "actions": [{"action_id": "feedback_good", "block_id": "b1", "type": "button"}],
        },
        "",
    ),
    "suggestion": (
        {"type": "block_suggestion", "user": USER, "action_id": "pick", "value": "ab"},
        '{"options": []}',
    ),
    "modal": (
        {"type": "view_submission", "user": USER, "view": {"type": "modal", "callback_id": "cb"}},
        "",
    ),
    "shortcut": ({"type": "shortcut", "user": USER, "callback_id": "summarize"}, ""),
}


@pytest.mark.parametrize(
    "payload, answer", WELL_FORMED_INTERACTIONS.values(), ids=WELL_FORMED_INTERACTIONS
)
async def test_well_formed_interactions_the_bot_does_not_use_get_a_200(
    rig: Rig, payload: dict[str, Any], answer: str
) -> None:
    status, text = await _interaction(rig, payload)
    assert status == 200, (status, text)
    assert (json.loads(text) if answer else text) == (json.loads(answer) if answer else "")


# -- assistant threads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "thread",
    ["junk", ["D1", "1.2"], {"channel_id": 5, "thread_ts": []}, {"channel_id": "D1"}, 5],
    ids=["a-string", "a-list", "junk-ids", "no-thread_ts", "a-number"],
)
async def test_malformed_assistant_thread_started_gets_a_400(
    rig: Rig, no_failures: Check, thread: Any
) -> None:
    event = {"type": "assistant_thread_started", "assistant_thread": thread, "event_ts": "7.1"}
    with capture_logs() as logs:
        response = await rig.event(event)
    assert response.status == 400
    no_failures(logs)
    assert not rig.slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert (await rig.event(mention("still there?"))).status == 200
    assert await _answer_in(rig.slack, "100.000001") == "You said: still there?"


@pytest.mark.parametrize(
    "thread",
    [None, "junk", ["a"], {"channel_id": 5, "thread_ts": "1.2"}, {"channel_id": "D1"}],
)
async def test_the_assistant_listener_reads_its_event_defensively(rig: Rig, thread: Any) -> None:
    event = {"type": "assistant_thread_started", "assistant_thread": thread}
    await rig.adapter._on_assistant_thread_started({}, event)
    assert not rig.slack.calls_to("assistant.threads.setSuggestedPrompts")


# -- Socket Mode ------------------------------------------------------------------------------


async def test_malformed_envelopes_are_acked_and_dropped_over_socket_mode(
    make_settings: Callable[..., Settings], no_failures: Check
) -> None:
    async with open_socket_rig(make_settings) as rig:
        with capture_logs() as logs:
            junk: list[tuple[str, dict[str, Any]]] = [
                ("interactive", MALFORMED_INTERACTIONS["actions-a-string"]),
                ("interactive", MALFORMED_INTERACTIONS["view-without-type"]),
                (
                    "events_api",
                    event_callback(
                        {"type": "assistant_thread_started", "assistant_thread": "junk"}, "EvJ"
                    ),
                ),
            ]
            for kind, payload in junk:
                envelope = await rig.slack.socket_send(kind, payload)
                assert (await rig.slack.wait_for_ack(envelope))["envelope_id"] == envelope
            button = WELL_FORMED_INTERACTIONS["button"][0]
            envelope = await rig.slack.socket_send("interactive", button)
            await rig.slack.wait_for_ack(envelope)
            ts = f"{int(time.time())}.000002"
            envelope = await rig.slack.socket_send(
                "events_api", event_callback(mention("and now?", ts=ts), "EvOk")
            )
            await rig.slack.wait_for_ack(envelope)
            assert await _answer_in(rig.slack, ts) == "You said: and now?"
        no_failures(logs)
        rejected = [e for e in logs if e["event"] == "slack_request_rejected"]
        assert len(rejected) == 3 and all(e["transport"] == "socket_mode" for e in rejected)
