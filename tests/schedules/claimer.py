"""A second OS process that claims due schedule runs from a database, for
`test_claims.py`: prints `ready`, waits for a line on stdin, claims until nothing is left (a few
runs per transaction), and prints the ids of the schedules it claimed as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from core.schedules.runner import next_after
from core.store import Store, connect


async def main(location: str) -> None:
    store = Store(connect(location), "second-process")
    await store.db.open()
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        claimed: list[int] = []
        idle = 0
        while idle < 3:
            runs = await store.schedules.claim_due(
                ["console"], now=time.time(), next_after=next_after, limit=3
            )
            claimed += [run.schedule.id for run in runs]
            idle = 0 if runs else idle + 1
        print(json.dumps(claimed), flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
