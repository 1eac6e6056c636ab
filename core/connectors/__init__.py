"""MCP servers as tool sources: configuration, connections (the official `mcp` SDK), their tools."""

from core.connectors.config import (
    McpConfigError,
    ServerConfig,
    config_path,
    load_config,
    mcp_secrets,
)
from core.connectors.connection import Backoff, Connection, State
from core.connectors.manager import Connectors, choose_mode

__all__ = [
    "Backoff",
    "Connection",
    "Connectors",
    "McpConfigError",
    "ServerConfig",
    "State",
    "choose_mode",
    "config_path",
    "load_config",
    "mcp_secrets",
]
