"""The MCP servers file: shapes accepted, `${ENV}` substitution, one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.connectors.config import McpConfigError, config_path, load_config, parse_config


def test_both_shapes_with_substitution_and_per_server_options() -> None:
    servers = parse_config(
        {
            "mcpServers": {
                "files": {
                    "command": "npx",
                    "args": ["-y", "server", "${ROOT}"],
                    "env": {"K": "${KEY}"},
                },
                "github": {
                    "url": "https://api.example.com/mcp",
                    "headers": {"Authorization": "Bearer ${GH_TOKEN}"},
                    "timeout": 5,
                    "allowed_tools": ["search"],
                    "require_approval": ["create_issue"],
                },
            }
        },
        {"ROOT": "/srv", "KEY": "k-1234567890", "GH_TOKEN": "ghp_secret"},
    )
    files, github = servers
    assert files.transport == "stdio" and files.args == ("-y", "server", "/srv")
    assert files.env == {"K": "k-1234567890"} and files.approval == "never"
    assert github.transport == "http" and github.headers["Authorization"] == "Bearer ghp_secret"
    assert github.timeout == 5.0 and github.offers("search") and not github.offers("delete")
    assert github.needs_approval("create_issue") and not github.needs_approval("search")
    assert "ghp_secret" not in repr(github), "headers stay out of reprs and logs"


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        (
            {"a": {}},
            "MCP server 'a': give either command (a local program) or url (Streamable HTTP), not neither",
        ),
        ({"a": {"command": "x", "tiemout": 3}}, "MCP server 'a': unknown key tiemout; accepted:"),
        (
            {"a": {"command": "x", "timeout": -1}},
            "MCP server 'a': timeout must be a number of seconds",
        ),
        ({"a": {"url": "ftp://x"}}, "MCP server 'a': url must be an absolute http(s) URL"),
        (
            {"a": {"command": "x", "require_approval": "sometimes"}},
            "MCP server 'a': require_approval must be",
        ),
        ({"a__b": {"command": "x"}}, "MCP server 'a__b': names are 1-31 letters"),
        (
            {"a": {"command": "x", "env": {"T": "${MISSING}"}}},
            "MCP server 'a': env.T uses ${MISSING}, which is not set",
        ),
        ({"a": "npx server"}, "MCP server 'a': expected an object with command or url"),
    ],
)
def test_bad_servers_are_refused_with_one_line_naming_them(servers: dict, message: str) -> None:
    with pytest.raises(McpConfigError) as raised:
        parse_config({"mcpServers": servers}, {})
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_the_file_itself(tmp_path: Path) -> None:
    assert config_path(None, tmp_path) is None, "no mcp.json: no servers"
    (tmp_path / "mcp.json").write_text(json.dumps({"mcpServers": {"x": {"command": "run"}}}))
    assert config_path(None, tmp_path) == tmp_path / "mcp.json"
    assert [s.name for s in load_config(tmp_path / "mcp.json", {})] == ["x"]
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(McpConfigError, match=r"^MCP_CONFIG: .*bad.json is not valid JSON"):
        load_config(tmp_path / "bad.json", {})
    with pytest.raises(McpConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json", {})
    with pytest.raises(McpConfigError, match="at the top level"):
        parse_config({"servers": {}}, {})


def test_header_and_env_values_are_known_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.connectors import mcp_secrets

    monkeypatch.setenv("GH_TOKEN", "ghp_0123456789")
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {"mcpServers": {"gh": {"url": "https://x/mcp", "headers": {"A": "Bearer ${GH_TOKEN}"}}}}
        )
    )
    assert set(mcp_secrets(str(path))) == {"Bearer ghp_0123456789", "ghp_0123456789"}
    assert mcp_secrets(str(tmp_path / "missing.json")) == []
