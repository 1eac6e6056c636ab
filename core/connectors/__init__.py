"""MCP servers as tool sources: configuration, connections (the official `mcp` SDK), their tools.

This package's top level is the configuration only; `core.connectors.manager` (which loads the
`mcp` SDK) is imported where servers are configured, so processes without any do not pay for it.
"""

from core.connectors.config import (
    McpConfigError,
    Mode,
    ServerConfig,
    choose_mode,
    config_path,
    load_config,
    mcp_secrets,
)

__all__ = [
    "McpConfigError",
    "Mode",
    "ServerConfig",
    "choose_mode",
    "config_path",
    "load_config",
    "mcp_secrets",
]
