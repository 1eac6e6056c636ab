"""MCP servers for the connector tests: the fake server as a stdio program and on loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def stdio_server(name: str = "fake", **extra: Any) -> dict[str, Any]:
    """The config entry that runs tests/fakes/mcp_server.py over stdio."""
    return {
        "command": sys.executable,
        "args": ["-m", "tests.fakes.mcp_server", "--name", name],
        "cwd": str(ROOT),
        **extra,
    }


class HttpServer:
    """The fake MCP server in its own process, on Streamable HTTP at 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self, name: str = "web") -> str:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.mcp_server",
            "--http",
            "--name",
            name,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/mcp"
        return self.url

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    server = HttpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def mcp_config(tmp_path: Path) -> Callable[..., str]:
    """Write an MCP config file from server entries; returns its path."""

    def write(**servers: dict[str, Any]) -> str:
        path = tmp_path / "mcp.json"
        path.write_text(json.dumps({"mcpServers": servers}))
        return str(path)

    return write
