"""The console adapter and the HTTP server's health check, run as real processes and servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bots.services import build_services
from bots.settings import AppSettings as Settings
from bots.web import build_web_app

ROOT = Path(__file__).resolve().parents[2]


def test_offline_console_chats_through_the_engine(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))}
    env.update({"PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{tmp_path}/c.db"})
    result = subprocess.run(
        [sys.executable, "-m", "bots", "run"],
        input="hello there\n/reset\nsecond\n/usage\n/help\n/quit\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "replies come from the built-in simulator" in result.stdout
    assert "bot> You said: hello there" in result.stdout
    assert "Conversation reset" in result.stdout
    assert "bot> You said: second" in result.stdout
    assert "Today: " in result.stdout, "engine commands work in the console"
    assert "/pin — Pin a note" in result.stdout


async def test_healthz_reports_the_database(
    make_settings: Callable[..., Settings], aiohttp_server_factory, on_both_backends: str
) -> None:
    backend = on_both_backends.partition(":")[0]
    services = await build_services(make_settings(database_url=on_both_backends))
    try:
        base = await aiohttp_server_factory(build_web_app(services))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
                expected = {"status": "ok", "database": "ok", "backend": backend}
                assert await response.json() == expected
            await services.store.db.close()
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 503
    finally:
        await services.close()


async def test_metrics_count_turns_tokens_and_cost(
    make_settings: Callable[..., Settings], aiohttp_server_factory
) -> None:
    from core.events import ConversationKey, Event, Platform, User
    from tests.conftest import RecordingReply

    services = await build_services(make_settings())
    try:
        base = await aiohttp_server_factory(build_web_app(services))
        event = Event(
            key=ConversationKey(Platform.CONSOLE, "w", "c", "metrics"),
            user=User("u1"),
            text="count me",
            delivery_id="metrics-1",
        )
        await services.engine.handle(event, RecordingReply())
        await services.engine.handle(event, RecordingReply())  # a redelivery
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        assert 'parley_turns_total{outcome="done",platform="console"}' in text
        assert 'parley_duplicate_deliveries_total{platform="console"}' in text
        assert 'parley_tokens_total{kind="prompt",model=' in text
        assert "parley_cost_usd_total" in text
        assert "parley_turn_seconds_bucket" in text
    finally:
        await services.close()
