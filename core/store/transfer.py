"""Copy a whole store from one database into an empty one: SQLite to PostgreSQL, or back.

Used by `python -m bots migrate-to TARGET_URL` when a deployment outgrows its SQLite file (or
returns to one). Rows keep their ids; liveness and transient tables are not copied. Stop every
server using the source first: it is read table by table, not as one snapshot.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from core.store.db import Database, Row, StoreError, Tx

# Every data table, each after the tables it references, with the columns of its primary key
# (the order the source is read in, a batch at a time).
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("conversations", ("id",)),
    ("messages", ("id",)),
    ("turns", ("id",)),
    ("usage", ("id",)),
    ("summaries", ("conversation_id", "epoch")),
    ("pins", ("id",)),
    ("remote_conversations", ("conversation_id", "epoch", "remote_id")),
    ("redactions", ("conversation_id",)),
    ("deliveries", ("platform", "delivery_id")),
    ("scoped_settings", ("scope", "name")),
    ("moderation_events", ("id",)),
    ("vector_stores", ("name",)),
    ("ingested_files", ("vector_store", "path")),
    ("knowledge_files", ("path",)),
    ("knowledge_chunks", ("id",)),
    ("installations", ("platform", "enterprise_id", "team_id")),
    ("installation_teams", ("platform", "team_id")),
    ("feedback", ("turn_id", "user_id")),
    ("audit_log", ("id",)),
    ("schedules", ("id",)),
    ("schedule_runs", ("id",)),
    ("schedule_batches", ("id",)),  # the target resumes polling the batches still open
)
# Not copied: the target's own migrations filled the first; the others describe the processes
# running on the source right now, install pages opened on it (OAuth states live minutes),
# sign-ins to its admin site (admins sign in again), or figures the target computes again from the
# rows copied.
SKIPPED = (
    "schema_migrations",
    "processes",
    "spaced_actions",
    "oauth_states",
    "tool_approvals",  # pending approvals expire within TOOL_APPROVAL_MINUTES
    "job_leases",
    "daily_rollups",
    "admin_sessions",
    "admin_login_states",
    "admin_login_failures",
)

_INTEGER_TYPES = ("smallint", "integer", "bigint")


async def copy_database(source: Database, target: Database, *, batch: int = 1000) -> dict[str, int]:
    """Copy every data table of `source` (open, migrated) into `target` (open, empty).

    The target is migrated first and must then have the source's schema version. Returns the rows
    copied per table. On failure the target is left empty: into PostgreSQL everything is one
    transaction; into SQLite (whose transactions cannot wait for the source) each batch is one,
    and what was copied is deleted again.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    await target.migrate()
    await _check_versions(source, target)
    await _check_empty(target)
    if target.dialect == "sqlite":
        return await _copy_in_batches(source, target, batch)
    current = [""]  # the table being copied, for the error message
    try:
        return await target.write(lambda tx: _copy_in_one(source, tx, batch, current))
    except StoreError as exc:
        raise _failed(current[0], target, exc) from None


def _failed(table: str, target: Database, exc: StoreError, left: str = "") -> StoreError:
    return StoreError(
        f"copying {table} into {target.describe()} failed: {exc}; "
        + (left or "nothing was copied, the target is still empty")
    )


async def _check_versions(source: Database, target: Database) -> None:
    have, want = await source.schema_version(), await target.schema_version()
    if have == want:
        return
    if have == 0:
        raise StoreError(
            f"the source {source.describe()} holds no store (schema version 0): check DATABASE_URL"
        )
    if have < want:
        raise StoreError(
            f"the source {source.describe()} has schema version {have}, this server's is {want}: "
            "run `python -m bots migrate` on the source with this version first, then copy again"
        )
    raise StoreError(
        f"the source {source.describe()} has schema version {have}, newer than this server's "
        f"{want}: copy it with the newer version of the server"
    )


async def _check_empty(target: Database) -> None:
    filled = [
        table
        for table, _ in TABLES
        if await target.fetchone(f"SELECT 1 FROM {table} LIMIT 1") is not None
    ]
    if filled:
        raise StoreError(
            f"the target {target.describe()} already has data ({', '.join(filled)}); "
            "copy into an empty database"
        )


