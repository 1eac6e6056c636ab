"""Every store test runs on both backends: a SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import pytest


@pytest.fixture
def location(on_both_backends: str) -> str:
    """The test's database URL (sqlite:///… or postgresql://…)."""
    return on_both_backends
