"""Copying a whole store between databases: SQLite to PostgreSQL (and back), and `migrate-to`."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from core.crypto import SecretBox
from core.events import ConversationKey, Platform
from core.governance.redaction import Placeholders
from core.llm.types import ToolCall
from core.store import Database, Step, Store, StoreError, UsageRow, connect
from core.store.db import LATEST_VERSION
from core.store.installations import Installation, InstallationKey, Installations
from core.store.memory import Summary
from core.store.schedules import Batch, NewSchedule
from core.store.transfer import SKIPPED, TABLES, copy_database
from tests.conftest import make_event

ROOT = Path(__file__).resolve().parents[2]
EMBEDDING = struct.pack("<4f", 0.0, -1.5, 2.25, 1e-8)  # holds NUL bytes


async def fill(store: Store) -> None:
    """A little of everything, written through the store's own API where it has one."""
    first = await store.accept(
        make_event("hello", thread="a"), text="hello", tokens=2, delivery_ttl=60
    )
    second = await store.accept(
        make_event("more", thread="a"), text="more", tokens=1, delivery_ttl=60
    )
    other = await store.accept(
        make_event("other", thread="b"), text="other", tokens=1, delivery_ttl=60
    )
    assert first is not None and second is not None and other is not None
    conversation = first.conversation
    call = ToolCall("call_1", "lookup", '{"q": "x"}')
    steps = [
        Step("assistant", "", (call,), "", 3),
        Step("tool", "result", (), "call_1", 1),
        Step("assistant", "hi there", (), "", 2),
    ]
    await store.finish_turn(first.turn_id, conversation, steps=steps)
    summary = Summary("they said hello", ("f1",), ("q?",), first.turn_id, 5)
    await store.summaries.save(conversation, summary, "model-s")
    await store.pins.add(conversation, "remember this", 3, "u1")
    for cost, turn in ((0.0123, first.turn_id), (0, second.turn_id)):  # 0: an int for a REAL
        row = UsageRow(
            "console", "w1", "c1", "u1", "m", "turn", 10, 2, 5, cost, turn, conversation.id
        )
        await store.usage.record(row)
    key = ConversationKey(Platform.CONSOLE, "w1", "c1", "a")
    await store.moderation.record(
        key,
        "u1",
        direction="input",
        action="flag",
        scores={"x": 0.5},
        categories=["x"],
        excerpt="…",
    )
    await store.scoped.set("workspace:console:w1", "model", "gpt-x", "admin")
    await store.scoped.set("channel:console:w1:c1", "temperature", 0.5, "admin")
    await store.remote.claim(conversation, "conv_old")
    await store.remote.replace(conversation, "conv_old")
    await store.remote.claim(conversation, "conv_new")
    await store.vector_stores.save("default", "vs_1")
    await store.vector_stores.record_file("default", "docs/a.md", "abc", "file_1")
    await store.redactions.put(conversation, Placeholders({"ada@example.com": "[EMAIL_1]"}))
    await store.conversations.reset(ConversationKey(Platform.CONSOLE, "w1", "c1", "b"))
    await store.accept(make_event("after reset", thread="b"), text="new", tokens=1, delivery_ttl=60)
    await store.db.execute(
        "INSERT INTO knowledge_files VALUES (?, ?, ?, ?)", ("docs/k.md", "f00d", 1, time.time())
    )
    await store.db.execute(
        "INSERT INTO knowledge_chunks (path, position, heading, text, model, embedding) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        ("docs/k.md", 0, "Intro", "some text", "emb", EMBEDDING),
    )
    installations = Installations(store.db, SecretBox("k" * 32))
    await installations.save(
        Installation(InstallationKey("slack", "E1", ""), bot_token="xoxb-org", bot_user_id="UB")
    )
    await installations.remember_team("slack", "T9", "E1")
    await store.oauth_states.issue("state-1", 600)  # install pages in flight: not copied
    await store.interactive.rate(first.turn_id, "u1", "positive", "clear answer")
    await store.interactive.ask_approval(
        turn_id=first.turn_id,
        conversation_id=conversation.id,
        attempt=1,
        call_id="call_1",
        tool="lookup",
        arguments='{"q": "x"}',
        requested_by="u1",
        owner="elsewhere",
        expires_at=time.time() + 600,
    )  # pending approvals: not copied
    await store.interactive.rate(first.turn_id, "u2", "positive", "spot on")
    now = time.time()
    schedule = await store.schedules.add(
        NewSchedule("digest", key, "u1", "Ada", "daily 09:00 UTC", "0 9 * * *", "UTC", now - 60),
        now=now,
    )
    [run] = await store.schedules.claim_due(
        ["console"], now=now, next_after=lambda s, t: t + 86_400
    )
    batch = Batch(
        "batch_1",
        "console",
        "/v1/chat/completions",
        "file_1",
        "submitted",
        "",
        0,
        now + 60,
        now,
        now + 86_400,
    )
    assert await store.schedules.batched(batch, [(run, '{"transcript": "…"}', now - 86_400, now)])
    assert schedule.id == run.schedule.id
    await store.processes.beat()  # liveness, spacing, jobs and admin sign-ins: not copied
    assert await store.jobs.claim("retention", interval=3600, lease=60)
    await store.sessions.create(
        "s" * 43, user_id="u1", user_name="", grant="admin-ids", csrf_token="c", ip="", lifetime=60
    )
    assert await store.spacing.claim("identify", 5) == 0


