"""What an MCP tool call costs over a plugin call (stdio and Streamable HTTP, p50/p99), and how
long start-up takes with five MCP servers.

The same `invoke` path the tool loop uses runs each call: a plugin function (`add`) in process,
and the fake MCP server's `add` (tests/fakes/mcp_server.py, written with the SDK's MCPServer) as
a stdio child and on loopback HTTP in its own process. The overhead is the MCP figure minus the
plugin figure at the same percentile.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bench.common import percentile, summarize
from core.connectors import ServerConfig
from core.connectors.manager import Connectors
from core.plugin import ToolContext, tool
from core.tools import ToolRegistry, invoke

ROOT = Path(__file__).resolve().parents[1]
CALLS = 300
CTX = ToolContext("u", "bench", False, "console", "w", "c", "t")


@tool
def add(a: int, b: int = 2) -> int:
    """Add two integers."""
    return a + b


def _stdio(name: str) -> ServerConfig:
    return ServerConfig(
        name,
        command=sys.executable,
        args=("-m", "tests.fakes.mcp_server", "--name", name),
        cwd=str(ROOT),
    )


async def _timed(run: object, calls: int = CALLS) -> list[float]:
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        result = await run(i)  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
        assert result.ok, result.output
    return samples


async def _http_server() -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.mcp_server",
        "--http",
        "--name",
        "web",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    return process, f"http://127.0.0.1:{int(line.split()[1])}/mcp"


async def calls() -> dict[str, list[float]]:
    """Per-call milliseconds for the plugin, the stdio server and the HTTP server."""
    registry = ToolRegistry()
    plugin = registry.add(add, plugin="bench")
    process, url = await _http_server()
    connectors = Connectors([_stdio("fake"), ServerConfig("web", url=url)])
    try:
        await connectors.start()
        tools = {t.name: t for t in connectors.tools()}
        out = {
            "plugin": await _timed(
                lambda i: invoke(plugin, {"a": i, "b": None}, CTX, default_timeout=30)
            )
        }
        for label, name in (("stdio", "fake__add"), ("http", "web__add")):
            chosen = tools[name]
            await _timed(
                lambda i, t=chosen: invoke(t, {"a": i, "b": None}, CTX, default_timeout=30), 20
            )
            out[label] = await _timed(
                lambda i, t=chosen: invoke(t, {"a": i, "b": None}, CTX, default_timeout=30)
            )
        return out
    finally:
        await connectors.close()
        process.kill()
        await process.wait()


async def startup(servers: int = 5) -> float:
    """Seconds from start to every one of `servers` stdio servers listed and ready."""
    connectors = Connectors([_stdio(f"s{i}") for i in range(servers)])
    try:
        return await connectors.start(wait=60)
    finally:
        await connectors.close()


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """The benchmark's rows (median, min, max over the repeats)."""
    rows: dict[str, list[float]] = {}
    for _ in range(repeats):
        samples = await calls()
        for q in (50, 99):
            base = percentile(samples["plugin"], q)
            rows.setdefault(f"plugin tool call p{q} (ms)", []).append(base)
            for label in ("stdio", "http"):
                value = percentile(samples[label], q)
                rows.setdefault(f"MCP {label} tool call p{q} (ms)", []).append(value)
                rows.setdefault(f"MCP {label} overhead over a plugin call p{q} (ms)", []).append(
                    value - base
                )
        rows.setdefault("start-up with 5 stdio MCP servers (s)", []).append(await startup())
    order = [
        "plugin tool call p50 (ms)",
        "plugin tool call p99 (ms)",
        "MCP stdio tool call p50 (ms)",
        "MCP stdio tool call p99 (ms)",
        "MCP http tool call p50 (ms)",
        "MCP http tool call p99 (ms)",
        "MCP stdio overhead over a plugin call p50 (ms)",
        "MCP stdio overhead over a plugin call p99 (ms)",
        "MCP http overhead over a plugin call p50 (ms)",
        "MCP http overhead over a plugin call p99 (ms)",
        "start-up with 5 stdio MCP servers (s)",
    ]
    return [(name, summarize(rows[name]), "") for name in order]
