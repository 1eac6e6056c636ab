"""Choosing a database backend from a `DATABASE_URL`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from core.store.db import Database, StoreError
from core.store.postgres import PostgresDatabase
from core.store.sqlite import SqliteDatabase


def connect(location: str | Path, *, busy_timeout_ms: int = 5000, pool_size: int = 10) -> Database:
    """An unopened database for a `DATABASE_URL` (sqlite:///… or postgresql://…) or a file path."""
    if isinstance(location, Path):
        return SqliteDatabase(location, busy_timeout_ms=busy_timeout_ms)
    scheme = urlsplit(location).scheme
    if scheme == "sqlite":
        return SqliteDatabase(
            Path(location.removeprefix("sqlite:///")), busy_timeout_ms=busy_timeout_ms
        )
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase(location, pool_size=pool_size, lock_timeout_ms=busy_timeout_ms)
    raise StoreError(
        "a database URL must start with sqlite:/// (a file) or postgresql:// (a server)"
    )
