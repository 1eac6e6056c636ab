"""Extra `web` processes sharing one port (WEB_CONCURRENCY), supervised by the first.

Each process has its own event loop and database connections; the kernel spreads incoming
connections over them (SO_REUSEPORT), and the shared database keeps de-duplication and ordering
correct across them. A worker that dies is restarted; when the first process ends, however it ends,
the workers end too.

The first process asks its workers to stop with signals of their own: `DRAIN` (a graceful stop)
and `NOW`. A platform that signals every process of the dyno or container (SIGTERM to the
group) and the first process's forwarding then add up to one graceful stop in a worker, never to
the "second signal" that stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

import structlog

log = structlog.get_logger(__name__)

RESTART_DELAY = 1.0
PR_SET_PDEATHSIG = 1
DRAIN = signal.SIGUSR1  # from the first process: stop gracefully (repeats change nothing)
NOW = signal.SIGUSR2  # from the first process: stop at once


def die_with_parent() -> None:
    """In a worker: end when the first process ends, even by `kill -9` (Linux; elsewhere the
    supervisor's process group does it)."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


class WebWorkers:
    """`count` child processes running `python -m bots web --reuse-port` on `port`."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._tasks: list[asyncio.Task[None]] = []
        self._processes: set[asyncio.subprocess.Process] = set()
        self._stopping = False

    def start(self, port: int) -> None:
        """Start the workers (once the first process has bound `port`)."""
        env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1"}
        for index in range(self._count):
            self._tasks.append(asyncio.create_task(self._keep_running(index + 1, env)))

    async def _keep_running(self, index: int, env: dict[str, str]) -> None:
        while not self._stopping:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bots", "web", "--reuse-port", env=env
            )
            self._processes.add(process)
            log.info("web_worker_started", worker=index, pid=process.pid)
            code = await process.wait()
            self._processes.discard(process)
            if self._stopping:
                return
            log.error("web_worker_exited", worker=index, code=code, restart_in_s=RESTART_DELAY)
            await asyncio.sleep(RESTART_DELAY)

    async def stop(self, *, now: bool = False) -> None:
        """Stop every worker (gracefully, or `now`) and wait for them."""
        self._stopping = True
        for process in list(self._processes):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(NOW if now else DRAIN)
        await asyncio.gather(*self._tasks, return_exceptions=True)