async def contents(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every copied table's rows as dicts, in primary-key order."""
    tables = {}
    for table, key in TABLES:
        rows = [
            dict(zip(row.keys(), row, strict=True))
            for row in await db.fetchall(f"SELECT * FROM {table}")
        ]
        tables[table] = sorted(rows, key=lambda row: tuple(row[k] for k in key))
    return tables


async def sqlite_source(path: Path) -> dict[str, list[dict[str, Any]]]:
    store = await Store.open(path)
    try:
        await fill(store)
        return await contents(store.db)
    finally:
        await store.close()


async def test_every_table_is_copied_or_deliberately_skipped(tmp_path: Path) -> None:
    async with connect(tmp_path / "bot.db") as db:
        await db.migrate()
        rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert {row[0] for row in rows} == {table for table, _ in TABLES} | set(SKIPPED)


async def test_sqlite_copies_into_postgresql_and_back(tmp_path: Path, postgres_url: str) -> None:
    before = await sqlite_source(tmp_path / "bot.db")
    assert all(before[table] for table, _ in TABLES), "the fixture fills every table"
    async with connect(tmp_path / "bot.db") as source, connect(postgres_url) as target:
        counts = await copy_database(source, target, batch=2)  # several batches per table
        assert counts == {table: len(rows) for table, rows in before.items()}
        assert await contents(target) == before
        for table in ("processes", "spaced_actions"):
            assert await target.fetchall(f"SELECT * FROM {table}") == []
        assert await target.schema_version() == LATEST_VERSION

    # And back: PostgreSQL into a new SQLite file gives the rows the SQLite file had.
    async with connect(postgres_url) as source, connect(tmp_path / "back.db") as target:
        await copy_database(source, target, batch=3)
        assert await contents(target) == before

    old = await Store.open(tmp_path / "bot.db")
    new = await Store.open(postgres_url)
    try:
        key = ConversationKey(Platform.CONSOLE, "w1", "c1", "a")
        conversation = await new.conversations.get(key)
        assert conversation is not None and conversation == await old.conversations.get(key)
        assert await new.messages.all(conversation) == await old.messages.all(conversation)
        assert "hi there" in [m.content for m in await new.messages.all(conversation)]
        assert await new.summaries.get(conversation) == await old.summaries.get(conversation)
        assert await new.pins.list(conversation) == await old.pins.list(conversation)
        totals = await new.usage.totals("console", "w1", 0)
        assert totals == await old.usage.totals("console", "w1", 0)
        assert totals.calls == 2 and totals.cost_usd == pytest.approx(0.0123)
        assert await new.remote.live(conversation) == "conv_new"
        assert (await new.redactions.get(conversation)).by_value == {"ada@example.com": "[EMAIL_1]"}
        assert await new.vector_stores.file_hash("default", "docs/a.md") == "abc"

        # The identity sequences were moved past the copied ids.
        event = make_event("new", thread="a")
        accepted = await new.accept(event, text="new", tokens=1, delivery_ttl=60)
        event = make_event("new", thread="c")
        fresh = await new.accept(event, text="new", tokens=1, delivery_ttl=60)
        assert accepted is not None and fresh is not None
        for table, value in (
            ("turns", accepted.turn_id),
            ("messages", accepted.message_id),
            ("conversations", fresh.conversation.id),
        ):
            assert value > max(row["id"] for row in before[table])
        assert await new.pins.add(conversation, "p", 1, "u") > before["pins"][-1]["id"]
    finally:
        await old.close()
        await new.close()


async def test_copying_into_a_database_with_data_is_refused(
    tmp_path: Path, postgres_url: str
) -> None:
    await sqlite_source(tmp_path / "bot.db")
    async with connect(tmp_path / "bot.db") as source, connect(postgres_url) as target:
        await copy_database(source, target)
        before = await contents(target)
        with pytest.raises(StoreError, match=r"already has data .*copy into an empty database"):
            await copy_database(source, target)
        assert await contents(target) == before


async def test_an_older_source_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    async with connect(tmp_path / "old.db") as source, connect(tmp_path / "new.db") as target:
        await source.migrate()
        await source.execute("DELETE FROM schema_migrations WHERE version = ?", (LATEST_VERSION,))
        with pytest.raises(StoreError, match=r"run `python -m bots migrate` on the source"):
            await copy_database(source, target)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [("content", "a\x00b", "NUL character"), ("tokens", 2.5, "not an integer")],
)
async def test_a_value_postgresql_would_reject_or_alter_leaves_the_target_empty(
    tmp_path: Path, postgres_url: str, column: str, value: object, problem: str
) -> None:
    await sqlite_source(tmp_path / "bot.db")
    async with connect(tmp_path / "bot.db") as source, connect(postgres_url) as target:
        await source.execute(f"UPDATE messages SET {column} = ? WHERE id = 2", (value,))
        with pytest.raises(StoreError, match=f"messages where id = 2, {column} .*{problem}"):
            await copy_database(source, target)
        for table, _ in TABLES:  # conversations were copied before messages: rolled back
            assert await target.fetchall(f"SELECT * FROM {table}") == []


