"""Slack complete turns/s on PostgreSQL with 1, 2 and 4 `web` processes, and whether every event
was answered exactly once with no server error; each run on a fresh database of one throw-away
PostgreSQL server (tests/postgres.py). Run alone: `python -m bench --only postgres`."""

from __future__ import annotations

import asyncio
import sys

from bench.common import summarize
from bench.slack_bench import Result, run_once
from tests.postgres import PostgresServer, find_pg_bin

# WEB_CONCURRENCY -> events per run (the SQLite rows send 2,000 to one process, 3,000 to two).
PROCESSES = {1: 2000, 2: 3000, 4: 3000}


async def run(repeats: int, *, sqlite_baseline: bool = True) -> list[tuple[str, str, str]]:
    """Rows for the table; with `sqlite_baseline`, the 1-process SQLite figure measured alongside."""
    rows: list[tuple[str, str, str]] = []
    if sqlite_baseline:
        runs = [await run_once(0.0, PROCESSES[1], None, 64, 1) for _ in range(repeats)]
        rows += _rows("SQLite", 1, runs)
    if find_pg_bin() is None:
        skipped = "skipped: PostgreSQL is not installed"
        return [*rows, ("Slack complete turns/s on PostgreSQL (0 s model)", skipped, "")]
    with PostgresServer() as server:
        for processes, total in PROCESSES.items():
            runs = []
            for _ in range(repeats):
                url = await asyncio.to_thread(server.create_database)
                try:
                    runs.append(await run_once(0.0, total, None, 64, processes, url))
                finally:
                    await asyncio.to_thread(server.drop_database, url)
            rows += _rows("PostgreSQL", processes, runs)
    return rows


def _rows(database: str, processes: int, runs: list[Result]) -> list[tuple[str, str, str]]:
    """Turns/s, then the outcome over `runs`; the first error logged goes to stderr."""
    where = f"{processes} web process" + ("es" if processes > 1 else "")
    clean = sum(r.exactly_once for r in runs)
    outcome = (
        f"{clean}/{len(runs)} runs; missing {sum(r.missing for r in runs)}, "
        f"dup {sum(r.duplicates for r in runs)}, errors {sum(r.errors for r in runs)}"
    )
    if failed := sum(r.failed_acks for r in runs):
        outcome += f", non-200 acks {failed}"
    if notices := sum(r.notices for r in runs):
        outcome += f", notices {notices}"
    for r in runs:
        if r.first_error:
            print(
                f"{database}, {where}: {r.errors} errors logged, first: {r.first_error}",
                file=sys.stderr,
            )
    turns = summarize([r.turns_per_s for r in runs])
    return [
        (f"Slack complete turns/s on {database} (0 s model, {where})", turns, ""),
        (f"  every event answered exactly once, no error ({where})", outcome, "all runs"),
    ]
