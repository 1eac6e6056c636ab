"""The SQLite store: migrations, atomic acceptance, de-duplication, resets."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from core.store import Database, SchemaTooNew, Store
from core.store.db import LATEST_VERSION
from tests.conftest import make_event


async def test_migrations_are_idempotent(tmp_path: Path) -> None:
    async with Database(tmp_path / "bot.db") as db:
        assert await db.migrate() == list(range(1, LATEST_VERSION + 1))
        assert await db.migrate() == []
        assert await db.schema_version() == LATEST_VERSION


async def test_wal_mode_is_on(tmp_path: Path) -> None:
    async with Database(tmp_path / "bot.db") as db:
        row = await db.fetchone("PRAGMA journal_mode")
        assert row is not None and row[0] == "wal"


async def test_a_schema_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    async with Database(tmp_path / "bot.db") as db:
        await db.migrate()
        await db.execute(
            "INSERT INTO schema_migrations VALUES (?, 'future', 0)", (LATEST_VERSION + 1,)
        )
    with pytest.raises(SchemaTooNew, match="newer than this server"):
        await Store.open(tmp_path / "bot.db")


async def test_a_corrupt_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Exception, match=r"corrupt|not a database"):
        await Store.open(path)


async def test_accept_stores_message_and_turn_once(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    try:
        event = make_event("hello", delivery_id="E1")
        first = await store.accept(event, text="hello", tokens=2, delivery_ttl=60)
        again = await store.accept(event, text="hello", tokens=2, delivery_ttl=60)
        assert first is not None and again is None
        assert await store.deliveries.seen("console", "E1")
        messages = await store.messages.all(first.conversation)
        assert [m.content for m in messages] == ["hello"]
        turn = await store.turns.get(first.turn_id)
        assert turn is not None and turn.status == "queued"
    finally:
        await store.close()


async def test_expired_deliveries_are_purged(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    try:
        await store.accept(make_event("a", delivery_id="old"), text="a", tokens=1, delivery_ttl=1)
        assert await store.deliveries.purge_expired(now=10**12) == 1
        assert not await store.deliveries.seen("console", "old")
    finally:
        await store.close()


async def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    try:

        def twice(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO deliveries VALUES ('console', 'x', 0, 10)")
            conn.execute("INSERT INTO deliveries VALUES ('console', 'x', 0, 10)")

        with pytest.raises(sqlite3.IntegrityError):
            await store.db.write(twice)
        assert not await store.deliveries.seen("console", "x")
    finally:
        await store.close()


async def test_reset_hides_old_messages_but_keeps_them(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    try:
        event = make_event("before")
        accepted = await store.accept(event, text="before", tokens=1, delivery_ttl=60)
        assert accepted is not None
        await store.conversations.reset(event.key)
        conversation = await store.conversations.get(event.key)
        assert conversation is not None and conversation.epoch == 1
        assert await store.messages.all(conversation) == []
        row = await store.db.fetchone("SELECT COUNT(*) FROM messages")
        assert row is not None and row[0] == 1
    finally:
        await store.close()


async def test_an_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(Exception, match="cannot open the database"):
        await Store.open(blocker / "sub" / "bot.db")


async def test_two_processes_migrating_a_new_file_at_once_both_succeed(tmp_path: Path) -> None:
    first, second = Database(tmp_path / "bot.db"), Database(tmp_path / "bot.db")
    await first.open()
    await second.open()
    try:
        applied = await asyncio.gather(first.migrate(), second.migrate())
        assert sorted(applied[0] + applied[1]) == list(range(1, LATEST_VERSION + 1))
        assert await first.schema_version() == await second.schema_version() == LATEST_VERSION
    finally:
        await first.close()
        await second.close()
