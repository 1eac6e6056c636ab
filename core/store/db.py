"""What every database backend offers the store: reads, write transactions and migrations.

Store code is written once against `Database` and `Tx` with `?` placeholders and the SQL that SQLite
and PostgreSQL share (ON CONFLICT, RETURNING, partial indexes). Each backend keeps its own
migration scripts (`migrations/<dialect>/NNN_name.sql`) with the same numbers and names.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from importlib import resources
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

DIALECTS = ("sqlite", "postgresql")


class StoreError(Exception):
    """The database cannot be used; the message says why and what to do."""


class QueueFull(StoreError):
    """The turn queue holds `TURN_QUEUE_LIMIT` turns: the event is refused, to be delivered again."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer version of the server."""


class Row(Protocol):
    """A result row: by column position or name (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: int | str) -> Any: ...

    def __iter__(self) -> Any: ...

    def __len__(self) -> int: ...

    def keys(self) -> Iterable[str]:
        """The column names, in order."""
        ...


class Tx(Protocol):
    """The statements of one write transaction.

    On SQLite these never suspend, so a whole transaction runs on the writer's thread in one go.
    """

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""
        ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a query (or of an INSERT ... RETURNING)."""
        ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""
        ...


# A coroutine, not any awaitable: SQLite runs it to completion synchronously on its writer thread.
Work = Callable[[Tx], Coroutine[Any, Any, T]]


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every bundled migration of one dialect, in order."""
    folder = resources.files("core.store") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append((int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found)


LATEST_VERSION = max(version for version, _, _ in migrations("sqlite"))


class Database(abc.ABC):
    """A database the store can use. Open it (or `async with` it), migrate, then read and write."""

    dialect: str

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect; raises `StoreError` with the reason and the fix."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect (idempotent)."""

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the data lives, for logs and /healthz (never a password)."""

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        """One row of a read (committed data only)."""

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """All rows of a read."""

    @abc.abstractmethod
    def iterate(self, sql: str, params: Iterable[Any] = ()) -> AsyncIterator[Row]:
        """The rows of a read, fetched a few at a time: stop early and the rest is never read."""

    @abc.abstractmethod
    async def write(self, work: Work[T], *, serializable: bool = True, urgent: bool = False) -> T:
        """Run `work` as one transaction that commits when it returns and rolls back if it raises.

        `urgent` writes (storing an incoming event, which its acknowledgement waits for) go
        before the others waiting for SQLite's one writer; PostgreSQL runs writes side by side.

        By default write transactions behave as if they ran one at a time (as on SQLite), so `work`
        may read, decide and write without races; it may be run again when the database asks to
        retry. `serializable=False` is for transactions whose correctness rests on unique keys and
        row locks alone, each statement seeing the newest committed rows: on PostgreSQL they skip
        the serializable checks, which under load also fail transactions that merely touched the
        same index pages. SQLite always runs writers one at a time.
        """

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one write statement in its own transaction; the number of rows changed.

        A single statement is atomic on its own (its row locks and re-checks of the newest row
        versions), so it needs no serializable transaction.
        """
        values = tuple(params)
        return await self.write(lambda tx: tx.execute(sql, values), serializable=False)

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            await self.fetchone("SELECT 1")
        except (StoreError, OSError, ValueError):
            return False
        return True

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The newest migration applied (0 for a new database)."""

    async def migrate(self) -> list[int]:
        """Apply every bundled migration not yet applied; returns the versions applied.

        Safe when several processes start at once: each migration is applied exactly once.
        A migration whose number is below the newest applied one is applied too, if missing.
        """
        await self._create_migrations_table()
        current = await self.schema_version()
        if current > LATEST_VERSION:
            raise SchemaTooNew(
                f"the database at {self.describe()} has schema version {current}, newer than "
                f"this server's {LATEST_VERSION}. Upgrade the server, or point DATABASE_URL "
                "elsewhere."
            )
        # Every bundled migration not recorded yet, also one numbered below the newest applied
        # (numbers are reserved per feature, so one may land after a higher one did).
        recorded = {
            int(row[0]) for row in await self.fetchall("SELECT version FROM schema_migrations")
        }
        applied = []
        for version, name, sql in migrations(self.dialect):
            if version in recorded:
                continue
            try:
                done = await self._apply_migration(version, name, sql)
            except StoreError as exc:
                raise StoreError(f"migration {version} ({name}) failed: {exc}") from None
            if done:
                applied.append(version)
        return applied

    async def applied_versions(self) -> set[int]:
        """Every migration version recorded as applied."""
        rows = await self.fetchall("SELECT version FROM schema_migrations")
        return {int(row[0]) for row in rows}

    @abc.abstractmethod
    async def _create_migrations_table(self) -> None:
        """Create `schema_migrations` if missing (concurrency-safe)."""

    @abc.abstractmethod
    async def _apply_migration(self, version: int, name: str, sql: str) -> bool:
        """Apply one migration and record it, unless another process just did; True if applied."""
