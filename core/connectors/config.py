"""The MCP servers file (`MCP_CONFIG`, default `mcp.json` when present): parsed and checked at start.

The shape is the common client one, `{"mcpServers": {name: {...}}}`, where a server is either a
local program (`command`, `args`, `env`) or a remote Streamable HTTP endpoint (`url`, `headers`).
Per server also: `timeout` (seconds per call), `allowed_tools` (names; others are not offered) and
`require_approval` (`always`, `never` or a list of tool names). `${NAME}` in `args`, `env`, `url`
and `headers` is replaced by the environment variable NAME, so secrets stay out of the file.
Any problem is one `McpConfigError` line naming the server and the fix.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import structlog

DEFAULT_FILE = "mcp.json"
DEFAULT_TIMEOUT = 30.0
SERVER_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_)){0,30}$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KNOWN = {
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "timeout",
    "allowed_tools",
    "require_approval",
    "type",
    "transport",
    "description",
}

log = structlog.get_logger(__name__)

Mode = Literal["local", "hosted"]  # where a server's tools run


class McpConfigError(Exception):
    """The MCP servers file is unusable; the message is one line naming the server and the fix."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One MCP server as configured."""

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    allowed_tools: frozenset[str] | None = None
    approval: Literal["always", "never"] | frozenset[str] = "never"

    @property
    def transport(self) -> Literal["stdio", "http"]:
        """`stdio` for a local program, `http` for a Streamable HTTP endpoint."""
        return "http" if self.url else "stdio"

    def needs_approval(self, tool: str) -> bool:
        """Whether a call of `tool` waits for a person's approval."""
        if isinstance(self.approval, frozenset):
            return tool in self.approval
        return self.approval == "always"

    def offers(self, tool: str) -> bool:
        """Whether `tool` may be offered (`allowed_tools`)."""
        return self.allowed_tools is None or tool in self.allowed_tools

    def secrets(self) -> list[str]:
        """Header and environment values, for log redaction."""
        values = [*self.headers.values(), *self.env.values()]
        parts = [part for value in values for part in value.split()]  # "Bearer <token>"
        return [v for v in dict.fromkeys([*values, *parts]) if len(v) >= 8]


def config_path(setting: str | None, cwd: Path | None = None) -> Path | None:
    """The file to read: `MCP_CONFIG`, else `mcp.json` when it exists, else None (no servers)."""
    if setting:
        return Path(setting)
    default = (cwd or Path.cwd()) / DEFAULT_FILE
    return default if default.is_file() else None


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> list[ServerConfig]:
    """Read and check the servers file; `McpConfigError` (one line) on any problem."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise McpConfigError(
            f"MCP_CONFIG: {path} does not exist; point MCP_CONFIG at the servers file or unset it"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise McpConfigError(f"MCP_CONFIG: cannot read {path} ({type(exc).__name__})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise McpConfigError(
            f"MCP_CONFIG: {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno})"
        ) from None
    return parse_config(data, os.environ if environ is None else environ)


def parse_config(data: Any, environ: Mapping[str, str]) -> list[ServerConfig]:
    """Servers from the decoded file."""
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise McpConfigError(
            'MCP_CONFIG: expected {"mcpServers": {"name": {...}}} at the top level'
        )
    return [_server(name, spec, environ) for name, spec in data["mcpServers"].items()]


def _server(name: str, spec: Any, environ: Mapping[str, str]) -> ServerConfig:
    where = f"MCP server {name!r}"
    if not SERVER_NAME.match(name):
        raise McpConfigError(
            f"{where}: names are 1-31 letters, digits, '-' or single '_' (tools are exposed as "
            "<server>__<tool>); rename it"
        )
    if not isinstance(spec, dict):
        raise McpConfigError(f"{where}: expected an object with command or url")
    unknown = set(spec) - _KNOWN
    if unknown:
        raise McpConfigError(
            f"{where}: unknown key {', '.join(sorted(unknown))}; accepted: {', '.join(sorted(_KNOWN))}"
        )
    has_command, has_url = bool(spec.get("command")), bool(spec.get("url"))
    if has_command == has_url:
        raise McpConfigError(
            f"{where}: give either command (a local program) or url (Streamable HTTP), not "
            + ("both" if has_command else "neither")
        )

    def text(value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise McpConfigError(f"{where}: {key} must be a string")
        return _substitute(value, environ, where, key)

    def strings(value: Any, key: str) -> dict[str, str]:
        if not isinstance(value, dict):
            raise McpConfigError(f"{where}: {key} must be an object of strings")
        return {str(k): text(v, f"{key}.{k}") for k, v in value.items()}

    args = spec.get("args", [])
    if not isinstance(args, list):
        raise McpConfigError(f"{where}: args must be a list of strings")
    timeout = spec.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise McpConfigError(f"{where}: timeout must be a number of seconds between 0 and 3600")
    allowed = spec.get("allowed_tools")
    if allowed is not None and (
        not isinstance(allowed, list) or not all(isinstance(t, str) for t in allowed)
    ):
        raise McpConfigError(f"{where}: allowed_tools must be a list of tool names")
    url = text(spec["url"], "url") if has_url else ""
    if url and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc):
        raise McpConfigError(f"{where}: url must be an absolute http(s) URL")
    return ServerConfig(
        name=name,
        command=text(spec["command"], "command") if has_command else "",
        args=tuple(text(a, "args") for a in args),
        env=strings(spec.get("env", {}), "env"),
        cwd=text(spec["cwd"], "cwd") if spec.get("cwd") else None,
        url=url,
        headers=strings(spec.get("headers", {}), "headers"),
        timeout=float(timeout),
        allowed_tools=frozenset(allowed) if allowed is not None else None,
        approval=_approval(spec.get("require_approval", "never"), where),
    )


def _approval(value: Any, where: str) -> Literal["always", "never"] | frozenset[str]:
    if value in ("always", "never"):
        return value  # type: ignore[no-any-return]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return frozenset(value)
    raise McpConfigError(f"{where}: require_approval must be always, never or a list of tool names")


def _substitute(value: str, environ: Mapping[str, str], where: str, key: str) -> str:
    """`${NAME}` replaced by the environment variable; a missing one is an error naming it."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise McpConfigError(f"{where}: {key} uses ${{{name}}}, which is not set; set {name}")
        return environ[name]

    return _VARIABLE.sub(variable, value)


def mcp_secrets(setting: str | None) -> list[str]:
    """The header and environment values of the configured servers, for log redaction (none when
    the file is missing or bad: that is reported where the servers are started)."""
    path = config_path(setting)
    if path is None:
        return []
    try:
        return [secret for server in load_config(path) for secret in server.secrets()]
    except McpConfigError:
        return []


def choose_mode(
    config: ServerConfig, setting: Literal["local", "hosted", "auto"], *, wire: str, is_openai: bool
) -> Mode:
    """Local or hosted for one server (`MCP_MODE`): hosted needs the Responses wire, OpenAI's
    own URL (only OpenAI hosts MCP calls) and an HTTP server; stdio servers always run here."""
    possible = config.transport == "http" and wire == "responses" and is_openai
    if setting == "hosted" and not possible and config.transport == "http":
        log.warning(
            "mcp_hosted_unavailable",
            server=config.name,
            reason="hosted MCP needs OPENAI_WIRE_API=responses and OpenAI's own base URL",
        )
    return "hosted" if possible and setting in ("hosted", "auto") else "local"
