"""A real MCP server for the tests, written with the SDK's MCPServer (FastMCP before mcp 2).

Run as a program it serves stdio (`python -m tests.fakes.mcp_server`) or, with `--http`, Streamable
HTTP on 127.0.0.1 at a free port that it prints as `PORT <n>` on stdout. Its tools cover the
cases the connectors must handle: plain calls, optional arguments, images and resources, a huge
result, a call that never answers, a crash mid-call, a schema strict mode cannot express, and a
tool list that changes (`grow` adds `extra` and sends `notifications/tools/list_changed`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools.base import Tool as ServerTool
from mcp.types import EmbeddedResource, ImageContent, TextContent, TextResourceContents
from pydantic import Field

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def build(name: str = "fake") -> MCPServer:
    """The server and its tools."""
    server = MCPServer(name)

    @server.tool()
    def add(a: int, b: int = 2) -> int:
        """Add two integers (b defaults to 2)."""
        return a + b

    @server.tool()
    def echo(text: str, shout: bool = False) -> str:
        """Echo the text back."""
        return text.upper() if shout else text

    @server.tool()
    def whoami() -> str:
        """The server's name and process id."""
        return f"{name} pid {os.getpid()}"

    @server.tool()
    def picture() -> list[TextContent | ImageContent | EmbeddedResource]:
        """A caption, a 1x1 PNG and an embedded text resource."""
        return [
            TextContent(type="text", text="a tiny picture"),
            ImageContent(type="image", data=PNG, mime_type="image/png"),
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(
                    uri="file:///notes.txt", mime_type="text/plain", text="resource text"
                ),
            ),
        ]

    @server.tool()
    def huge(megabytes: int = 20) -> str:
        """A result of the given size in megabytes."""
        return "x" * (megabytes * 1024 * 1024)

    @server.tool()
    async def hang() -> str:
        """Never answers."""
        await asyncio.sleep(3600)
        return "too late"

    @server.tool()
    async def crash() -> str:
        """Exits the server process in the middle of the call."""
        os._exit(3)

    @server.tool()
    def fail() -> str:
        """Always reports an error."""
        raise ValueError("the fake tool failed on purpose")

    @server.tool()
    def code(
        value: Annotated[str, Field(min_length=3, description="at least three characters")],
    ) -> str:
        """Takes a string with a minimum length, which strict mode cannot express."""
        return f"code {value}"

    @server.tool()
    async def grow(ctx: Context) -> str:
        """Adds the tool `extra` and tells the client the list changed."""

        def extra(word: str) -> str:
            """A tool added at run time."""
            return f"extra {word}"

        server.add_tool(extra, name="extra")
        await ctx.session.send_tool_list_changed()
        return "grown"

    return server


def tool_names(server: MCPServer) -> list[str]:
    """The tools the server starts with."""
    manager = server._tool_manager
    return [tool.name for tool in manager.list_tools() if isinstance(tool, ServerTool)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--name", default="fake")
    args = parser.parse_args()
    server = build(args.name)
    if not args.http:
        server.run("stdio")
        return
    import anyio
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning")
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
