"""Faults injected for real: a locked or full database, a model outage, platform API errors."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import asyncpg

from bots.settings import AppSettings as Settings
from core.logging import configure_logging
from simulator import Fail, Simulator, Text
from tests.slack.rig import Rig, mention, open_rig


@contextlib.asynccontextmanager
async def _sqlite_write_lock(path: Path) -> AsyncIterator[None]:
    """Another writer holds SQLite's write lock."""
    locker = sqlite3.connect(path)
    locker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        locker.rollback()
        locker.close()


@contextlib.asynccontextmanager
async def _postgres_table_lock(url: str) -> AsyncIterator[None]:
    """Another session holds a lock on the deliveries table (a migration, say)."""
    locker = await asyncpg.connect(url)
    transaction = locker.transaction()
    await transaction.start()
    try:
        await locker.execute("LOCK TABLE deliveries IN EXCLUSIVE MODE")
        yield
    finally:
        await transaction.rollback()
        await locker.close()


async def _refused_while_locked_then_answered(
    rig: Rig, sim: Simulator, lock: AbstractAsyncContextManager[None], explained: str
) -> None:
    """While `lock` is held the event is refused with a log that says `explained`; Slack's
    redelivery afterwards is answered, once."""
    stream = io.StringIO()
    configure_logging("info", "json", rig.services.engine.settings.secrets(), stream=stream)
    async with lock:
        refused = await rig.event(mention("are you there?"), event_id="EvLocked")
        assert refused.status >= 500, "Slack must redeliver: the message was not stored"
    assert explained in stream.getvalue()
    redelivered = await rig.event(
        mention("are you there?"), event_id="EvLocked", **{"X-Slack-Retry-Num": "1"}
    )
    assert redelivered.status == 200
    await rig.slack.wait_for("chat.stopStream")
    await rig.services.engine.drain()
    assert len(rig.slack.calls_to("chat.startStream")) == 1
    assert len(sim.requests_to("chat")) == 1


async def test_a_locked_database_refuses_the_event_and_the_redelivery_is_answered(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory, tmp_path: Path
) -> None:
    path = tmp_path / "bot.db"
    async with open_rig(
        sim,
        make_settings,
        aiohttp_server_factory,
        database_url=f"sqlite:///{path}",  # SQLite's write lock
        database_busy_timeout_ms=100,
    ) as rig:
        await _refused_while_locked_then_answered(
            rig, sim, _sqlite_write_lock(path), "locked by another writer"
        )


async def test_a_locked_postgresql_table_refuses_the_event_and_the_redelivery_is_answered(
    sim: Simulator,
    make_settings: Callable[..., Settings],
    aiohttp_server_factory,
    postgres_url: str,
) -> None:
    async with open_rig(
        sim,
        make_settings,
        aiohttp_server_factory,
        database_url=postgres_url,
        database_busy_timeout_ms=200,
    ) as rig:
        await _refused_while_locked_then_answered(
            rig, sim, _postgres_table_lock(postgres_url), "stayed locked past the lock timeout"
        )


async def test_a_full_disk_refuses_the_event_with_a_clear_log(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory, tmp_path: Path
) -> None:
    sqlite = f"sqlite:///{tmp_path / 'bot.db'}"  # a full disk simulated by SQLite's page limit
    async with open_rig(sim, make_settings, aiohttp_server_factory, database_url=sqlite) as rig:
        stream = io.StringIO()
        configure_logging("info", "json", rig.services.engine.settings.secrets(), stream=stream)
        db = rig.services.store.db
        (pages,) = await db.fetchone("PRAGMA page_count")  # type: ignore[misc]
        await db.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page
        big = "word " * 4000  # needs new pages; too short to start a summary
        refused = await rig.event(mention(big), event_id="EvFull")
        assert refused.status >= 500
        assert "cannot be written" in stream.getvalue() and "Free disk space" in stream.getvalue()
        await db.execute("PRAGMA max_page_count = 1073741823")
        redelivered = await rig.event(mention(big), event_id="EvFull")
        assert redelivered.status == 200
        await rig.slack.wait_for("chat.stopStream")
        await rig.services.engine.drain()
        assert len(sim.requests_to("chat")) == 1


async def test_a_429_storm_in_one_conversation_does_not_hold_up_the_others(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory
) -> None:
    async with open_rig(
        sim, make_settings, aiohttp_server_factory, openai_retry_initial_wait=0.05
    ) as rig:
        sim.fail_matching("first, rate limited", Fail(429, retry_after=1.0), times=2)
        started = time.monotonic()
        await rig.event(mention("first, rate limited", ts="200.000001"))
        for i in range(5):
            await rig.event(mention(f"other {i}", ts=f"20{i + 1}.000001"))
        finished: dict[str, float] = {}
        await rig.slack.wait_for("chat.stopStream", count=6, timeout=30)
        for call in rig.slack.calls_to("chat.stopStream"):
            finished[rig.slack.messages[call.args["ts"]]["thread_ts"]] = call.at - started
        assert finished["200.000001"] >= 2.0, "the rate-limited turn waited as told (2 × 1 s)"
        others = [t for thread, t in finished.items() if thread != "200.000001"]
        assert max(others) < 1.0, "other conversations were not held up"
        assert sim.attempts["chat"] == 8, "two retries, then success; no retry storm"


async def test_a_dead_model_server_gets_every_user_an_answer(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory
) -> None:
    async with open_rig(
        sim,
        make_settings,
        aiohttp_server_factory,
        openai_base_url="http://127.0.0.1:9/v1",  # nothing listens there
        openai_retry_attempts=2,
        openai_retry_initial_wait=0.01,
    ) as rig:
        for i in range(3):
            await rig.event(mention(f"hello {i}", ts=f"30{i}.000001"))
        await rig.slack.wait_for("chat.postMessage", count=3, timeout=30)  # notices: one post each
        await rig.services.engine.drain()
        texts = [m["text"] for m in rig.slack.messages.values()]
        assert len(texts) == 3 and all("try again" in t.lower() for t in texts), texts
        rows = await rig.services.store.db.fetchall("SELECT status FROM turns")
        assert [r[0] for r in rows] == ["failed"] * 3


async def test_slack_server_errors_on_posting_are_retried(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory
) -> None:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as rig:
        rig.slack.fail_next("chat.startStream", "service_unavailable", status=503)
        sim.enqueue(Text("made it"))
        await rig.event(mention("hello"))
        await rig.slack.wait_for("chat.stopStream", timeout=30)
        await rig.services.engine.drain()
        assert [m["text"] for m in rig.slack.messages.values()] == ["made it"]


async def test_model_timeouts_are_retried_a_bounded_number_of_times_then_answered(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory
) -> None:
    async with open_rig(
        sim,
        make_settings,
        aiohttp_server_factory,
        openai_timeout=0.3,
        openai_retry_attempts=3,
        openai_retry_initial_wait=0.01,
    ) as rig:
        for _ in range(3):
            sim.enqueue(Text("too late", delay=5))
        started = time.monotonic()
        await rig.event(mention("anyone home?"))
        await rig.slack.wait_for("chat.postMessage", timeout=30)
        await rig.services.engine.drain()
        assert time.monotonic() - started < 4.5, "bounded: three attempts of 0.3 s, not a hang"
        assert sim.attempts["chat"] == 3
        [reply] = [m["text"] for m in rig.slack.messages.values()]
        assert "try again" in reply.lower()
