"""PostgreSQL (asyncpg): the store shared by several processes on several machines."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from core.store.db import Database, Row, StoreError, Work

T = TypeVar("T")

# pg_advisory_xact_lock key under which migrations run, one process at a time.
MIGRATION_LOCK = 0x7061726C6579  # "parley"
# A serializable transaction that loses a conflict is retried this many times.
WRITE_ATTEMPTS = 12
_RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
# What the driver raises: server errors, lost connections, and its own state errors after one.
_DRIVER_ERRORS = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """The store's `?` placeholders as PostgreSQL's `$1, $2, …` (quoted text is left alone)."""
    out, number, quoted = [], 0, False
    for char in sql:
        if char == "'":
            quoted = not quoted
        elif char == "?" and not quoted:
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


def _count(status: str) -> int:
    """Rows changed, from a command tag such as 'INSERT 0 1' or 'UPDATE 3'."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


class PostgresTx:
    """A write transaction's statements on one pooled connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _count(await self._conn.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            await self._conn.executemany(numbered(sql), rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self._conn.fetchrow(numbered(sql), *params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.fetch(numbered(sql), *params))


class PostgresDatabase(Database):
    """A connection pool; each write is a serializable transaction, retried on conflict.

    Serializable isolation gives every write transaction the meaning it has on SQLite, where writers
    take turns: a transaction that read what another changed meanwhile is rolled back and run again.
    The hot transactions that need only unique keys and row locks run at read committed.
    """

    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10, lock_timeout_ms: int = 5000) -> None:
        try:
            urlsplit(url).port  # noqa: B018 - a port that is not a number raises here
        except ValueError:
            raise StoreError(
                "a PostgreSQL URL must look like postgresql://USER:PASSWORD@HOST:PORT/DATABASE "
                "(the port is a number)"
            ) from None
        self._url = url
        self._pool_size = pool_size
        self._lock_timeout_ms = lock_timeout_ms
        self._pool: asyncpg.Pool | None = None

    def describe(self) -> str:
        parts = urlsplit(self._url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return f"postgresql://{user}{host}{port}{parts.path}"

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=self._pool_size,
                server_settings={
                    "application_name": "parley",
                    "lock_timeout": str(self._lock_timeout_ms),
                },
            )
        except (*_DRIVER_ERRORS, ValueError) as exc:
            raise self._explain(exc) from None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool."""
        if self._pool is None:
            raise StoreError("the database is not open")
        return self._pool

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        try:
            return await self.pool.fetchrow(numbered(sql), *params)
        except _DRIVER_ERRORS as exc:
            raise self._explain(exc) from None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        try:
            return list(await self.pool.fetch(numbered(sql), *params))
        except _DRIVER_ERRORS as exc:
            raise self._explain(exc) from None

    async def iterate(self, sql: str, params: Iterable[Any] = ()) -> AsyncIterator[Row]:
        # Growing pages rather than a server-side cursor: no connection stays checked out while
        # the caller decides whether it wants more.
        values, offset, size = tuple(params), 0, 16
        while True:
            page = await self.fetchall(f"{sql} LIMIT ? OFFSET ?", (*values, size, offset))
            for row in page:
                yield row
            if len(page) < size:
                return
            offset, size = offset + size, min(size * 4, 1024)

    async def write(self, work: Work[T], *, serializable: bool = True, urgent: bool = False) -> T:
        isolation = "serializable" if serializable else "read_committed"
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                async with self.pool.acquire() as conn, conn.transaction(isolation=isolation):
                    return await work(PostgresTx(conn))
            except _RETRYABLE:
                if attempt == WRITE_ATTEMPTS:
                    raise StoreError(
                        f"a write to {self.describe()} kept conflicting with concurrent writes "
                        f"({WRITE_ATTEMPTS} attempts); retry, or reduce concurrent load"
                    ) from None
                await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))
            except _DRIVER_ERRORS as exc:
                raise self._explain(exc) from None
        raise AssertionError("unreachable")

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if row is None or not row[0]:
            return 0
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(row[0]) if row else 0

    async def _create_migrations_table(self) -> None:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
                )
        except _DRIVER_ERRORS as exc:
            raise self._explain(exc) from None

    async def _apply_migration(self, version: int, name: str, sql: str) -> bool:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                # One migrator at a time; a process that waited finds the version applied.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                if await conn.fetchval(
                    "SELECT 1 FROM schema_migrations WHERE version = $1", version
                ):
                    return False
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)", version, name, time.time()
                )
                return True
        except _DRIVER_ERRORS as exc:
            raise self._explain(exc) from None

    def _explain(self, exc: BaseException) -> StoreError:
        """Turn driver errors into actionable ones (without the URL's password)."""
        where = self.describe()
        text = str(exc).strip() or type(exc).__name__
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            return StoreError(f"a write broke a constraint of the database at {where}: {text}")
        if isinstance(exc, asyncpg.LockNotAvailableError):
            return StoreError(
                f"a row of the database at {where} stayed locked past the lock timeout "
                f"({self._lock_timeout_ms} ms, DATABASE_BUSY_TIMEOUT_MS); find the session "
                "holding it (pg_stat_activity) and retry."
            )
        if isinstance(exc, asyncpg.DiskFullError):
            return StoreError(
                f"the database at {where} cannot be written: {text}. Free disk space."
            )
        if isinstance(exc, asyncpg.InvalidCatalogNameError):
            return StoreError(
                f"the database at {where} does not exist ({text}); create it (createdb) or fix "
                "DATABASE_URL."
            )
        if isinstance(
            exc, (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
        ):
            return StoreError(
                f"PostgreSQL at {where} refused the login ({type(exc).__name__}); check the user "
                "and password in DATABASE_URL."
            )
        lost = (
            asyncpg.PostgresConnectionError,
            asyncpg.OperatorInterventionError,
            asyncpg.InternalClientError,
        )
        if isinstance(exc, lost):
            return StoreError(
                f"lost the connection to PostgreSQL at {where} ({text}): the server restarted or "
                "ended the session. The next request reconnects; if this repeats, check the server."
            )
        if isinstance(exc, (OSError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)):
            return StoreError(
                f"cannot reach PostgreSQL at {where}: {text}. Is the server running, and is "
                "that the right host and port?"
            )
        if isinstance(exc, asyncpg.TooManyConnectionsError):
            return StoreError(
                f"PostgreSQL at {where} has no connection slots left: lower DATABASE_POOL_SIZE "
                "or raise the server's max_connections."
            )
        return StoreError(f"database error at {where}: {text}")
