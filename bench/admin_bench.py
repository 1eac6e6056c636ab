"""The admin site with 100,000 stored turns: the overview's server-side time (p50, from the
`Server-Timing` the site sends), and export speed in turns/s; on SQLite and on PostgreSQL.

The store is filled directly in bulk (a fixture, like the tests': the product writes through the
store's own API): 10,000 conversations of 10 turns over the last 30 days, in 10 channels of 2
workspaces, 500 user ids, a question, an answer and a usage row per turn, and a 👍 on every tenth
answer.
"""

from __future__ import annotations

import asyncio
import io
import random
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.common import percentile, summarize
from bots.admin import AdminSite
from bots.services import Services, build_services
from bots.settings import load_app_settings
from bots.web import build_web_app
from core.lifecycle import Exporter
from core.store.db import Tx

TURNS = 100_000
PER_CONVERSATION = 10
CHANNELS = 10
PEOPLE = 500
TOKEN = "bench-admin-token-0123456789"
REQUESTS = 30
BATCH = 2_000  # turns per fill transaction


def _turn_rows(first_id: int, count: int, now: float) -> dict[str, list[tuple[object, ...]]]:
    """Rows for turns `first_id` .. `first_id + count - 1` (ids chosen here, as the copy
    between databases also keeps them)."""
    rng = random.Random(first_id)
    rows: dict[str, list[tuple[object, ...]]] = {
        "conversations": [],
        "messages": [],
        "turns": [],
        "usage": [],
        "feedback": [],
    }
    for turn in range(first_id, first_id + count):
        conversation = (turn - 1) // PER_CONVERSATION + 1
        channel, workspace = f"C{conversation % CHANNELS}", f"T{conversation % 2}"
        start = now - 28.5 * 86_400 + (conversation * 997 % 2_400_000)  # inside the 30 days
        at = start + (turn - 1) % PER_CONVERSATION * 60
        if (turn - 1) % PER_CONVERSATION == 0:
            key = f"slack:{workspace}:{channel}:{conversation}.000"
            rows["conversations"].append(
                (
                    conversation,
                    key,
                    "slack",
                    workspace,
                    channel,
                    f"{conversation}.000",
                    0,
                    start,
                    at + 600,
                )
            )
        user = f"U{rng.randrange(PEOPLE):04d}"
        question, answer = 2 * turn - 1, 2 * turn
        rows["messages"] += [
            (
                question,
                conversation,
                0,
                turn,
                "user",
                user,
                f"name {user}",
                f"question {turn}: how do I reset the VPN on floor {turn % 7}?",
                None,
                "",
                None,
                16,
                at,
            ),
            (
                answer,
                conversation,
                0,
                turn,
                "assistant",
                "",
                "",
                f"Answer {turn}: open Settings, choose Network, then VPN, and press Reset. " * 4,
                None,
                "",
                None,
                70,
                at + 1.5,
            ),
        ]
        rows["turns"].append(
            (
                turn,
                conversation,
                question,
                f"Ev{turn}",
                "done",
                "gpt-6-luna",
                "",
                at,
                at + 0.1,
                at + 1.5,
                f"slack:{workspace}:{user}",
                "bench",
            )
        )
        rows["usage"].append(
            (
                turn,
                conversation,
                "slack",
                workspace,
                channel,
                user,
                "gpt-6-luna",
                "chat",
                900,
                300,
                70,
                0.00042,
                at + 1.5,
            )
        )
        if turn % 10 == 0:
            rows["feedback"].append((turn, "U9999", "positive", "", at + 30))
    return rows


