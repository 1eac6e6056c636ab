"""Helpers shared by the benchmarks: timing statistics and a throw-away engine."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.peers import RemoteSimulator, simulator
from bots.services import Services, build_services
from bots.settings import load_app_settings
from core.events import OutboundFile


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`."""
    ordered = sorted(values)
    index = min(round(q / 100 * (len(ordered) - 1)), len(ordered) - 1)
    return ordered[index]


def summarize(runs: list[float]) -> str:
    """Median with min and max over repeated runs."""
    return f"{statistics.median(runs):.3g} (min {min(runs):.3g}, max {max(runs):.3g})"


class TimedReply:
    """A reply that records when the engine touched it."""

    def __init__(self) -> None:
        self.last_append = 0.0
        self.finished = 0.0
        self.text = ""

    async def begin(self) -> None:
        pass

    async def append(self, delta: str) -> None:
        self.last_append = time.monotonic()

    async def finish(self, text: str) -> None:
        self.finished = time.monotonic()
        self.text = text

    async def notice(self, text: str) -> None:
        pass

    async def upload(self, file: OutboundFile) -> None:
        pass


@asynccontextmanager
async def engine(
    latency: float = 0.0, *, record: bool = False, **overrides: object
) -> AsyncIterator[tuple[Services, RemoteSimulator]]:
    """An engine on a temporary database, talking to a simulator in another process."""
    async with simulator(latency, record=record) as sim:
        with tempfile.TemporaryDirectory() as folder:
            values: dict[str, object] = {
                "openai_api_key": "sk-bench",
                "openai_base_url": sim.base_url,
                "openai_wire_api": "chat",
                "database_url": f"sqlite:///{Path(folder) / 'bench.db'}",
                "log_level": "warning",
                "_env_file": None,
            }
            values.update(overrides)
            services = await build_services(load_app_settings(**values))
            try:
                yield services, sim
            finally:
                await services.close()
