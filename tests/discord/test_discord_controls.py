"""Reply controls on Discord, end to end: the real discord.py client, component clicks (type 3)
and modal submissions (type 5) through the fake gateway, each answered within 3 seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bots.settings import AppSettings as Settings
from core.interactive.clicks import UNKNOWN
from simulator import Simulator, Text, ToolCalls
from tests.discord.test_discord_client import Rig, open_rig
from tests.fakes.discord import FakeDiscord
from tests.slack.test_slack_approvals import add_guarded_tool


@pytest.fixture
async def rig(sim: Simulator, make_settings: Callable[..., Settings]) -> AsyncIterator[Rig]:
    async with FakeDiscord() as fake, open_rig(sim, make_settings, fake) as opened:
        yield opened


async def _answer(rig: Rig, text: str = "hello") -> dict[str, Any]:
    message = await rig.fake.push_message(rig.fake.channel_id, text, mention_bot=True)
    thread = int(message["id"])
    await rig.fake.wait_for("POST", rf"/channels/{thread}/messages$")
    await rig.services.engine.drain()
    return rig.fake.messages[thread][-1]


def _followups(fake: FakeDiscord) -> list[dict[str, Any]]:
    return [m for m in fake.messages.get(-1, []) if m["method"] == "POST"]


async def _told(fake: FakeDiscord, count: int = 1) -> str:
    await fake.wait_until(lambda: len(_followups(fake)) >= count)
    return str(_followups(fake)[count - 1]["content"])


def _deferred_in_time(fake: FakeDiscord, interaction: dict[str, Any], kind: int = 6) -> None:
    callback = fake.interaction_callbacks[interaction["id"]]["callback"]
    assert callback["body"]["type"] == kind
    assert callback["at"] - interaction["_sent_at"] < 3.0


async def test_an_answer_carries_feedback_and_regenerate_buttons(rig: Rig) -> None:
    answer = await _answer(rig)
    buttons = rig.fake.buttons(answer)
    assert [b.rsplit(":", 1)[-1] for b in buttons[:2]] == ["positive", "negative"]
    assert buttons[2].startswith("parley:again:")


async def test_a_rating_is_deferred_then_stored_and_a_comment_goes_through_a_modal(
    rig: Rig,
) -> None:
    answer = await _answer(rig)
    good = rig.fake.buttons(answer)[0]
    click = await rig.fake.push_click(good, answer)
    assert await _told(rig.fake) == "Thanks for the feedback."
    _deferred_in_time(rig.fake, click)
    offer = _followups(rig.fake)[0]
    comment_id = rig.fake.buttons(offer)[0]
    assert comment_id.startswith("parley:comment:") and comment_id.endswith(":positive")
    opened = await rig.fake.push_click(comment_id, answer)
    await rig.fake.wait_until(lambda: "callback" in rig.fake.interaction_callbacks[opened["id"]])
    _deferred_in_time(rig.fake, opened, kind=9)
    modal = rig.fake.interaction_callbacks[opened["id"]]["callback"]["body"]["data"]
    assert modal["custom_id"] == comment_id
    submitted = await rig.fake.push_modal_submit(
        comment_id, {"comment": "spot on"}, channel_id=int(answer["channel_id"])
    )
    assert await _told(rig.fake, 2) == "Thanks, your comment is saved with the rating."
    _deferred_in_time(rig.fake, submitted)
    rows = await rig.services.store.db.fetchall("SELECT user_id, value, comment FROM feedback")
    assert [tuple(r) for r in rows] == [("42", "positive", "spot on")]


async def test_regenerate_edits_the_message_in_place(rig: Rig) -> None:
    answer = await _answer(rig, "say something")
    again = rig.fake.buttons(answer)[2]
    thread = int(answer["channel_id"])
    edits = len([r for r in rig.fake.requests if r.method == "PATCH"])
    await rig.fake.push_click(again, answer)
    await rig.fake.wait_for("PATCH", rf"/channels/{thread}/messages/{answer['id']}$", edits + 1)
    await rig.fake.wait_until(
        lambda: "parley:again:1:2" in rig.fake.buttons(rig.fake.find(answer["id"]))
    )
    await rig.services.engine.drain()
    assert len(rig.sim.requests_to("chat")) == 2
    edited = rig.fake.find(answer["id"])
    assert edited["content"] == "You said: say something"
    assert rig.fake.buttons(edited)[2].endswith(":2")
    assert len(rig.fake.messages[thread]) == 1, "replaced, not posted again"


async def test_a_forged_id_or_another_channel_gets_a_clear_answer(rig: Rig) -> None:
    answer = await _answer(rig)
    good = rig.fake.buttons(answer)[0]
    elsewhere = {**answer, "channel_id": str(rig.fake.channel_id)}  # the parent channel
    await rig.fake.push_click(good, elsewhere)
    await rig.fake.push_click("parley:rate:424242:1:positive", answer)
    await _told(rig.fake, 2)
    assert {m["content"] for m in _followups(rig.fake)} == {UNKNOWN, "That reply no longer exists."}
    assert all(m["flags"] == 64 for m in _followups(rig.fake)), "ephemeral"
    assert await rig.services.store.db.fetchall("SELECT * FROM feedback") == []


async def test_buttons_keep_working_after_a_restart(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    async with FakeDiscord() as fake:
        async with open_rig(sim, make_settings, fake) as first:
            answer = await _answer(first)
        async with open_rig(sim, make_settings, fake) as second:  # a new process, same database
            await second.fake.push_click(second.fake.buttons(answer)[1], answer)
            assert await _told(second.fake) == "Thanks for the feedback."
            rows = await second.services.store.db.fetchall("SELECT value FROM feedback")
            assert [r[0] for r in rows] == ["negative"]


async def test_tool_approval_with_buttons(rig: Rig) -> None:
    runs: list[str] = []
    add_guarded_tool(rig.services, runs)
    rig.sim.enqueue(ToolCalls.of(("delete_record", {"record": "3"})), Text("Gone."))
    message = await rig.fake.push_message(rig.fake.channel_id, "delete 3", mention_bot=True)
    thread = int(message["id"])
    await rig.fake.wait_until(
        lambda: any(
            "Approve" in str(m.get("components")) for m in rig.fake.messages.get(thread, [])
        )
    )
    prompt = next(m for m in rig.fake.messages[thread] if "Approve" in str(m.get("components")))
    approve = rig.fake.buttons(prompt)[0]
    await rig.fake.push_click(approve, prompt, user_id=77)  # not the asker
    assert "or an admin can decide this" in await _told(rig.fake)
    click = await rig.fake.push_click(approve, prompt)
    await rig.fake.wait_until(lambda: "Gone." in str(rig.fake.messages[thread][-1]["content"]))
    await rig.services.engine.drain()
    _deferred_in_time(rig.fake, click)
    assert runs == ["3"]
    assert rig.fake.find(prompt["id"])["content"] == "Approved by <@42>: `delete_record`."
    assert rig.fake.find(prompt["id"])["components"] == []


async def test_a_table_goes_in_a_code_fence_and_links_stay_links(rig: Rig) -> None:
    rig.sim.enqueue(
        Text("See [the docs](https://example.com/docs).\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    )
    answer = await _answer(rig, "table please")
    assert answer["content"] == (
        "See [the docs](https://example.com/docs).\n\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n```"
    )
