"""`/digest` end to end over Discord: the slash command through the fake gateway (deferred, then
answered), the channel's history through the fake REST API, the digest posted in its channel
with a link to each message it cites and nothing of another channel."""

from __future__ import annotations

import json
from collections.abc import Callable

from bots.settings import AppSettings as Settings
from simulator import Simulator, Text
from tests.discord.test_discord_client import open_rig
from tests.fakes.discord import FakeDiscord

FOLLOWUP = r"/webhooks/\d+/[^/]+$"  # answers shown to the channel follow the deferral


def _when(value: str) -> list[dict[str, object]]:
    return [{"name": "when", "type": 3, "value": value}]


async def test_digest_set_up_and_posted_over_discord(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    async with FakeDiscord() as fake:
        fake.add_member(42, "ada")
        fake.add_member(43, "bob")
        shipped = fake.post(fake.channel_id, "we ship on friday", author_id=43, name="bob")
        other = fake.add_channel("random")
        fake.post(other, "the random channel's secret", author_id=43, name="bob")
        async with open_rig(sim, make_settings, fake) as rig:
            await rig.bot.tree.sync()
            await fake.push_interaction("digest", _when("daily 09:00 Europe/Berlin"))
            await fake.wait_for("POST", FOLLOWUP)
            answers = [m for m in fake.messages[-1] if m["target"] == "followup"]
            assert answers[-1]["content"].startswith("Digest of this channel set up by")
            assert "daily 09:00 Europe/Berlin" in answers[-1]["content"]

            sim.enqueue(
                Text(
                    json.dumps(
                        {
                            "topics": [
                                {"title": "Release", "summary": "Friday.", "messages": ["m1"]}
                            ],
                            "decisions": [{"text": "Ship on Friday", "messages": ["m1"]}],
                            "open_questions": [],
                        }
                    )
                )
            )
            await fake.push_interaction("digest", _when("now"))
            await fake.wait_for("POST", FOLLOWUP, count=2)
            await rig.services.engine.drain()
            answers = [m for m in fake.messages[-1] if m["target"] == "followup"]
            assert answers[-1]["content"] == "Posted the digest (1 message)."
            [digest] = [
                m["content"]
                for m in fake.messages.get(fake.channel_id, [])
                if "Digest of" in m["content"]
            ]
            assert "Ship on Friday" in digest
            assert f"/channels/1/{fake.channel_id}/{shipped['id']}" in digest, digest
            requests = json.dumps([r.body for r in sim.requests_to("chat")])
            assert "we ship on friday" in requests
            assert "random channel's secret" not in requests
            assert not any("Digest of" in m["content"] for m in fake.messages.get(other, []))
