"""The admin site and the data commands as real processes: `web` with ADMIN_PORT and
RETENTION_DAYS, `purge --user`, `export --conversation | --channel | --fine-tune`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bots.services import build_services
from bots.settings import AppSettings as Settings
from core.store import connect
from core.store.erasure import REMOVED_TEXT
from simulator import Simulator
from tests.admin.conftest import TOKEN
from tests.admin.finetune import check_fine_tune_file
from tests.admin.test_lifecycle import age
from tests.conftest import RecordingReply, make_event
from tests.reliability.processes import ROOT, BotProcess


def environment(settings: Settings, sim: Simulator, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.store.url,
        "OPENAI_API_KEY": "sk-test-key-0123456789",
        "OPENAI_BASE_URL": sim.base_url,
        "OPENAI_WIRE_API": "chat",
        **extra,
    }


async def fill(settings: Settings, *turns: tuple[str, str, str]) -> list[int]:
    """Store turns (text, user, thread) the way a server would; returns their ids."""
    services = await build_services(settings)
    try:
        ids = []
        for text, user, thread in turns:
            outcome = await services.engine.handle(
                make_event(text, user=user, thread=thread), RecordingReply()
            )
            assert outcome is not None
            ids.append(outcome.turn_id)
        return ids
    finally:
        await services.close()


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`python -m bots ARGS`: exit code, stdout, stderr."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "ADMIN"))}
    full.update({"PYTHONPATH": str(ROOT), "LOG_FORMAT": "json", "LOG_LEVEL": "warning", **env})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots",
        *args,
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_web_serves_the_admin_site_on_admin_port_and_runs_retention(
    make_settings: Callable[..., Settings], sim: Simulator
) -> None:
    settings = make_settings()
    await fill(settings, ("an old message about tulips", "u1", "old"))
    async with connect(settings.store.url) as db:
        await age(db, 40)
    await fill(settings, ("a new message about roses", "u1", "new"))
    env = environment(
        settings, sim, PORT="0", ADMIN_PORT="0", ADMIN_TOKEN=TOKEN, RETENTION_DAYS="30"
    )
    web = await BotProcess.start("web", env)
    try:
        await web.wait_for_count("http_listening", 2)
        ports = {r["host"]: r["port"] for r in web.records("http_listening")}
        public, admin = ports["0.0.0.0"], ports["127.0.0.1"]
        passed = await web.wait_for_log("retention_pass")
        assert passed["messages"] == 2
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{admin}/admin/login") as response:
                assert response.status == 200 and "Admin token" in await response.text()
            async with http.get(f"http://127.0.0.1:{public}/admin/login") as response:
                assert response.status == 404, "ADMIN_PORT moves the site off PORT"
            async with http.get(f"http://127.0.0.1:{public}/healthz") as response:
                assert response.status == 200
    finally:
        assert await web.stop() == 0
    async with connect(settings.store.url) as db:
        contents = [r[0] for r in await db.fetchall("SELECT content FROM messages ORDER BY id")]
    assert contents[:2] == [REMOVED_TEXT, REMOVED_TEXT] and "roses" in contents[2]


async def test_admin_port_equal_to_port_stops_the_start_with_one_line(
    make_settings: Callable[..., Settings], sim: Simulator
) -> None:
    env = environment(make_settings(), sim, PORT="3999", ADMIN_PORT="3999", ADMIN_TOKEN=TOKEN)
    code, _, err = await cli(env, "web")
    assert code == 2 and "ADMIN_PORT and PORT are both 3999" in err
    assert "Traceback" not in err


async def test_purge_and_exports_from_the_command_line(
    make_settings: Callable[..., Settings], sim: Simulator, tmp_path: Path
) -> None:
    settings = make_settings()
    liked, _, _ = await fill(
        settings,
        ("ada@example.com asks a question", "u1", "a"),
        ("bob follows up", "u2", "a"),
        ("ada elsewhere", "u1", "b"),
    )
    async with connect(settings.store.url) as db:
        await db.execute(
            "INSERT INTO feedback (turn_id, user_id, value, comment, created_at) "
            "VALUES (?, 'u2', 'positive', '', 0)",
            (liked,),
        )
    env = environment(settings, sim)

    code, out, err = await cli(env, "export", "--conversation", "console:w1:c1:a")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["role"] for r in records] == ["user", "assistant", "user", "assistant"]
    assert "ada@example.com" not in out and "exported 4 lines (2 turns" in err

    target = tmp_path / "channel.jsonl"
    code, out, err = await cli(env, "export", "--channel", "c1", "--out", str(target))
    assert code == 0 and out == "" and len(target.read_text().splitlines()) == 6

    code, out, err = await cli(env, "export", "--fine-tune")
    assert code == 0, err
    [example] = check_fine_tune_file(out)
    assert example["messages"][-1]["weight"] == 1

    code, out, err = await cli(env, "purge", "--user", "u1")
    assert code == 0, err
    assert out.startswith("erased u1: 2 messages, 2 answers")
    code, out, _ = await cli(env, "purge", "--user", "u1")
    assert code == 0 and out.startswith("erased u1: 0 messages, 0 answers"), "idempotent"
    code, out, _ = await cli(env, "export", "--conversation", "console:w1:c1:a", "--unredacted")
    contents = [json.loads(line)["content"] for line in out.splitlines()]
    assert contents[0] is None and "bob follows up" in contents, "erased text is gone"

    async with connect(settings.store.url) as db:
        actions = [r[0] for r in await db.fetchall("SELECT action FROM audit_log ORDER BY id")]
        actors = {r[0] for r in await db.fetchall("SELECT actor FROM audit_log")}
    assert actions == [
        "export.conversation",
        "export.channel",
        "export.fine-tune",
        "purge.user",
        "purge.user",
        "export.conversation",
    ]
    assert all(actor.startswith("cli") for actor in actors)


async def test_export_refuses_what_it_cannot_do_in_one_line(
    make_settings: Callable[..., Settings], sim: Simulator
) -> None:
    env = environment(make_settings(), sim)
    code, _, err = await cli(env, "export", "--conversation", "console:w1:c1:none")
    assert code == 2 and "there is no conversation with the key" in err and "Traceback" not in err
    code, _, err = await cli(env, "export", "--fine-tune", "--unredacted")
    assert code == 2 and "always redacted" in err
    code, _, err = await cli(env, "export")
    assert code == 2 and "one of the arguments" in err
    code, _, err = await cli(env, "purge")
    assert code == 2 and "--user" in err