_INSERTS = {
    "conversations": "INSERT INTO conversations (id, key, platform, workspace, channel, thread, "
    "epoch, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "messages": "INSERT INTO messages (id, conversation_id, epoch, turn_id, role, user_id, "
    "user_name, content, tool_calls, tool_call_id, attachments, tokens, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "turns": "INSERT INTO turns (id, conversation_id, user_message_id, delivery_id, status, "
    "model, error, created_at, started_at, finished_at, user_key, owner) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "usage": "INSERT INTO usage (turn_id, conversation_id, platform, workspace, channel, "
    "user_id, model, purpose, prompt_tokens, cached_tokens, completion_tokens, cost_usd, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "feedback": "INSERT INTO feedback (turn_id, user_id, value, comment, created_at) "
    "VALUES (?, ?, ?, ?, ?)",
}


async def fill(services: Services, turns: int = TURNS) -> float:
    """Store `turns` turns; returns the seconds it took."""
    started, now = time.perf_counter(), time.time()
    for first in range(1, turns + 1, BATCH):
        rows = _turn_rows(first, min(BATCH, turns - first + 1), now)

        async def write(tx: Tx, rows: dict[str, list[tuple[object, ...]]] = rows) -> None:
            for table, sql in _INSERTS.items():
                await tx.executemany(sql, rows[table])

        await services.store.db.write(write, serializable=False)
    if services.store.db.dialect == "postgresql":  # ids were given: move the sequences on
        for table in ("conversations", "messages", "turns"):
            await services.store.db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}"
            )
        await services.store.db.execute("ANALYZE")
    else:
        await services.store.db.execute("ANALYZE")
    return time.perf_counter() - started


async def overview_ms(services: Services, requests: int = REQUESTS) -> list[float]:
    """Server-side milliseconds of `GET /admin` (signed in), one request at a time."""
    site = AdminSite(services)
    runner = web.AppRunner(build_web_app(services, [site.install]), access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    base = f"http://127.0.0.1:{tcp._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    times = []
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{base}/admin/login") as login:
                page = await login.text()
            csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            async with http.post(
                f"{base}/admin/login",
                data={"csrf_token": csrf, "token": TOKEN},
                allow_redirects=False,
            ) as signed_in:
                assert signed_in.status == 303
            for _ in range(requests + 1):
                async with http.get(f"{base}/admin") as response:
                    body = await response.text()
                    assert response.status == 200 and f">{TURNS:,}<" in body
                    timing = response.headers["Server-Timing"]
                    times.append(float(timing.partition("dur=")[2]))
    finally:
        await runner.cleanup()
    return times  # the first computes the closed days' rollups


async def export_rates(services: Services) -> tuple[float, float, float]:
    """Turns/s of exporting every channel as JSON Lines (redacted, the default; and unredacted),
    and of the fine-tuning export."""
    exporter = Exporter(services.store, services.settings)
    rates = []
    for redacted in (True, False):
        turns, seconds = 0, 0.0
        for channel in range(CHANNELS):
            report = await exporter.channel(
                f"C{channel}", io.StringIO(), actor="bench", redacted=redacted
            )
            turns, seconds = turns + report.turns, seconds + report.seconds
        rates.append(turns / seconds)
    tuned = await exporter.fine_tune(io.StringIO(), actor="bench")
    return rates[0], rates[1], tuned.turns / tuned.seconds


async def _one(url: str) -> dict[str, float]:
    settings = load_app_settings(
        openai_api_key="sk-bench",
        openai_base_url="http://127.0.0.1:9/v1",  # never called
        database_url=url,
        admin_token=TOKEN,
        log_level="warning",
        _env_file=None,
    )
    services = await build_services(settings)
    try:
        filled = await fill(services)
        times = await overview_ms(services)
        redacted, raw, tuned = await export_rates(services)
    finally:
        await services.close()
    return {
        "fill s": filled,
        "cold": times[0],
        "p50": percentile(times[1:], 50),
        "max": max(times[1:]),
        "channel": redacted,
        "raw": raw,
        "tune": tuned,
    }


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for `python -m bench`: a fresh store per repeat, on each backend."""
    from tests.postgres import PostgresServer

    labels = {
        "cold": ("admin overview first load ms, 100,000 turns ({}; computes the day rollups)", ""),
        "p50": ("admin overview p50 ms, 100,000 turns ({}, server-side)", "<= 100"),
        "max": (f"admin overview slowest of {REQUESTS} ms ({{}})", ""),
        "channel": ("export --channel turns/s, 100,000 turns, redacted ({})", ""),
        "raw": ("export --channel turns/s, 100,000 turns, --unredacted ({})", ""),
        "tune": ("export --fine-tune turns/s, 10,000 liked conversations ({})", ""),
    }
    rows: list[tuple[str, str, str]] = []
    with PostgresServer() as server:
        for backend in ("SQLite", "PostgreSQL"):
            runs: list[dict[str, float]] = []
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as folder:
                    url = (
                        f"sqlite:///{Path(folder) / 'admin.db'}"
                        if backend == "SQLite"
                        else server.create_database()
                    )
                    runs.append(await _one(url))
                    if backend == "PostgreSQL":
                        server.drop_database(url)
            for key, (label, target) in labels.items():
                rows.append((label.format(backend), summarize([r[key] for r in runs]), target))
    return rows


if __name__ == "__main__":
    for row in asyncio.run(run(1)):
        print(*row, sep="  |  ")
