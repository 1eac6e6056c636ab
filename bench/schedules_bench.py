"""What a daily digest of 500 messages costs as a direct call and through the Batch API, at the
configured prices (`MODEL_PRICES`, the summary model's), and what claiming a due run costs.

Offline: the simulator in process answers the model calls (it counts prompt tokens exactly with
o200k and bills the scripted answer's tokens), the channel is an in-memory platform port, the
store a SQLite file (and a throw-away PostgreSQL server when `initdb` is found). The digest's
input cap is raised so all 500 messages go in (`SUMMARY_MAX_INPUT_TOKENS`, default 8,000, would
keep the newest that fit); the answer is a digest-sized JSON of about 400 tokens.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from random import Random

from bench.common import summarize
from bots.services import Services, build_services
from bots.settings import load_app_settings
from core.schedules.runner import next_after
from core.store import Store, connect
from core.store.schedules import NewSchedule
from simulator import Simulator, Text
from tests.postgres import PostgresServer, find_pg_bin
from tests.schedules.helpers import Clock, FakePort, at, attach, command, key

MESSAGES = 500
DUE = 500  # schedules due at once, for the claim figures
WORDS = [
    "release",
    "deploy",
    "review",
    "budget",
    "customer",
    "ticket",
    "design",
    "sprint",
    "roadmap",
    "incident",
    "fix",
    "test",
    "launch",
    "metrics",
    "hiring",
    "onboarding",
    "docs",
    "api",
    "latency",
    "database",
    "migration",
    "feedback",
]


def _answer() -> Text:
    """The same digest-sized answer every time (so direct and batch bill the same tokens)."""
    rng = Random(11)
    topics = [
        {
            "title": f"Topic {i}: {' '.join(rng.sample(WORDS, 3))}",
            "summary": " ".join(rng.choices(WORDS, k=30)) + ".",
            "messages": [f"m{rng.randint(1, MESSAGES)}" for _ in range(3)],
        }
        for i in range(6)
    ]
    items = [{"text": " ".join(rng.choices(WORDS, k=15)), "messages": [f"m{i}"]} for i in range(4)]
    body = {"topics": topics, "decisions": items, "open_questions": items[:2]}
    return Text(json.dumps(body))


async def _digest_cost(folder: Path, *, batch: bool) -> tuple[float, int, int]:
    """(USD, prompt tokens, completion tokens) of one daily digest of 500 messages."""
    async with Simulator() as sim:
        settings = load_app_settings(
            openai_api_key="sk-bench",
            openai_base_url=sim.base_url,
            openai_wire_api="chat",
            database_url=f"sqlite:///{folder / ('batch.db' if batch else 'direct.db')}",
            digest_batch=batch,
            summary_max_input_tokens=60_000,
            moderation_enabled=False,
            log_level="error",
            _env_file=None,
        )
        services = await build_services(settings)
        try:
            port = FakePort()
            port.add_channel("C1", "general", {"u1", "u2", "u3"})
            clock = Clock(at("2026-03-02 08:00"))
            start = at("2026-03-01 09:30")
            rng = Random(7)
            for i in range(MESSAGES):
                text = " ".join(rng.choices(WORDS, k=rng.randint(8, 30)))
                port.say("C1", f"u{i % 3 + 1}", text, start + timedelta(minutes=2 * i))
            await attach(services, port, clock)
            await command(services, "digest", "daily 09:00", "C1")
            sim.enqueue(_answer())
            clock.set(at("2026-03-02 09:00"))
            await _tick(services)
            if batch:
                clock.advance(60)
                await _tick(services)
            assert len(port.posted) == 1, port.posted
            row = await services.store.db.fetchone(
                "SELECT SUM(cost_usd), SUM(prompt_tokens), SUM(completion_tokens) FROM usage"
            )
            assert row is not None
            return float(row[0]), int(row[1]), int(row[2])
        finally:
            await services.close()


async def _tick(services: Services) -> None:
    assert services.scheduler is not None
    await services.scheduler.tick()


async def _claims(location: str) -> tuple[float, float]:
    """(ms per due run claimed, ms of a claim with nothing due) with `DUE` schedules due."""
    store = Store(connect(location), "bench/claims")
    await store.db.open()
    await store.db.migrate()
    try:
        now = time.time()
        for i in range(DUE):
            new = NewSchedule(
                "prompt", key(f"c{i}"), "u1", "", "daily", "0 9 * * *", "UTC", now - 60, "hi"
            )
            await store.schedules.add(new, now=now)
        started = time.perf_counter()
        claimed = 0
        while runs := await store.schedules.claim_due(["console"], now=now, next_after=next_after):
            claimed += len(runs)
        per_run = (time.perf_counter() - started) * 1000 / claimed
        assert claimed == DUE
        started = time.perf_counter()
        for _ in range(50):
            await store.schedules.claim_due(["console"], now=now, next_after=next_after)
        empty = (time.perf_counter() - started) * 1000 / 50
        return per_run, empty
    finally:
        await store.close()


async def run(repeats: int) -> list[tuple[str, str, str]]:
    direct: list[float] = []
    batched: list[float] = []
    tokens: tuple[int, int] = (0, 0)
    claims: dict[str, list[float]] = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            cost, prompt, completion = await _digest_cost(folder, batch=False)
            direct.append(cost)
            tokens = (prompt, completion)
            batched.append((await _digest_cost(folder, batch=True))[0])
            per_run, empty = await _claims(f"sqlite:///{folder / 'claims.db'}")
            claims.setdefault("SQLite per run", []).append(per_run)
            claims.setdefault("SQLite empty", []).append(empty)
    if find_pg_bin() is not None:
        with PostgresServer() as server:
            for _ in range(repeats):
                url = await asyncio.to_thread(server.create_database)
                try:
                    per_run, empty = await _claims(url)
                finally:
                    await asyncio.to_thread(server.drop_database, url)
                claims.setdefault("PostgreSQL per run", []).append(per_run)
                claims.setdefault("PostgreSQL empty", []).append(empty)
    prompt, completion = tokens
    rows = [
        (
            f"daily digest of {MESSAGES} messages, direct (USD; {prompt:,} in, "
            f"{completion:,} out tokens)",
            summarize(direct),
            "",
        ),
        (
            f"daily digest of {MESSAGES} messages, Batch API (USD)",
            summarize(batched),
            "half of direct",
        ),
        (
            "  batch / direct",
            summarize([b / d for b, d in zip(batched, direct, strict=True)]),
            "0.5",
        ),
    ]
    for name, values in claims.items():
        backend, what = name.split(" ", 1)
        label = (
            f"claim per due run, {DUE} due at once, {backend} (ms)"
            if what == "per run"
            else f"a claim with nothing due, {backend} (ms)"
        )
        rows.append((label, summarize(values), ""))
    return rows
