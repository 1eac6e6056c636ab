"""One MCP server kept connected: the SDK's `ClientSession` over stdio or Streamable HTTP.

A background task opens the transport, initializes the session, lists the tools and then waits:
for `notifications/tools/list_changed` (the list is fetched again), for a broken connection, or
for the end. A server that crashes, hangs (a call times out and a ping then gets no answer) or
cannot start is reconnected with exponential back-off; its state and last error are what
`/healthz` and the start-up log show. Calls made while it is down fail at once with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx2
import mcp.types as types
import structlog
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from core.connectors.config import ServerConfig
from core.connectors.stdio import stdio_transport

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
PING_TIMEOUT = 5.0
START_TIMEOUT = 30.0  # seconds to start, initialize and list (at least the call timeout)
HEALTH_INTERVAL = 15.0  # seconds between pings of an idle server
MAX_LIST_PAGES = 50


class State(StrEnum):
    """Where a server's connection stands."""

    STARTING = "starting"
    UP = "up"
    DOWN = "down"
    STOPPED = "stopped"


class Unavailable(Exception):
    """The server is not connected (down, restarting, or stopped); the message says which."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnection delays: `initial` seconds, doubling up to `maximum`."""

    initial: float = 0.5
    maximum: float = 30.0


DEFAULT_BACKOFF = Backoff()


class Connection:
    """Keeps one MCP server connected and answers its tool calls."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        on_tools: Callable[[Connection], None] | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.config = config
        self.state = State.STARTING
        self.error = ""
        self.tools: list[types.Tool] = []
        self.restarts = 0
        self.since = time.time()
        self._on_tools = on_tools
        self._backoff = backoff
        self._max_bytes = max_message_bytes
        self._session: ClientSession | None = None
        self._wake = asyncio.Event()
        self._broken = False
        self._refresh = False
        self._first = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()

    @property
    def name(self) -> str:
        return self.config.name

    def start(self) -> None:
        """Start connecting in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mcp:{self.name}")

    async def wait_started(self, timeout: float) -> None:
        """Wait until the first connection attempt has succeeded or failed (or `timeout`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._first.wait()

    async def wait_until(self, predicate: Callable[[Connection], bool], timeout: float) -> None:
        """Wait until `predicate(self)` holds, rechecked at every change of state or tools."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def close(self) -> None:
        """Disconnect for good (the server process is stopped)."""
        self.state = State.STOPPED
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def health(self) -> dict[str, Any]:
        """What `/healthz` says about this server."""
        body: dict[str, Any] = {
            "state": self.state.value,
            "transport": self.config.transport,
            "tools": len(self.tools),
            "restarts": self.restarts,
        }
        if self.error:
            body["error"] = self.error
        return body

    async def call(
        self, tool: str, arguments: dict[str, Any], timeout: float
    ) -> types.CallToolResult:
        """Call a tool; `Unavailable` while disconnected, `TimeoutError` past `timeout`,
        `MCPError` for an error the server (or the transport) reported."""
        session = self._session
        if session is None or self.state is not State.UP:
            detail = f": {self.error}" if self.error else ""
            raise Unavailable(f"MCP server {self.name} is {self.state.value}{detail}")
        try:
            async with asyncio.timeout(timeout):
                result = await session.call_tool(tool, arguments)
        except TimeoutError:
            self._spawn(self._check_alive(session))  # a hung server is restarted
            raise
        except MCPError as exc:
            if _connection_lost(exc):
                self._mark_broken(f"connection lost during {tool} ({exc})")
            raise
        if not isinstance(result, types.CallToolResult):
            raise MCPError(types.ErrorData(code=-32603, message="the server sent no tool result"))
        return result

    # -- the connection's life ------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._backoff.initial
        while True:
            started = time.monotonic()
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # anyio groups, transport errors, bad lists
                self.error = _describe(exc)
            self._session = None
            if self.state is State.STOPPED:
                return
            self.state = State.DOWN
            self._first.set()
            await self._notify()
            log.warning(
                "mcp_server_down", server=self.name, error=self.error, retry_in_s=round(delay, 2)
            )
            if time.monotonic() - started > 60:
                delay = self._backoff.initial  # it had been up for a while: start over
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff.maximum)
            self.restarts += 1

    async def _connect_once(self) -> None:
        async with (
            self._transport() as (read, write),
            ClientSession(read, write, message_handler=self._on_message) as session,
        ):
            async with asyncio.timeout(max(self.config.timeout, START_TIMEOUT)):
                await session.initialize()
                self.tools = await self._list(session)
            self._session, self._broken, self._refresh = session, False, False
            self.state, self.error, self.since = State.UP, "", time.time()
            self._first.set()
            log.info("mcp_server_up", server=self.name, tools=len(self.tools))
            self._tools_changed()
            await self._notify()
            while True:
                try:
                    async with asyncio.timeout(HEALTH_INTERVAL):
                        await self._wake.wait()
                except TimeoutError:
                    await self._check_alive(session)
                    continue
                self._wake.clear()
                if self._broken:
                    raise ConnectionError(self.error or "connection lost")
                if self._refresh:
                    self._refresh = False
                    async with asyncio.timeout(self.config.timeout):
                        self.tools = await self._list(session)
                    log.info("mcp_tools_changed", server=self.name, tools=len(self.tools))
                    self._tools_changed()
                    await self._notify()

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        if self.config.transport == "stdio":
            async with stdio_transport(
                self.config,
                max_message_bytes=self._max_bytes,
                on_eof=lambda: self._mark_broken("the server process exited"),
            ) as pair:
                yield pair
            return
        timeout = httpx2.Timeout(self.config.timeout, read=max(self.config.timeout, 300.0))
        async with (
            httpx2.AsyncClient(headers=dict(self.config.headers), timeout=timeout) as http,
            streamable_http_client(
                self.config.url, http_client=http, max_sse_event_size=self._max_bytes
            ) as streams,
        ):
            yield streams[0], streams[1]

    async def _list(self, session: ClientSession) -> list[types.Tool]:
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            try:
                page = await session.list_tools(params=params)
            except MCPError:
                raise
            except Exception as exc:  # the SDK could not read the list
                raise ValueError(
                    f"the server's tool list is malformed ({_first_line(exc)})"
                ) from exc
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._refresh = True
            self._wake.set()
        elif isinstance(message, Exception):
            log.warning("mcp_transport_error", server=self.name, error=_describe(message))

    async def _check_alive(self, session: ClientSession) -> None:
        try:
            async with asyncio.timeout(min(PING_TIMEOUT, self.config.timeout)):
                await session.send_ping()
        except Exception:
            if session is self._session:
                self._mark_broken("the server stopped answering (a call timed out, then a ping)")

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    def _mark_broken(self, reason: str) -> None:
        self.error = reason
        self._broken = True
        self._wake.set()

    def _tools_changed(self) -> None:
        if self._on_tools is not None:
            self._on_tools(self)


def _connection_lost(exc: MCPError) -> bool:
    return exc.error.code == types.CONNECTION_CLOSED or "Connection closed" in str(exc)


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _describe(exc: BaseException) -> str:
    """One line for an exception, looking inside exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return f"cannot start the program ({exc.strerror}: {exc.filename})"
    if isinstance(exc, TimeoutError):
        return "the server did not answer in time"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url}"
    if isinstance(exc, httpx2.HTTPError):
        return f"{type(exc).__name__}: {_first_line(exc) or 'cannot connect'}"
    text = _first_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
