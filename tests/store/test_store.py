"""The store on both backends: migrations, atomic acceptance, de-duplication, resets, clear errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.store import SchemaTooNew, Store, StoreError, connect
from core.store.db import LATEST_VERSION, Tx, migrations
from tests.conftest import make_event


async def test_migrations_are_idempotent(location: Path | str) -> None:
    async with connect(location) as db:
        assert await db.migrate() == [v for v, _, _ in migrations(db.dialect)]
        assert await db.migrate() == []
        assert await db.schema_version() == LATEST_VERSION


def test_both_dialects_have_the_same_migrations() -> None:
    def numbered(dialect: str) -> list[tuple[int, str]]:
        return [(version, name) for version, name, _ in migrations(dialect)]

    assert numbered("sqlite") == numbered("postgresql")
    assert numbered("sqlite")[-1][0] == LATEST_VERSION


async def test_both_dialects_build_the_same_tables_and_columns(
    tmp_path: Path, postgres_url: str
) -> None:
    async with connect(tmp_path / "bot.db") as lite:
        await lite.migrate()
        tables = [
            r[0] for r in await lite.fetchall("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        sqlite_columns = {
            (table, row["name"])
            for table in tables
            for row in await lite.fetchall(f"PRAGMA table_info({table})")
        }
    async with connect(postgres_url) as pg:
        await pg.migrate()
        rows = await pg.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
        postgres_columns = {(row[0], row[1]) for row in rows}
    assert sqlite_columns == postgres_columns


async def test_a_schema_newer_than_the_code_is_refused(location: Path | str) -> None:
    async with connect(location) as db:
        await db.migrate()
        await db.execute(
            "INSERT INTO schema_migrations VALUES (?, 'future', 0)", (LATEST_VERSION + 1,)
        )
    with pytest.raises(SchemaTooNew, match="newer than this server"):
        await Store.open(location)


async def test_accept_stores_message_and_turn_once(location: Path | str) -> None:
    store = await Store.open(location)
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


async def test_the_same_delivery_accepted_concurrently_is_stored_once(location: Path | str) -> None:
    stores = [await Store.open(location) for _ in range(3)]
    try:
        event = make_event("once", delivery_id="same")
        results = await asyncio.gather(
            *(s.accept(event, text="once", tokens=1, delivery_ttl=60) for s in stores for _ in "ab")
        )
        assert sum(r is not None for r in results) == 1
        row = await stores[0].db.fetchone("SELECT COUNT(*) FROM messages")
        assert row is not None and row[0] == 1
    finally:
        for store in stores:
            await store.close()


async def test_each_turn_knows_if_another_process_holds_an_earlier_one(
    location: Path | str,
) -> None:
    """Two processes accept into one conversation at once; each turn must wait exactly for the
    other process's earlier turns (its own process orders its own turns)."""
    a, b = Store(connect(location), "host/1/a"), Store(connect(location), "host/2/b")
    for store in (a, b):
        await store.db.open()
        await store.db.migrate()
    try:
        owners = [a, b] * 10
        accepted = await asyncio.gather(
            *(
                store.accept(make_event(f"m{i}"), text=f"m{i}", tokens=1, delivery_ttl=60)
                for i, store in enumerate(owners)
            )
        )
        turns = [
            (t.turn_id, store, t.behind_others)
            for t, store in zip(accepted, owners, strict=True)
            if t
        ]
        assert len(turns) == 20
        for turn_id, store, behind in turns:
            expected = any(other < turn_id and s is not store for other, s, _ in turns)
            assert behind == expected, turn_id
    finally:
        await a.close()
        await b.close()


async def test_expired_deliveries_are_purged(location: Path | str) -> None:
    store = await Store.open(location)
    try:
        await store.accept(make_event("a", delivery_id="old"), text="a", tokens=1, delivery_ttl=1)
        assert await store.deliveries.purge_expired(now=10**12) == 1
        assert not await store.deliveries.seen("console", "old")
    finally:
        await store.close()


async def test_a_failed_transaction_writes_nothing(location: Path | str) -> None:
    store = await Store.open(location)
    try:

        async def twice(tx: Tx) -> None:
            await tx.execute("INSERT INTO deliveries VALUES ('console', 'x', 0, 10)")
            await tx.execute("INSERT INTO deliveries VALUES ('console', 'x', 0, 10)")

        with pytest.raises(StoreError, match="constraint"):
            await store.db.write(twice)
        assert not await store.deliveries.seen("console", "x")
    finally:
        await store.close()


async def test_reset_hides_old_messages_but_keeps_them(location: Path | str) -> None:
    store = await Store.open(location)
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


async def test_two_processes_migrating_a_new_database_at_once_both_succeed(
    location: Path | str,
) -> None:
    first, second = connect(location), connect(location)
    await first.open()
    await second.open()
    try:
        applied = await asyncio.gather(first.migrate(), second.migrate())
        assert sorted(applied[0] + applied[1]) == [v for v, _, _ in migrations("sqlite")]
        assert await first.schema_version() == await second.schema_version() == LATEST_VERSION
    finally:
        await first.close()
        await second.close()


# -- SQLite only ---------------------------------------------------------------------------


async def test_wal_mode_is_on(tmp_path: Path) -> None:
    async with connect(tmp_path / "bot.db") as db:
        row = await db.fetchone("PRAGMA journal_mode")
        assert row is not None and row[0] == "wal"


async def test_a_corrupt_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Exception, match=r"corrupt|not a database"):
        await Store.open(path)


async def test_an_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(Exception, match="cannot open the database"):
        await Store.open(blocker / "sub" / "bot.db")


# -- PostgreSQL only -------------------------------------------------------------------------


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        await Store.open(f"postgresql://bot:s3cr3t-pw@127.0.0.1:{port}/bot")
    message = str(caught.value)
    assert "cannot reach PostgreSQL" in message and f"127.0.0.1:{port}" in message
    assert "s3cr3t-pw" not in message


async def test_a_missing_database_is_a_clear_error(postgres_url: str) -> None:
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StoreError, match="does not exist"):
        await Store.open(missing)


async def test_a_lost_connection_is_a_clear_error_and_the_next_request_reconnects(
    postgres_url: str,
) -> None:
    store = await Store.open(postgres_url)
    try:
        await store.accept(make_event("before"), text="x", tokens=1, delivery_ttl=60)
        async with connect(postgres_url) as admin:  # as when the server restarts
            await admin.fetchall(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'parley' AND pid != pg_backend_pid()"
            )
        outcomes = []
        for i in range(2):
            try:
                outcomes.append(
                    await store.accept(
                        make_event(f"after {i}"), text="x", tokens=1, delivery_ttl=60
                    )
                )
            except StoreError as exc:
                assert "lost the connection to PostgreSQL" in str(exc)
                outcomes.append(None)
        assert outcomes[-1] is not None, "the pool reconnected"
    finally:
        await store.close()


def test_placeholders_become_numbered_outside_quoted_text() -> None:
    from core.store.postgres import numbered

    sql = "SELECT ? FROM t WHERE a = '?' AND b IN (?, ?) AND c = 'it''s ?'"
    assert numbered(sql) == "SELECT $1 FROM t WHERE a = '?' AND b IN ($2, $3) AND c = 'it''s ?'"
