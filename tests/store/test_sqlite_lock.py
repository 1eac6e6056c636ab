"""SQLite's write lock held by another process: the writer waits for it, then commits."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from core.store.db import StoreError, Tx
from core.store.sqlite import SqliteDatabase


async def _create(tx: Tx) -> None:
    await tx.execute("CREATE TABLE notes (text TEXT NOT NULL)")


async def _insert(tx: Tx) -> None:
    await tx.execute("INSERT INTO notes VALUES ('after the lock')")


async def test_a_write_waits_for_another_connections_lock_then_commits(tmp_path: Path) -> None:
    path = tmp_path / "lock.db"
    db = SqliteDatabase(path, busy_timeout_ms=30_000)
    await db.open()
    try:
        await db.write(_create)
        other = sqlite3.connect(path, isolation_level=None)  # as another process would
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(db.write(_insert))
        await asyncio.sleep(0.2)
        assert not write.done()  # neither committed past the lock nor refused
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(write, 30)
        assert [tuple(row) for row in await db.fetchall("SELECT text FROM notes")] == [
            ("after the lock",)
        ]
    finally:
        await db.close()


async def test_a_lock_held_past_the_busy_timeout_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "lock.db"
    db = SqliteDatabase(path, busy_timeout_ms=50)
    await db.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await db.write(_create)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="locked by another writer"):
            await db.write(_insert)
    finally:
        other.close()
        await db.close()
