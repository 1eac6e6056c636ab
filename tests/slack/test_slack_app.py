"""The Slack adapter end to end: Bolt over HTTP (signed requests), the fake Web API, the simulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import pytest

from bots.services import build_services
from bots.settings import AppSettings as Settings
from bots.slack.app import SlackAdapter
from simulator import Simulator, Text
from tests.fakes.slack import FakeSlack, sign
from tests.slack.rig import SECRET, Rig, event_callback, mention, message, open_rig


@pytest.fixture
async def rig(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory
) -> AsyncIterator[Rig]:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as opened:
        yield opened


async def _streamed_text(slack: FakeSlack) -> str:
    await slack.wait_for("chat.stopStream")
    start = slack.calls_to("chat.startStream")[-1]
    ts = next(
        ts
        for ts, m in slack.messages.items()
        if m.get("thread_ts") == start.args["thread_ts"] and "streaming" in m
    )
    return slack.messages[ts]["text"]


async def test_a_mention_is_answered_in_its_thread(rig: Rig) -> None:
    response = await rig.event(mention("what is the capital of France?"))
    assert response.status == 200
    assert await _streamed_text(rig.slack) == "You said: what is the capital of France?"
    start = rig.slack.calls_to("chat.startStream")[0].args
    assert start["channel"] == "C1" and start["thread_ts"] == "100.000001"


async def test_messages_from_someone_new_wait_for_one_lookup_of_them(rig: Rig) -> None:
    released = rig.slack.hold("users.info")
    sends = [
        asyncio.create_task(rig.event(mention(f"question {i}", f"200.00000{i}"))) for i in range(3)
    ]
    await rig.slack.wait_for("users.info")
    await asyncio.sleep(0.2)  # the other two arrive meanwhile (more time only makes it surer)
    released.set()
    assert [response.status for response in await asyncio.gather(*sends)] == [200, 200, 200]
    await rig.slack.wait_for("chat.stopStream", count=3)
    assert len(rig.slack.calls_to("users.info")) == 1


async def test_a_follow_up_in_the_thread_carries_memory(rig: Rig) -> None:
    await rig.event(mention("my name is Ada"))
    await rig.slack.wait_for("chat.stopStream")
    await rig.event(message("what is my name?", "100.000050", thread_ts="100.000001"))
    await rig.slack.wait_for("chat.stopStream", count=2)
    sent = rig.sim.requests_to("chat")[-1].body["messages"]  # type: ignore[index]
    assert [m["content"] for m in sent[1:]] == [
        "my name is Ada",
        "You said: my name is Ada",
        "what is my name?",
    ]


async def test_messages_in_threads_the_bot_is_not_in_are_ignored(rig: Rig) -> None:
    await rig.event(message("chatter", "200.000002", thread_ts="200.000001"))
    await rig.event(mention("now you", ts="300.000001"))
    await rig.slack.wait_for("chat.stopStream")
    assert len(rig.sim.requests_to("chat")) == 1


async def test_a_direct_message_is_answered_in_the_dm(rig: Rig) -> None:
    await rig.event(message("hello in private", "400.000001", channel="D1"))
    calls = await rig.slack.wait_for("chat.postMessage")
    await rig.services.engine.drain()
    assert calls[0].args["channel"] == "D1" and not calls[0].args.get("thread_ts")
    final = rig.slack.messages[next(iter(rig.slack.messages))]["text"]
    assert final == "You said: hello in private"


async def test_redeliveries_get_one_model_call_and_one_reply(rig: Rig) -> None:
    event = mention("only once please")
    statuses = [
        (
            await rig.event(
                event,
                event_id="EvSame",
                **(
                    {"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"}
                    if n
                    else {}
                ),
            )
        ).status
        for n in range(4)
    ]
    await rig.services.engine.drain()
    assert statuses == [200, 200, 200, 200]
    assert len(rig.sim.requests_to("chat")) == 1
    assert len(rig.slack.calls_to("chat.startStream")) == 1


async def test_events_are_acknowledged_at_once_under_a_slow_model(rig: Rig) -> None:
    rig.sim.latency = 5.0
    started = time.perf_counter()
    response = await rig.event(mention("take your time"))
    assert response.status == 200
    assert time.perf_counter() - started < 1.0
    rig.sim.latency = 0.0


async def test_forged_unsigned_and_stale_requests_are_rejected(rig: Rig) -> None:
    body = json.dumps(event_callback(mention("sneaky"), "EvForged")).encode()
    forged = sign("wrong-secret", body)
    stale = sign(SECRET, body, timestamp=int(time.time()) - 600)
    for headers in (forged, {}, stale):
        assert (await rig.post(body, headers)).status == 401
    await rig.services.engine.drain()
    assert not rig.sim.requests_to("chat") and not rig.slack.calls_to("users.info")


async def test_url_verification_is_echoed(rig: Rig) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"}).encode()
    response = await rig.http.post(
        f"{rig.url}/slack/events",
        data=body,
        headers={**sign(SECRET, body), "Content-Type": "application/json"},
    )
    assert response.status == 200 and "abc123" in await response.text()


async def test_malformed_and_unknown_payloads_get_a_clean_answer(rig: Rig) -> None:
    broken = await rig.post(b"{not json")
    assert 400 <= broken.status < 500
    unknown = await rig.event({"type": "emoji_changed", "subtype": "add", "name": "party"})
    assert unknown.status in (200, 404)
    huge = await rig.post(b"x" * (3 * 1024 * 1024))
    assert huge.status == 413
    assert (await rig.event(mention("still alive?"))).status == 200
    assert await _streamed_text(rig.slack) == "You said: still alive?"


async def test_an_oversized_message_is_answered(
    rig: Rig, make_settings: Callable[..., Settings]
) -> None:
    await rig.event(mention("word " * 40_000))
    await rig.slack.wait_for("chat.stopStream")
    sent = rig.sim.requests_to("chat")[0].body["messages"][-1]["content"]  # type: ignore[index]
    assert "truncated to fit" in sent


async def test_without_native_streaming_the_reply_is_posted_and_updated(rig: Rig) -> None:
    rig.slack.stream_supported = False
    rig.sim.enqueue(Text("A fairly long answer that arrives in many small pieces over time."))
    await rig.event(mention("hi"))
    await rig.slack.wait_for("chat.postMessage")
    await rig.services.engine.drain()
    ts = rig.slack.calls_to("chat.postMessage")[0]
    assert ts.args["thread_ts"] == "100.000001"
    assert (
        list(rig.slack.messages.values())[-1]["text"]
        == "A fairly long answer that arrives in many small pieces over time."
    )


async def test_a_slack_rate_limit_is_retried(rig: Rig) -> None:
    rig.slack.stream_supported = False
    rig.slack.fail_next("chat.postMessage", "ratelimited", status=429, retry_after=0)
    await rig.event(mention("hello"))
    await rig.slack.wait_for("chat.postMessage", count=2)
    await rig.services.engine.drain()
    assert list(rig.slack.messages.values())[-1]["text"] == "You said: hello"


async def test_not_in_channel_is_logged_and_nothing_crashes(rig: Rig) -> None:
    rig.slack.stream_supported = False
    rig.slack.fail_next("chat.postMessage", "not_in_channel", times=5)
    await rig.event(mention("hello"))
    await rig.slack.wait_for("chat.postMessage")
    await rig.services.engine.drain()
    assert (await rig.event(mention("again", ts="500.000001"))).status == 200


async def test_slash_commands(rig: Rig) -> None:
    assert (await rig.command("/ask", "what is our holiday policy?")).status == 200
    await rig.slack.wait_for("chat.stopStream")
    question = rig.slack.calls_to("chat.postMessage")[0].args
    assert question["text"] == "<@U1> asked: what is our holiday policy?"
    assert await _streamed_text(rig.slack) == "You said: what is our holiday policy?"
    for command, key, expected in (
        ("/usage", "u", "Today:"),
        ("/model", "m", "Model here: gpt-6-luna"),
        ("/memory", "mem", "Recent window"),
        ("/reset", "r", "Conversation reset"),
        ("/config", "c", "system_prompt"),
    ):
        assert (await rig.command(command, "", key=key)).status == 200
        posts = await rig.slack.wait_for_response(key)
        assert expected in posts[0]["text"], (command, posts)
    reset = rig.slack.response_posts["r"][0]
    assert reset["response_type"] == "in_channel"
    assert rig.slack.response_posts["u"][0]["response_type"] == "ephemeral"


async def test_tool_command_runs_a_tool_and_uploads_its_files(rig: Rig) -> None:
    assert (await rig.command("/tool", "calculate 6*7", key="t")).status == 200
    assert (await rig.slack.wait_for_response("t"))[0]["text"] == "42"
    assert (await rig.command("/tool", 'generate_image prompt="a heron"', key="img")).status == 200
    posts = await rig.slack.wait_for_response("img")
    assert posts[0]["text"] == "sent file image.png", posts
    await rig.slack.wait_for("files.completeUploadExternal")
    assert any(data.startswith(b"\x89PNG") for data in rig.slack.uploads.values())


async def test_a_command_typed_in_a_thread_applies_to_that_thread(rig: Rig) -> None:
    await rig.event(mention("remember me"))
    await rig.slack.wait_for("chat.stopStream")
    await rig.event(mention("/reset", ts="100.000009", thread_ts="100.000001"))
    await rig.slack.wait_for("chat.postMessage")
    assert "Conversation reset" in rig.slack.calls_to("chat.postMessage")[-1].args["text"]


async def test_an_image_is_sent_as_vision_input(rig: Rig) -> None:
    image = rig.slack.add_file("F1", "chart.png", "image/png", b"\x89PNG fake")
    await rig.event(mention("what does this show?", files=[image]))
    await rig.slack.wait_for("chat.stopStream")
    content = rig.sim.requests_to("chat")[0].body["messages"][-1]["content"]  # type: ignore[index]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_a_voice_clip_is_transcribed_and_answered(rig: Rig) -> None:
    clip = rig.slack.add_file(
        "F2", "audio_message.m4a", "audio/mp4", b"SIMTEXT:book a room for friday"
    )
    await rig.event(message("", "600.000001", channel="D1", files=[clip], subtype="file_share"))
    await rig.slack.wait_for("chat.postMessage")
    await rig.services.engine.drain()
    notices = [c.args["text"] for c in rig.slack.calls_to("chat.postEphemeral")]
    assert "Transcript: book a room for friday" in notices
    assert list(rig.slack.messages.values())[-1]["text"] == "You said: book a room for friday"


async def test_an_unsupported_file_gets_a_clear_notice(rig: Rig) -> None:
    doc = rig.slack.add_file("F3", "report.zip", "application/zip", b"PK")
    await rig.event(mention("see attached", files=[doc]))
    await rig.slack.wait_for("chat.postEphemeral")
    notice = rig.slack.calls_to("chat.postEphemeral")[0].args["text"]
    assert "report.zip" in notice and "PNG" in notice


async def test_assistant_threads_get_suggested_prompts_and_a_status(rig: Rig) -> None:
    started = {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": "U1",
            "channel_id": "D1",
            "thread_ts": "700.000001",
            "context": {},
        },
        "event_ts": "700.000002",
    }
    await rig.event(started)
    await rig.slack.wait_for("assistant.threads.setSuggestedPrompts")
    await rig.event(message("help me", "700.000003", channel="D1", thread_ts="700.000001"))
    await rig.slack.wait_for("assistant.threads.setStatus")
    await rig.slack.wait_for("chat.stopStream")


async def test_socket_mode_acknowledges_and_answers(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    async with FakeSlack() as slack:
        settings = make_settings(
            slack_bot_token=slack.bot_token,
            slack_app_token=slack.app_token,
            slack_api_url=slack.api_url,
            moderation_enabled=False,
        )
        services = await build_services(settings)
        adapter = SlackAdapter(settings.slack, services.engine)
        await services.engine.attach(adapter)
        runner = asyncio.create_task(adapter.socket_mode())
        try:
            envelope = await slack.socket_send(
                "events_api", event_callback(mention("over the socket"), "EvSock")
            )
            ack = await slack.wait_for_ack(envelope)
            assert ack["envelope_id"] == envelope
            await slack.wait_for("chat.stopStream")
            await services.engine.drain()
            assert any(
                m.get("text") == "You said: over the socket" for m in slack.messages.values()
            )
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await services.close()
            await adapter.close()
