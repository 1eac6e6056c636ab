"""The stdio transport for local MCP servers: the SDK's message types over a child's pipes.

The SDK's own `stdio_client` joins and re-splits its whole buffer for every chunk it reads, so
one 20 MB line costs tens of seconds of event-loop time; it also has no size limit. This reader
is linear and caps a message at `max_message_bytes`: an oversized response is answered, in the
SDK's own types, with a JSON-RPC error for its request id ("the result is N MB, over the cap"),
so the call fails clearly instead of starving every other turn. The messages themselves are
parsed and written by the SDK (`jsonrpc_message_adapter`, `SessionMessage`); the session above
is the SDK's `ClientSession`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import mcp.types as types
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage

from core.connectors.config import ServerConfig

log = structlog.get_logger(__name__)

READ_CHUNK = 256 * 1024
STOP_GRACE_SECONDS = 2.0
_ID = re.compile(rb'"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)')

ReadStream = MemoryObjectReceiveStream[SessionMessage | Exception]
WriteStream = MemoryObjectSendStream[SessionMessage]


def too_large(head: bytes, size: int, cap: int) -> SessionMessage | Exception:
    """The error that stands in for an oversized message (its id read from the first bytes)."""
    text = f"the result is {size / 1_048_576:.1f} MB, over the {cap / 1_048_576:g} MB cap"
    found = _ID.search(head[:4096])
    if found is None:
        return ValueError(f"the server sent a message of {size / 1_048_576:.1f} MB; dropped")
    raw = found.group(1).decode()
    request_id: Any = raw.strip('"') if raw.startswith('"') else int(raw)
    error = types.JSONRPCError(
        jsonrpc="2.0", id=request_id, error=types.ErrorData(code=-32001, message=text)
    )
    return SessionMessage(error)


def parse(line: bytes) -> SessionMessage | Exception:
    """One line of the server's stdout as a message (or the parse error, for the session)."""
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        return exc


@asynccontextmanager
async def stdio_transport(
    config: ServerConfig, *, max_message_bytes: int, on_eof: Callable[[], None] | None = None
) -> AsyncIterator[tuple[ReadStream, WriteStream]]:
    """Start the server's program and yield the SDK's stream pair over its pipes; on exit, stop
    it (stdin closed, then SIGTERM and SIGKILL to its process group)."""
    process = await anyio.open_process(
        [config.command, *config.args],
        env=get_default_environment() | dict(config.env),
        cwd=config.cwd,
        stderr=subprocess.DEVNULL if not log_stderr() else None,
        start_new_session=True,
    )
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](16)

    async def reader() -> None:
        assert process.stdout is not None
        pending = bytearray()
        skipping = 0  # bytes of an oversized line being discarded
        head = b""
        try:
            async with read_writer:
                async for chunk in process.stdout:
                    start = 0
                    while True:
                        newline = chunk.find(b"\n", start)
                        piece = chunk[start:] if newline < 0 else chunk[start:newline]
                        if skipping:
                            skipping += len(piece)
                        elif len(pending) + len(piece) > max_message_bytes:
                            head = bytes(pending[:4096]) if pending else piece[:4096]
                            skipping = len(pending) + len(piece)
                            pending.clear()
                        else:
                            pending += piece
                        if newline < 0:
                            break
                        if skipping:
                            await read_writer.send(too_large(head, skipping, max_message_bytes))
                            skipping = 0
                        elif pending.strip():
                            await read_writer.send(parse(bytes(pending)))
                        pending.clear()
                        start = newline + 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass
        if on_eof is not None:
            on_eof()  # the server's stdout closed: it exited or crashed

    async def writer() -> None:
        assert process.stdin is not None
        try:
            async with write_reader:
                async for message in write_reader:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send((data + "\n").encode())
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await read_writer.aclose()

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        group.start_soon(writer)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)
            group.cancel_scope.cancel()


async def _stop(process: anyio.abc.Process) -> None:
    """Close stdin, give the server a moment, then end its whole process group."""
    if process.stdin is not None:
        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdin.aclose()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
        with anyio.move_on_after(STOP_GRACE_SECONDS):
            await process.wait()
        if process.returncode is not None:
            break
    if process.stdout is not None:
        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdout.aclose()


def log_stderr() -> bool:
    """Servers' stderr goes to ours with LOG_LEVEL=debug (otherwise it is discarded)."""
    return os.environ.get("LOG_LEVEL", "").lower() == "debug" or sys.flags.dev_mode
