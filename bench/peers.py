"""The model simulator in its own process, as a real model server would be."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp


class RemoteSimulator:
    """A handle on `python -m simulator` running in a child process."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def admin(self, action: str, data: Any = None) -> Any:
        """Call one of the simulator's `/_sim/<action>` routes."""
        root = self.base_url.removesuffix("/v1")
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{root}/_sim/{action}", json=data) as response,
        ):
            response.raise_for_status()
            return await response.json()

    async def requests(self) -> list[dict[str, Any]]:
        """What it received (with `at`, its `time.monotonic()` on arrival) since the last reset."""
        return await self.admin("requests")


@asynccontextmanager
async def simulator(
    latency: float = 0.0, chunk_size: int = 64, *, record: bool = False
) -> AsyncIterator[RemoteSimulator]:
    """Start the simulator in a child process; stop it on exit."""
    args = ["--latency", str(latency), "--chunk-size", str(chunk_size)]
    if not record:
        args.append("--no-record")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        if "listening on" not in line:
            raise RuntimeError(f"the simulator did not start: {line!r}")
        yield RemoteSimulator(line.rsplit(" ", 1)[1].strip())
    finally:
        process.terminate()
        await process.wait()
