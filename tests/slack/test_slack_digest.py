"""`/digest` end to end over Slack: signed slash commands through Bolt, the fake Web API's
channels, members and history, the simulator; the digest is posted in its channel with
permalinks to its threads and none of another channel's text."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bots.settings import AppSettings as Settings
from core.events import MAIN_THREAD, ConversationKey, Platform
from simulator import Simulator, Text
from tests.slack.rig import Rig, open_rig


@pytest.fixture
async def rig(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> AsyncIterator[Rig]:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as opened:
        slack = opened.slack
        slack.add_channel("C1", "general", members=["U1", "U2"])
        slack.add_channel("C2", "random", members=["U1", "U2"])
        slack.add_channel("CX", "elsewhere", members=["U1"], bot=False)
        yield opened


def _digests(rig: Rig, channel: str) -> list[str]:
    return [
        m["text"]
        for m in rig.slack.messages.values()
        if m.get("channel") == channel and "Digest of" in str(m.get("text"))
    ]


async def test_digest_set_up_and_posted_over_slack(rig: Rig) -> None:
    now = time.time()
    parent = f"{now - 1200:.6f}"
    rig.slack.post("C1", "U2", "we ship on friday", ts=f"{now - 1800:.6f}")
    rig.slack.post("C1", "U2", "who tells sales?", ts=parent)
    rig.slack.post("C1", "U1", "I will", ts=f"{now - 1100:.6f}", thread_ts=parent)
    rig.slack.post("C2", "U2", "the random channel's secret", ts=f"{now - 900:.6f}")

    await rig.command("/digest", "daily 09:00 Europe/Berlin")
    [set_up] = await rig.slack.wait_for_response("r1")
    assert set_up["response_type"] == "in_channel"
    assert set_up["text"].startswith("Digest of this channel set up by")
    assert "daily 09:00 Europe/Berlin" in set_up["text"]

    rig.sim.enqueue(
        Text(
            json.dumps(
                {
                    "topics": [
                        {"title": "Release", "summary": "Friday.", "messages": ["m1"]},
                        {"title": "Sales", "summary": "Ada tells them.", "messages": ["m2"]},
                    ],
                    "decisions": [{"text": "Ship on Friday", "messages": ["m1"]}],
                    "open_questions": [],
                }
            )
        )
    )
    await rig.command("/digest", "now", key="r2")
    [posted] = await rig.slack.wait_for_response("r2")
    assert posted["text"] == "Posted the digest (2 messages)."
    [digest] = _digests(rig, "C1")
    assert digest.startswith("*Digest of #general* — 2 messages since")
    link = f"https://fake.slack.test/archives/C1/p{parent.replace('.', '')}"
    assert f"<{link}|thread>" in digest, digest
    assert "Ship on Friday" in digest
    requests = json.dumps([r.body for r in rig.sim.requests_to("chat")])
    assert "we ship on friday" in requests and "random channel's secret" not in requests
    assert _digests(rig, "C2") == []

    # The schedule's own run, at its time, through the scheduler.
    scheduler = rig.services.scheduler
    assert scheduler is not None
    channel = ConversationKey(Platform.SLACK, "T1", "C1", MAIN_THREAD)
    [schedule] = await rig.services.store.schedules.in_channel(channel)
    rig.slack.post("C1", "U2", "a later message", ts=f"{time.time():.6f}")
    scheduler.clock = lambda: schedule.next_run_at + 5
    assert (await scheduler.tick()).claimed == 1
    assert len(_digests(rig, "C1")) == 2


async def test_digest_errors_over_slack(rig: Rig) -> None:
    await rig.command("/digest", "daily 09:00 Mars/Olympus")
    [bad_zone] = await rig.slack.wait_for_response("r1")
    assert bad_zone["response_type"] == "ephemeral"
    assert bad_zone["text"].startswith("unknown time zone 'Mars/Olympus'")
    await rig.command("/digest", "daily 09:00", key="r2", channel_id="CX")
    [unreadable] = await rig.slack.wait_for_response("r2")
    assert unreadable["text"] == (
        "I can't read #elsewhere: invite me to it first (I'm not a member, or it does not "
        "exist). Nothing was scheduled."
    )
    await rig.command("/schedule", '"*/5 * * * *" ping', key="r3")
    [frequent] = await rig.slack.wait_for_response("r3")
    assert "the minimum interval is 15 minutes (SCHEDULE_MIN_MINUTES)" in frequent["text"]
