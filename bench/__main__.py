"""`python -m bench`: run every benchmark (or those named with --only) and print one table."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable

import structlog

from bench import (
    admin_bench,
    capacity_bench,
    controls_bench,
    discord_bench,
    engine_bench,
    mcp_bench,
    memory_bench,
    postgres_bench,
    schedules_bench,
    sdk_bench,
    slack_bench,
    tokens_bench,
)

Rows = list[tuple[str, str, str]]


async def _tokens(repeats: int) -> Rows:
    return tokens_bench.run(repeats)


async def _slack(repeats: int) -> Rows:
    return await slack_bench.run(repeats) + await slack_bench.overload(repeats)


BENCHES: dict[str, Callable[[int], Awaitable[Rows]]] = {
    "engine": engine_bench.run,
    "memory": memory_bench.run,
    "tokens": _tokens,
    "slack": _slack,
    "overload": slack_bench.overload,
    "discord": discord_bench.run,
    "capacity": capacity_bench.run,
    "postgres": postgres_bench.run,
    "controls": controls_bench.run,
    "mcp": mcp_bench.run,
    "admin": admin_bench.run,
    "schedules": schedules_bench.run,
    "sdk": sdk_bench.run,
}


async def main(repeats: int, only: list[str] | None = None) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.disable(logging.WARNING)
    names = only or list(BENCHES)
    rows: Rows = []
    for name in names:
        if name == "postgres":  # its SQLite comparison row, unless the Slack rows have it
            rows += await postgres_bench.run(repeats, sqlite_baseline="slack" not in names)
        else:
            rows += await BENCHES[name](repeats)
    width = max(len(r[0]) for r in rows)
    print(
        f"{'measure'.ljust(width)}  {'median (min, max) over ' + str(repeats) + ' runs':44}  target"
    )
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:44}  {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHES),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHES)}",
    )
    args = parser.parse_args()
    asyncio.run(main(args.repeats, args.only))
