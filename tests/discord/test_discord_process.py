"""`python -m bots worker` and `discord-sync` as real processes against the fake Discord."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from core.simulator import Simulator
from tests.fakes.discord import FakeDiscord

ROOT = Path(__file__).resolve().parents[2]


def _env(fake: FakeDiscord, sim: Simulator, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
            "OPENAI_API_KEY": "sk-test-key-0123456789",
            "OPENAI_BASE_URL": sim.base_url,
            "OPENAI_WIRE_API": "chat",
            "DISCORD_TOKEN": fake.token,
            "DISCORD_API_URL": fake.api_base,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
        }
    )
    return env


async def _run(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_discord_sync_publishes_commands_and_prints_the_invite(
    sim: Simulator, tmp_path: Path
) -> None:
    async with FakeDiscord() as fake:
        process = await _run(_env(fake, sim, tmp_path), "discord-sync", "--guild", "1")
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        assert {c["name"] for c in fake.commands["1"]} == {"ask", "reset", "model", "usage", "tool"}
        tool = next(c for c in fake.commands["1"] if c["name"] == "tool")
        assert any(o.get("autocomplete") for o in tool["options"])
        text = out.decode()
        assert "published 5 commands to server 1" in text
        assert "scope=bot+applications.commands" in text
        assert fake.token not in text + err.decode()


async def test_worker_answers_on_the_gateway_and_stops_cleanly(
    sim: Simulator, tmp_path: Path
) -> None:
    async with FakeDiscord() as fake:
        process = await _run(_env(fake, sim, tmp_path), "worker")
        try:
            await asyncio.wait_for(fake.ready.wait(), 60)
            dm = fake.add_dm_channel(42)
            await fake.push_message(dm, "hello from a process")
            await fake.wait_until(
                lambda: (
                    [m["content"] for m in fake.messages.get(dm, [])]
                    == ["You said: hello from a process"]
                ),
                timeout=30,
            )
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()
        assert fake.token not in (out + err).decode()


async def test_worker_refused_intent_exits_with_the_fix(sim: Simulator, tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        fake.reject_privileged_intents = True
        process = await _run(_env(fake, sim, tmp_path), "worker")
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 2
        assert "Message Content Intent" in err.decode()
        assert "DISCORD_MESSAGE_CONTENT=false" in err.decode()
