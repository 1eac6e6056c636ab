"""Running `python -m bots` as a real process for the reliability tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class BotProcess:
    """A `python -m bots <command>` child process whose JSON logs are read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.logs: list[dict[str, object]] = []
        self.raw: list[str] = []
        self._reader = asyncio.create_task(self._read())
        self._changed = asyncio.Condition()

    @classmethod
    async def start(
        cls, command: str, env: dict[str, str], *, cwd: Path | None = None, group: bool = False
    ) -> BotProcess:
        """Start it; with `group`, in a process group of its own (see `signal_group`)."""
        full = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))
        }
        full.update({"PYTHONPATH": str(ROOT), "LOG_FORMAT": "json", **env})
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bots",
            command,
            env=full,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            start_new_session=group,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            text = line.decode(errors="replace").strip()
            async with self._changed:
                self.raw.append(text)
                with contextlib.suppress(ValueError):
                    self.logs.append(json.loads(text))
                self._changed.notify_all()

    async def wait_for_log(self, event: str, timeout: float = 60) -> dict[str, object]:
        """The first log record with this `event` name."""

        def found() -> dict[str, object] | None:
            return next((r for r in self.logs if r.get("event") == event), None)

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: found() is not None or self._reader.done())
        record = found()
        if record is None:
            raise AssertionError(
                f"the process ended without logging {event}:\n" + "\n".join(self.raw)
            )
        return record

    def count(self, event: str) -> int:
        """How many log records with this `event` name so far."""
        return sum(1 for record in self.logs if record.get("event") == event)

    async def wait_for_count(self, event: str, count: int, timeout: float = 60) -> None:
        """Wait until this many records of `event` were logged."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.count(event) >= count)

    async def port(self) -> int:
        """The HTTP port it listens on (started with PORT=0)."""
        return int((await self.wait_for_log("http_listening"))["port"])  # type: ignore[arg-type]

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash or an OOM kill."""
        self.process.kill()

    async def stop(self) -> int:
        """SIGTERM, and wait for the exit code."""
        if self.process.returncode is None:
            self.process.terminate()
        code = await asyncio.wait_for(self.process.wait(), 30)
        await asyncio.gather(self._reader, return_exceptions=True)
        return code

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` (SIGTERM by default) without waiting: a graceful stop's first signal, or the
        second one that stops at once. `stop` would send another SIGTERM; use `wait_exit` after."""
        if self.process.returncode is None:
            self.process.send_signal(sig)

    def signal_group(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` to its whole process group (started with `group`), as a platform that
        stops a dyno or a container does: the process and every child it started get it."""
        if self.process.returncode is None:
            os.killpg(self.process.pid, sig)

    async def wait_exit(self, timeout: float = 30) -> int:
        """Wait for the process to end by itself (after `send_signal`), and for its last logs."""
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.gather(self._reader, return_exceptions=True)
        return code

    def records(self, event: str) -> list[dict[str, object]]:
        """Every log record with this `event` name so far."""
        return [record for record in self.logs if record.get("event") == event]

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 60) -> None:
        """Wait until `condition()` holds; it is checked again at each new log line."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(condition)
