"""`python -m bots worker` and `discord-sync` as real processes against the fake Discord."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from simulator import Simulator
from tests.fakes.discord import FakeDiscord

ROOT = Path(__file__).resolve().parents[2]


def _env(
    fake: FakeDiscord, sim: Simulator, tmp_path: Path, database_url: str | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url or f"sqlite:///{tmp_path}/bot.db",
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
        assert {c["name"] for c in fake.commands["1"]} == {
            "ask",
            "reset",
            "model",
            "usage",
            "tool",
            "summarize",
            "digest",
            "schedule",
        }
        tool = next(c for c in fake.commands["1"] if c["name"] == "tool")
        assert any(o.get("autocomplete") for o in tool["options"])
        text = out.decode()
        assert "published 8 commands to server 1" in text
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


async def test_two_workers_split_the_shards_and_space_their_identifies(
    sim: Simulator, tmp_path: Path, on_both_backends: str
) -> None:
    async with FakeDiscord() as fake:
        env = {**_env(fake, sim, tmp_path, on_both_backends), "DISCORD_SHARD_COUNT": "2"}
        workers = [
            await _run({**env, "DISCORD_SHARD_IDS": str(shard)}, "worker") for shard in (0, 1)
        ]
        try:
            await fake.wait_until(lambda: len(fake.identifies) == 2, timeout=60)
            (first, count, at), (second, count_2, later) = sorted(
                fake.identifies, key=lambda i: i[2]
            )
            assert {first, second} == {0, 1} and count == count_2 == 2
            assert later - at >= 4.9, "one IDENTIFY per 5 s across both processes"
            await asyncio.wait_for(fake.ready.wait(), 30)  # shard 0, where DMs arrive
            dm = fake.add_dm_channel(42)
            await fake.push_message(dm, "which shard am I on?")
            await fake.wait_until(
                lambda: (
                    [m["content"] for m in fake.messages.get(dm, [])]
                    == ["You said: which shard am I on?"]
                ),
                timeout=30,
            )
        finally:
            for process in workers:
                process.send_signal(signal.SIGTERM)
            results = [await asyncio.wait_for(p.communicate(), 30) for p in workers]
        assert [p.returncode for p in workers] == [0, 0], [
            err.decode()[-500:] for _, err in results
        ]


async def test_shard_ids_without_a_count_are_refused(sim: Simulator, tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        process = await _run({**_env(fake, sim, tmp_path), "DISCORD_SHARD_IDS": "0,1"}, "worker")
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 2
        assert "DISCORD_SHARD_COUNT" in err.decode()
