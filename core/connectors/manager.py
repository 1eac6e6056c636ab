"""All configured MCP servers: started together, their tools in the catalog, their health.

Each server runs locally (the SDK's client session here, its tools offered as function tools) or,
on the Responses wire with OpenAI's own URL, may be passed to OpenAI as a hosted `mcp` tool
(`MCP_MODE`). Local stdio servers always run locally. A hosted server is still listed locally
when it can be reached, so its tools can be switched per channel like any other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import structlog

from core.connectors.config import McpConfigError, Mode, ServerConfig
from core.connectors.connection import DEFAULT_BACKOFF, Backoff, Connection, State
from core.connectors.tools import exposed_name, offered, to_external
from core.tools.external import ExternalTool

log = structlog.get_logger(__name__)

START_WAIT_SECONDS = 10.0


class Connectors:
    """The MCP servers, as one source of tools for the catalog."""

    def __init__(
        self,
        configs: Iterable[ServerConfig],
        *,
        modes: Mapping[str, Mode] | None = None,
        reserved: Collection[str] = (),
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.configs = {config.name: config for config in configs}
        self.modes: dict[str, Mode] = {n: (modes or {}).get(n, "local") for n in self.configs}
        self._reserved = set(reserved)
        self._tools: dict[str, dict[str, ExternalTool]] = {}
        self.clashes: list[str] = []
        self.connections = {
            name: Connection(config, on_tools=self._rebuild, backoff=backoff)
            for name, config in self.configs.items()
        }

    def __bool__(self) -> bool:
        return bool(self.configs)

    async def start(self, wait: float = START_WAIT_SECONDS) -> float:
        """Connect every server at once and wait (up to `wait` s) for each first attempt; log one
        line per server; refuse a tool name that clashes with a plugin. Returns the seconds taken."""
        started = time.perf_counter()
        for connection in self.connections.values():
            connection.start()
        await asyncio.gather(*(c.wait_started(wait) for c in self.connections.values()))
        if self.clashes:
            await self.close()
            raise McpConfigError(self.clashes[0])
        for name, connection in self.connections.items():
            fields: dict[str, Any] = {"server": name, "mode": self.modes[name]}
            fields["transport"] = connection.config.transport
            if connection.state is State.UP:
                log.info("mcp_server_ready", tools=len(self._tools.get(name, {})), **fields)
            else:
                log.error(
                    "mcp_server_unavailable",
                    state=connection.state.value,
                    **fields,
                    error=connection.error or "still starting",
                )
        return time.perf_counter() - started

    async def close(self) -> None:
        """Stop every server."""
        await asyncio.gather(*(c.close() for c in self.connections.values()))

    def tools(self) -> list[ExternalTool]:
        """The function tools of the servers that run locally and are up."""
        return [
            tool
            for name, tools in self._tools.items()
            if self.modes[name] == "local" and self.connections[name].state is State.UP
            for tool in tools.values()
        ]

    def switch_names(self) -> list[str]:
        """Every known tool name, hosted servers' included (for `/tools enable|disable`)."""
        return [tool for tools in self._tools.values() for tool in tools]

    def health(self) -> dict[str, Any]:
        """Each server's state, for `/healthz`."""
        return {
            name: {**connection.health(), "mode": self.modes[name]}
            for name, connection in self.connections.items()
        }

    def hosted_entries(self, switches: Mapping[str, bool]) -> list[dict[str, Any]]:
        """OpenAI `mcp` tools for the hosted servers, minus the tools switched off here.

        The server's approval rule goes with it; OpenAI then asks before such a call, and a
        person decides in the conversation (the tool loop's approval gate).
        """
        entries = []
        for name, config in self.configs.items():
            if self.modes[name] != "hosted":
                continue
            entry: dict[str, Any] = {
                "type": "mcp",
                "server_label": name,
                "server_url": config.url,
                "require_approval": _require_approval(config),
            }
            if config.headers:
                entry["headers"] = dict(config.headers)
            known = [t.name for t in self.connections[name].tools] or sorted(
                config.allowed_tools or ()
            )
            off = {t for t in known if switches.get(exposed_name(name, t)) is False}
            if config.allowed_tools is not None or off:
                allowed = [t for t in known if config.offers(t) and t not in off]
                entry["allowed_tools"] = allowed
            if switches.get(name) is False:
                continue
            entries.append(entry)
        return entries

    def _rebuild(self, connection: Connection) -> None:
        """A server's list arrived or changed: rebuild its catalog entries."""
        name = connection.name
        built: dict[str, ExternalTool] = {}
        for tool in offered(connection.config, connection.tools):
            external = to_external(connection, tool)
            if external is None:
                continue
            if external.name in self._reserved:
                message = (
                    f"MCP server {name!r}: its tool {tool.name!r} would be exposed as "
                    f"{external.name!r}, which a plugin already uses; rename the server in the "
                    "MCP config or the plugin's tool"
                )
                if connection.restarts == 0 and not self._tools.get(name):
                    self.clashes.append(message)
                log.error("mcp_tool_clash", server=name, tool=external.name)
                continue
            built[external.name] = external
        self._tools[name] = built


def _require_approval(config: ServerConfig) -> Any:
    """A server's approval rule in the shape of OpenAI's hosted `mcp` tool."""
    if isinstance(config.approval, frozenset):
        return {"always": {"tool_names": sorted(config.approval)}}
    return config.approval
