"""`web` with no Slack settings says it serves health and metrics only."""

from __future__ import annotations

import socket
from pathlib import Path

from simulator import Simulator
from tests.reliability.processes import BotProcess


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_web_without_slack_settings_says_what_it_serves(
    tmp_path: Path, sim: Simulator
) -> None:
    web = await BotProcess.start(
        "web",
        {
            "PORT": str(_free_port()),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "OPENAI_API_KEY": "sk-test-key-0123456789",
            "OPENAI_BASE_URL": sim.base_url,
            "OPENAI_WIRE_API": "chat",
        },
    )
    try:
        record = await web.wait_for_log("slack_not_configured")
        assert record["serving"] == "health and metrics only"
        await web.wait_for_log("http_listening")
    finally:
        await web.stop()
