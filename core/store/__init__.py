"""Persistent state in SQLite (embedded) or PostgreSQL (shared by several processes)."""

from core.store.connect import connect
from core.store.db import Database, QueueFull, SchemaTooNew, StoreError
from core.store.records import Accepted, Conversation, Step, StoredMessage
from core.store.store import Store
from core.store.usage import UsageRow, UsageTotals

__all__ = [
    "Accepted",
    "Conversation",
    "Database",
    "QueueFull",
    "SchemaTooNew",
    "Step",
    "Store",
    "StoreError",
    "StoredMessage",
    "UsageRow",
    "UsageTotals",
    "connect",
]
