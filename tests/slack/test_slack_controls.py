"""Reply controls on Slack, end to end: signed block_actions and view_submission payloads through
POST /slack/events (and over Socket Mode), the fake Web API, the simulator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bots.settings import AppSettings as Settings
from core.interactive.clicks import GONE, NOT_YOURS, RESET, STREAMING, SUPERSEDED, UNKNOWN
from simulator import Simulator, Text
from tests.fakes.slack import FakeSlack, block_actions, view_submission
from tests.slack.rig import Rig, mention, open_rig, open_socket_rig


@pytest.fixture
async def rig(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> AsyncIterator[Rig]:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as opened:
        yield opened


async def _answer(
    rig: Rig, text: str = "hello", ts: str = "100.000001", count: int = 1
) -> dict[str, Any]:
    """Ask in a thread; the finished (streamed) answer message."""
    await rig.event(mention(text, ts=ts))
    await rig.slack.wait_for("chat.stopStream", count=count)
    await rig.services.engine.drain()
    stop = rig.slack.calls_to("chat.stopStream")[count - 1].args
    return rig.slack.messages[stop["ts"]]


def _element(message: dict[str, Any], kind: str) -> dict[str, Any]:
    for block in message.get("blocks") or []:
        for element in block.get("elements", []):
            if element.get("type") == kind:
                return element
    raise AssertionError(f"no {kind} in {message.get('blocks')}")


LIVE = "Writing the answer…"  # the ephemeral Stop offered while a native stream runs


def _told(slack: FakeSlack) -> list[Any]:
    """Ephemeral answers to clicks (not the Stop offers)."""
    return [c for c in slack.calls_to("chat.postEphemeral") if c.args["text"] != LIVE]


async def _ephemeral(slack: FakeSlack, count: int = 1) -> str:
    await slack.wait_until(lambda: len(_told(slack)) >= count)
    return str(_told(slack)[count - 1].args["text"])


async def _feedback(rig: Rig) -> list[tuple[Any, ...]]:
    rows = await rig.services.store.db.fetchall(
        "SELECT turn_id, user_id, value, comment FROM feedback ORDER BY turn_id, user_id"
    )
    return [tuple(row) for row in rows]


async def test_a_streamed_answer_ends_with_slacks_feedback_buttons_and_regenerate(rig: Rig) -> None:
    message = await _answer(rig)
    feedback = _element(message, "feedback_buttons")
    assert feedback["action_id"].startswith("parley:rate:")
    assert feedback["positive_button"]["value"] == "positive"
    kinds = [block["type"] for block in message["blocks"]]
    assert kinds == ["context_actions", "actions"]
    again = _element(message, "button")
    assert again["action_id"].startswith("parley:again:")


async def test_feedback_is_stored_per_turn_and_user_and_the_last_click_wins(rig: Rig) -> None:
    message = await _answer(rig)
    rate = _element(message, "feedback_buttons")["action_id"]
    turn_id = int(rate.split(":")[2])
    click = block_actions(
        rate,
        value="positive",
        message_ts=message["ts"],
        thread_ts="100.000001",
        action_type="feedback_buttons",
    )
    response = await rig.interact(click)
    assert response.status == 200
    assert await _ephemeral(rig.slack) == "Thanks for the feedback."
    await rig.interact({**click, "actions": [{**click["actions"][0], "value": "negative"}]})
    await _ephemeral(rig.slack, 2)
    await rig.interact(block_actions(rate, value="positive", user="U2", message_ts=message["ts"]))
    await _ephemeral(rig.slack, 3)
    assert await _feedback(rig) == [
        (turn_id, "U1", "negative", ""),
        (turn_id, "U2", "positive", ""),
    ]
    offer = _told(rig.slack)[0].args
    assert "Add a comment" in str(offer["blocks"])


async def test_a_comment_opens_a_modal_and_is_saved_with_the_rating(rig: Rig) -> None:
    message = await _answer(rig)
    rate = _element(message, "feedback_buttons")["action_id"]
    await rig.interact(block_actions(rate, value="negative", message_ts=message["ts"]))
    await _ephemeral(rig.slack)
    comment_id = _told(rig.slack)[0].args["blocks"]
    action_id = next(
        e["action_id"]
        for b in _decoded(comment_id)
        for e in b.get("elements", [])
        if "action_id" in e
    )
    await rig.interact(block_actions(action_id, trigger_id="tr-comment"))
    await rig.slack.wait_for("views.open")
    view = rig.slack.views["tr-comment"]
    assert view["type"] == "modal" and view["callback_id"] == action_id
    response = await rig.interact(view_submission(view, "too vague"))
    assert response.status == 200
    assert await _ephemeral(rig.slack, 2) == "Thanks, your comment is saved with the rating."
    turn_id = int(rate.split(":")[2])
    assert await _feedback(rig) == [(turn_id, "U1", "negative", "too vague")]


def _decoded(blocks: Any) -> list[dict[str, Any]]:
    import json

    return json.loads(blocks) if isinstance(blocks, str) else blocks


async def test_regenerate_replaces_the_answer_in_place_and_memory_sees_the_newest(rig: Rig) -> None:
    message = await _answer(rig, "tell me a joke")
    again = _element(message, "button")["action_id"]
    await rig.interact(block_actions(again, message_ts=message["ts"], thread_ts="100.000001"))
    await rig.slack.wait_for("chat.update")
    await rig.services.engine.drain()
    assert len(rig.sim.requests_to("chat")) == 2
    update = rig.slack.calls_to("chat.update")[-1].args
    assert update["ts"] == message["ts"]
    assert "You said: tell me a joke" in update["text"]
    new_again = _element(rig.slack.messages[message["ts"]], "button")["action_id"]
    assert new_again.endswith(":2") and new_again != again
    # Memory: the next turn sees the question once and only the newest answer.
    await rig.event(mention("and another", ts="100.000009", thread_ts="100.000001"))
    await rig.slack.wait_for("chat.stopStream", count=2)
    await rig.services.engine.drain()
    sent = rig.sim.requests_to("chat")[-1].body["messages"]  # type: ignore[index]
    contents = [m["content"] for m in sent[1:]]
    assert contents.count("You said: tell me a joke") == 1
    assert contents.count("tell me a joke") == 1
    # The old attempt stays stored, marked superseded.
    rows = await rig.services.store.db.fetchall(
        "SELECT superseded FROM messages WHERE role = 'assistant' ORDER BY id"
    )
    assert [row[0] for row in rows] == [1, 0, 0]
    # The old attempt's button no longer acts.
    await rig.interact(block_actions(again, message_ts=message["ts"]))
    assert await _ephemeral(rig.slack, 2) == SUPERSEDED


async def test_stop_keeps_the_partial_answer_and_regenerate_waits_for_the_end(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> None:
    async with open_rig(
        sim, make_settings, aiohttp_server_factory, slack_native_streaming=False
    ) as rig:
        sim.enqueue(Text(" ".join(f"word{i}" for i in range(400)), pace=0.01))
        await rig.event(mention("write a lot", ts="100.000001"))
        posted = (await rig.slack.wait_for("chat.postMessage"))[0].args
        stop = next(
            e["action_id"]
            for b in _decoded(posted["blocks"])
            for e in b.get("elements", [])
            if e["action_id"].startswith("parley:stop:")
        )
        turn_id = int(stop.split(":")[2])
        await rig.interact(block_actions(f"parley:again:{turn_id}:1"))
        assert await _ephemeral(rig.slack) == STREAMING
        started = time.perf_counter()
        await rig.interact(block_actions(stop))
        await rig.services.engine.drain()
        assert time.perf_counter() - started < 3, "the stream did not run to its end"
        final = rig.slack.calls_to("chat.update")[-1].args
        assert final["text"].endswith("_(stopped)_")
        shown = final["text"].removesuffix("_(stopped)_").strip()
        assert shown.startswith("word0") and "word399" not in shown
        stored = await rig.services.store.db.fetchall(
            "SELECT m.content, t.stopped, t.status FROM messages m JOIN turns t ON t.id = m.turn_id "
            "WHERE m.role = 'assistant'"
        )
        assert [tuple(r) for r in stored] == [(shown, 1, "done")]
        # The stopped call's tokens were spent: its usage is recorded, counted by us.
        [usage] = await rig.services.store.db.fetchall(
            "SELECT prompt_tokens, completion_tokens, cost_usd FROM usage WHERE turn_id = ?",
            (turn_id,),
        )
        assert usage[0] > 0 and 0 < usage[1] < 800 and usage[2] > 0
        ids = [e["action_id"] for b in _decoded(final["blocks"]) for e in b.get("elements", [])]
        assert any(i.startswith("parley:again:") for i in ids)
        assert not any(i.startswith("parley:stop:") for i in ids)


async def test_forged_and_foreign_ids_change_nothing(rig: Rig) -> None:
    message = await _answer(rig)
    rate = _element(message, "feedback_buttons")["action_id"]
    for forged in (
        block_actions("parley:rate:99999:1", value="positive"),  # no such turn
        block_actions("parley:bogus:1:1", value="positive"),  # not an action of ours
        block_actions(rate, value="positive", channel="C-OTHER"),  # another channel
        block_actions(rate, value="positive", team="T-OTHER"),  # another workspace
        block_actions(rate, value="sideways"),  # not a rating
    ):
        response = await rig.interact(forged)
        assert response.status == 200
    await _ephemeral(rig.slack, 5)
    texts = [c.args["text"] for c in _told(rig.slack)]
    assert sorted(texts) == sorted([GONE, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN])
    assert await _feedback(rig) == []


async def test_a_click_after_reset_is_refused(rig: Rig) -> None:
    message = await _answer(rig)
    rate = _element(message, "feedback_buttons")["action_id"]
    again = _element(message, "button")["action_id"]
    key = next(iter(await rig.services.store.db.fetchall("SELECT key FROM conversations")))[0]
    from core.events import ConversationKey

    await rig.services.engine.reset(ConversationKey.parse(key))
    await rig.interact(block_actions(rate, value="positive"))
    await rig.interact(block_actions(again))
    await _ephemeral(rig.slack, 2)
    assert [c.args["text"] for c in _told(rig.slack)] == [RESET, RESET]
    assert await _feedback(rig) == []
    assert len(rig.sim.requests_to("chat")) == 1


async def test_only_the_asker_or_an_admin_regenerates(rig: Rig) -> None:
    message = await _answer(rig)
    again = _element(message, "button")["action_id"]
    await rig.interact(block_actions(again, user="U2"))
    assert await _ephemeral(rig.slack) == NOT_YOURS
    assert len(rig.sim.requests_to("chat")) == 1


async def test_without_native_streaming_the_controls_are_block_kit_buttons(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> None:
    async with open_rig(
        sim, make_settings, aiohttp_server_factory, slack_native_streaming=False
    ) as rig:
        await rig.event(mention("plain please"))
        await rig.services.engine.drain()
        final = (
            rig.slack.calls_to("chat.update")[-1].args
            if rig.slack.calls_to("chat.update")
            else rig.slack.calls_to("chat.postMessage")[-1].args
        )
        blocks = _decoded(final["blocks"])
        assert blocks[0] == {"type": "markdown", "text": "You said: plain please"}
        ids = [e["action_id"] for b in blocks for e in b.get("elements", [])]
        assert ids[0].startswith("parley:rate:") and ids[1].startswith("parley:again:")


async def test_reply_controls_can_be_switched_off(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> None:
    async with open_rig(sim, make_settings, aiohttp_server_factory, reply_controls=False) as rig:
        message = await _answer(rig)
        assert "blocks" not in message
        assert "blocks" not in rig.slack.calls_to("chat.stopStream")[0].args


async def test_a_restart_between_the_reply_and_the_click(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> None:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as first:
        message = await _answer(first)
        rate = _element(message, "feedback_buttons")["action_id"]
        again = _element(message, "button")["action_id"]
    async with open_rig(sim, make_settings, aiohttp_server_factory) as second:  # same database
        await second.interact(block_actions(rate, value="positive"))
        assert await _ephemeral(second.slack) == "Thanks for the feedback."
        await second.interact(
            block_actions(again, message_ts=message["ts"], thread_ts="100.000001")
        )
        await second.slack.wait_for("chat.update")
        await second.services.engine.drain()
        assert second.slack.calls_to("chat.update")[-1].args["ts"] == message["ts"]
        assert await _feedback(second) == [(int(rate.split(":")[2]), "U1", "positive", "")]


async def test_controls_work_over_socket_mode(make_settings: Callable[..., Settings]) -> None:
    async with open_socket_rig(make_settings) as rig:
        envelope = await rig.slack.socket_send(
            "events_api",
            {
                "type": "event_callback",
                "team_id": "T1",
                "api_app_id": "A1",
                "event_id": "EvSock1",
                "event_time": 1,
                "event": mention("over the socket"),
            },
        )
        await rig.slack.wait_for_ack(envelope)
        await rig.slack.wait_for("chat.stopStream")
        await rig.services.engine.drain()
        stop = rig.slack.calls_to("chat.stopStream")[0].args
        rate = _element(rig.slack.messages[stop["ts"]], "feedback_buttons")["action_id"]
        envelope = await rig.interact(block_actions(rate, value="positive"))
        await rig.slack.wait_for_ack(envelope)
        assert await _ephemeral(rig.slack) == "Thanks for the feedback."
        rows = await rig.services.store.db.fetchall("SELECT value FROM feedback")
        assert [r[0] for r in rows] == ["positive"]
