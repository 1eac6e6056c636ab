"""Signed Slack events whose text fields hold lone surrogates or NUL are stored and answered, on
SQLite and on PostgreSQL (once each: a 500 would make Slack redeliver the same body forever)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bots.settings import AppSettings as Settings
from simulator import Simulator
from tests.fakes.slack import sign
from tests.slack.rig import SECRET, event_callback, mention, open_rig

ODD = ["\ud800", "\udfff", "\x00", "a\x00b\ud800c"]


@pytest.mark.parametrize("odd", ODD)
async def test_odd_text_in_every_field_is_answered_once(
    odd: str,
    on_both_backends: str,
    sim: Simulator,
    make_settings: Callable[..., Settings],
    aiohttp_server_factory,
) -> None:
    async with open_rig(
        sim, make_settings, aiohttp_server_factory, database_url=on_both_backends
    ) as rig:
        event = mention(f"hello {odd} there", user=f"U{odd}1", channel=f"C{odd}1")
        # The JSON escapes (\ud800, \u0000) are what Slack sends; json.dumps writes them so.
        body = json.dumps(event_callback(event, f"Ev{odd}1")).encode()
        response = await rig.post(body, sign(SECRET, body))
        assert response.status == 200
        await rig.slack.wait_for("chat.stopStream")
        rows = await rig.services.store.db.fetchall(
            "SELECT role, content, user_id FROM messages ORDER BY id"
        )
        assert [r["role"] for r in rows] == ["user", "assistant"]
        assert "\ufffd" in rows[0]["content"] and "\ufffd" in rows[0]["user_id"]
        again = await rig.post(body, sign(SECRET, body))  # Slack's retry of the same body
        assert again.status == 200
        rows = await rig.services.store.db.fetchall("SELECT id FROM messages")
        assert len(rows) == 2, "the redelivery is recognised: one answer"
