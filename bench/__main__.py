"""`python -m bench`: run every benchmark and print one table."""

from __future__ import annotations

import argparse
import asyncio
import logging

import structlog

from bench import (
    capacity_bench,
    discord_bench,
    engine_bench,
    memory_bench,
    slack_bench,
    tokens_bench,
)


async def main(repeats: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.disable(logging.WARNING)
    rows: list[tuple[str, str, str]] = []
    rows += await engine_bench.run(repeats)
    rows += await memory_bench.run(repeats)
    rows += tokens_bench.run(repeats)
    rows += await slack_bench.run(repeats)
    rows += await discord_bench.run(repeats)
    rows += await capacity_bench.run(repeats)
    width = max(len(r[0]) for r in rows)
    print(
        f"{'measure'.ljust(width)}  {'median (min, max) over ' + str(repeats) + ' runs':44}  target"
    )
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:44}  {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--repeats", type=int, default=5)
    asyncio.run(main(parser.parse_args().repeats))