async def _batches(
    source: Database, table: str, key: tuple[str, ...], size: int
) -> AsyncIterator[list[Row]]:
    """The rows of a table in primary-key order, `size` at a time (keyset pagination)."""
    order = ", ".join(key)
    first = f"SELECT * FROM {table} ORDER BY {order} LIMIT ?"
    after = (
        f"SELECT * FROM {table} WHERE ({order}) > ({', '.join('?' * len(key))}) "
        f"ORDER BY {order} LIMIT ?"
    )
    last: tuple[Any, ...] = ()
    while True:
        rows = await source.fetchall(after if last else first, (*last, size))
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = tuple(rows[-1][column] for column in key)


def _insert(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(f'"{column}"' for column in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"


async def _copy_in_one(source: Database, tx: Tx, batch: int, current: list[str]) -> dict[str, int]:
    """Into PostgreSQL: every table in this one transaction, then the id sequences moved on."""
    column_types: dict[tuple[str, str], str] = {}
    identities = []
    for row in await tx.fetchall(
        "SELECT table_name, column_name, data_type, is_identity FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    ):
        column_types[(row[0], row[1])] = row[2]
        if row[3] == "YES":
            identities.append((row[0], row[1]))
    counts: dict[str, int] = {}
    for table, key in TABLES:
        current[0], counts[table] = table, 0
        async for rows in _batches(source, table, key, batch):
            columns = list(rows[0].keys())
            check = _checker(table, key, columns, column_types)
            await tx.executemany(_insert(table, columns), [check(row) for row in rows])
            counts[table] += len(rows)
    current[0] = "the id sequences"
    for table, column in identities:
        if counts.get(table):
            await tx.execute(
                f"SELECT setval(pg_get_serial_sequence(?, ?), MAX({column})) FROM {table}",
                (table, column),
            )
    return counts


def _checker(
    table: str, key: tuple[str, ...], columns: list[str], types: dict[tuple[str, str], str]
) -> Callable[[Row], tuple[Any, ...]]:
    """A row's values for PostgreSQL, refusing the few that it would reject or alter.

    asyncpg takes an int for DOUBLE PRECISION and an integral float for BIGINT as they are, but
    truncates 2.5 to 2 without a word; and PostgreSQL's text cannot hold NUL, which SQLite can.
    """
    integers = [i for i, c in enumerate(columns) if types.get((table, c)) in _INTEGER_TYPES]
    texts = [i for i, c in enumerate(columns) if types.get((table, c)) == "text"]

    def check(row: Row) -> tuple[Any, ...]:
        values = tuple(row)
        for i in integers:
            if isinstance(values[i], float) and not values[i].is_integer():
                refuse(row, columns[i], f"holds {values[i]!r}, which is not an integer")
        for i in texts:
            if isinstance(values[i], str) and "\x00" in values[i]:
                refuse(row, columns[i], "holds a NUL character, which PostgreSQL cannot store")
        return values

    def refuse(row: Row, column: str, problem: str) -> None:
        where = ", ".join(f"{k} = {row[k]!r}" for k in key)
        raise StoreError(
            f"in the source row of {table} where {where}, {column} {problem}; "
            "correct that row in the source and copy again"
        )

    return check


async def _copy_in_batches(source: Database, target: Database, batch: int) -> dict[str, int]:
    """Into SQLite: one transaction per batch; on failure, delete what was copied."""
    counts: dict[str, int] = {}
    table = ""
    try:
        for table, key in TABLES:
            counts[table] = 0
            async for rows in _batches(source, table, key, batch):
                insert = _insert(table, list(rows[0].keys()))
                values = [tuple(row) for row in rows]
                await target.write(functools.partial(_insert_rows, sql=insert, rows=values))
                counts[table] += len(rows)
    except BaseException as exc:
        try:
            await target.write(_delete_all)
        except StoreError as cleanup:
            left = f"removing the rows copied so far failed too ({cleanup}): delete the target"
            raise _failed(table, target, _as_store_error(exc), left) from None
        if isinstance(exc, StoreError):
            raise _failed(table, target, exc) from None
        raise
    return counts


def _as_store_error(exc: BaseException) -> StoreError:
    return exc if isinstance(exc, StoreError) else StoreError(type(exc).__name__)


async def _insert_rows(tx: Tx, *, sql: str, rows: list[tuple[Any, ...]]) -> None:
    await tx.executemany(sql, rows)


async def _delete_all(tx: Tx) -> None:
    for table, _ in reversed(TABLES):
        await tx.execute(f"DELETE FROM {table}")
