"""`python -m simulator`: run the simulator standalone (for tests in other processes)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from simulator.batches import BATCH_MODES
from simulator.server import Simulator


async def _serve(
    host: str,
    port: int,
    latency: float,
    chunk_size: int,
    record: bool,
    default_tools: bool = True,
    batch_mode: str = "complete",
) -> None:
    simulator = Simulator(
        latency=latency, chunk_size=chunk_size, default_tools=default_tools, batch_mode=batch_mode
    )
    simulator.record = record
    await simulator.start(host, port)
    print(f"simulator listening on {simulator.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await simulator.stop()


def main() -> None:
    """Parse arguments and serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--chunk-size", type=int, default=8, help="characters per streamed delta")
    parser.add_argument(
        "--no-record", action="store_true", help="do not keep requests (long benchmark runs)"
    )
    parser.add_argument(
        "--no-default-tools",
        action="store_true",
        help="unscripted replies only echo (never call an offered calculate / now tool)",
    )
    parser.add_argument(
        "--batch-mode",
        choices=BATCH_MODES,
        default="complete",
        help="what new batches do: complete at once, hold in_progress, fail or expire",
    )
    args = parser.parse_args()
    asyncio.run(
        _serve(
            args.host,
            args.port,
            args.latency,
            args.chunk_size,
            not args.no_record,
            not args.no_default_tools,
            args.batch_mode,
        )
    )


if __name__ == "__main__":
    main()