async def test_a_failed_copy_into_sqlite_leaves_it_empty(tmp_path: Path) -> None:
    await sqlite_source(tmp_path / "bot.db")
    # A dangling reference, let in with foreign keys off; the target enforces them.
    with contextlib.closing(sqlite3.connect(tmp_path / "bot.db")) as conn, conn:
        conn.execute("UPDATE pins SET conversation_id = 999")
    async with connect(tmp_path / "bot.db") as source, connect(tmp_path / "new.db") as target:
        with pytest.raises(StoreError, match=r"copying pins into .*nothing was copied"):
            await copy_database(source, target, batch=2)
        for table, _ in TABLES:
            assert await target.fetchall(f"SELECT * FROM {table}") == []


def migrate_to(database: Path, target_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))}
    env.update({"PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{database}"})
    return subprocess.run(
        [sys.executable, "-m", "bots", "migrate-to", target_url],
        env=env,
        cwd=database.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_migrate_to_copies_and_never_prints_the_password(
    tmp_path: Path, postgres_url: str
) -> None:
    before = await sqlite_source(tmp_path / "bot.db")
    password = "hunter2-not-printed"  # the test server trusts every login
    url = postgres_url.replace("postgres@", f"postgres:{password}@", 1)
    assert password in url

    done = migrate_to(tmp_path / "bot.db", url)
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["conversations", str(len(before["conversations"]))]
    assert "set DATABASE_URL to postgresql://postgres@127.0.0.1:" in lines[-1]
    async with connect(postgres_url) as target:
        assert await contents(target) == before

    again = migrate_to(tmp_path / "bot.db", url)
    assert again.returncode != 0
    assert password not in again.stdout + again.stderr
    assert "Traceback" not in again.stderr
    assert again.stderr.strip().startswith("error: ") and len(again.stderr.splitlines()) == 1
    assert "already has data" in again.stderr
