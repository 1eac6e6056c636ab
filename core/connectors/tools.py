"""MCP tools as catalog tools (`<server>__<tool>`), and their results as model input."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import mcp.types as types
import structlog
from mcp.shared.exceptions import MCPError

from core.connectors.config import ServerConfig
from core.connectors.connection import Connection, Unavailable
from core.llm.types import ImagePart
from core.plugin import ToolContext
from core.tools.external import ExternalTool
from core.tools.invoke import MAX_OUTPUT_CHARS
from core.tools.result import ToolResult
from core.tools.schema import NAME, strict_from_json

log = structlog.get_logger(__name__)

SEPARATOR = "__"
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_DESCRIPTION = 1024


def exposed_name(server: str, tool: str) -> str:
    """The name the model sees: `<server>__<tool>`."""
    return f"{server}{SEPARATOR}{tool}"


def to_external(connection: Connection, tool: types.Tool) -> ExternalTool | None:
    """The catalog entry for one MCP tool, or None (logged) when it cannot be offered."""
    config = connection.config
    name = exposed_name(config.name, tool.name)
    if not NAME.match(name):
        log.warning(
            "mcp_tool_skipped",
            server=config.name,
            tool=tool.name[:100],
            reason="the exposed name must be 1-64 letters, digits, '_' or '-'",
        )
        return None
    original = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    attempt = strict_from_json(original)
    if not attempt.strict:
        log.warning("mcp_tool_not_strict", server=config.name, tool=name, reason=attempt.reason)
    description = (tool.description or tool.title or tool.name).strip()[:MAX_DESCRIPTION]
    approval = config.needs_approval(tool.name)
    return ExternalTool(
        name=name,
        description=description,
        plugin=f"mcp server {config.name}",
        schema=attempt.schema,
        original=original,
        strict=attempt.strict,
        run=_runner(connection, tool.name),
        approval=approval,
        timeout=config.timeout,
    )


def _runner(connection: Connection, tool: str) -> Any:
    async def run(arguments: dict[str, Any], _ctx: ToolContext, timeout: float) -> ToolResult:
        try:
            result = await connection.call(tool, arguments, timeout)
        except Unavailable as exc:
            return ToolResult(False, f"error: {exc}; try again later")
        except TimeoutError:
            return ToolResult(
                False,
                f"error: {exposed_name(connection.name, tool)} did not answer within {timeout:g} s "
                f"(MCP server {connection.name})",
            )
        except MCPError as exc:
            return ToolResult(False, f"error: MCP server {connection.name}: {exc}")
        return to_result(result)

    return run


def to_result(result: types.CallToolResult, limit: int = MAX_OUTPUT_CHARS) -> ToolResult:
    """Text, images and embedded resources as model input; capped at `limit` characters."""
    parts: list[str] = []
    images: list[ImagePart] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent):
            size = _decoded_size(block.data)
            if size is None:
                parts.append(f"[an image ({block.mime_type}) that is not valid base64]")
            elif size > MAX_IMAGE_BYTES:
                parts.append(
                    f"[an image ({block.mime_type}, {size / 1_048_576:.1f} MB), over the "
                    f"{MAX_IMAGE_BYTES // 1_048_576} MB limit for images, not shown]"
                )
            else:
                images.append(ImagePart(f"data:{block.mime_type};base64,{block.data}"))
                parts.append(f"[image {len(images)}: {block.mime_type}, {size // 1024} KB]")
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, types.TextResourceContents):
                parts.append(f"[resource {resource.uri}]\n{resource.text}")
            else:
                size = _decoded_size(resource.blob) or 0
                mime = resource.mime_type or "binary"
                parts.append(f"[resource {resource.uri}: {mime}, {size // 1024} KB, not shown]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link {block.name}: {block.uri}]")
        elif isinstance(block, types.AudioContent):
            parts.append(f"[audio ({block.mime_type}), not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, default=str))
    text = "\n\n".join(parts) or "done"
    if len(text) > limit:
        text = (
            text[:limit] + f"\n[truncated: the tool returned {len(text):,} characters; the first "
            f"{limit:,} are shown]"
        )
    if result.is_error:
        return ToolResult(False, f"error: {text}")
    return ToolResult(True, text, images=tuple(images))


def _decoded_size(data: str) -> int | None:
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None


def offered(config: ServerConfig, tools: list[types.Tool]) -> list[types.Tool]:
    """The server's tools that `allowed_tools` lets through."""
    return [tool for tool in tools if config.offers(tool.name)]
