"""Running a tool: validate the arguments with its model, enforce permissions, bound its time."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from core.events import OutboundFile
from core.plugin import ToolContext, ToolError
from core.tools.external import ExternalTool, invoke_external
from core.tools.registry import Tool
from core.tools.result import ToolResult, parse_arguments

__all__ = ["MAX_OUTPUT_CHARS", "ToolResult", "invoke", "validate"]

MAX_OUTPUT_CHARS = 20_000


def describe_validation_error(error: ValidationError) -> str:
    """A short list of bad fields and what was expected, for the model to correct itself."""
    lines = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        lines.append(f"{where}: {item['msg']}")
    return "invalid arguments: " + "; ".join(lines[:10])


def validate(tool: Tool, arguments: str | Mapping[str, Any]) -> BaseModel:
    """Parse and validate arguments; nulls for parameters with defaults mean "use the default"."""
    arguments = parse_arguments(arguments)
    values = dict.fromkeys(tool.defaults) | dict(arguments)  # an omitted optional means its default
    return tool.args_model.model_validate(values)


def _call_kwargs(tool: Tool, model: BaseModel) -> dict[str, Any]:
    values = {name: getattr(model, name) for name in type(model).model_fields}
    for name, default in tool.defaults.items():
        if values.get(name) is None:
            values[name] = default
    return values


def _render(value: Any) -> tuple[str, tuple[OutboundFile, ...]]:
    if isinstance(value, OutboundFile):
        return f"sent file {value.name}", (value,)
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(v, OutboundFile) for v in value)
    ):
        return "sent files " + ", ".join(v.name for v in value), tuple(value)
    if value is None:
        return "done", ()
    if isinstance(value, str):
        return value, ()
    if isinstance(value, BaseModel):
        return value.model_dump_json(), ()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.dumps(dataclasses.asdict(value), default=str), ()
    return json.dumps(value, default=str), ()


async def invoke(
    tool: Tool | ExternalTool,
    arguments: str | Mapping[str, Any],
    ctx: ToolContext,
    *,
    default_timeout: float,
) -> ToolResult:
    """Run a tool call; every failure becomes a clear error result, never an exception."""
    if isinstance(tool, ExternalTool):
        return await invoke_external(tool, arguments, ctx, default_timeout=default_timeout)
    if tool.admin_only and not ctx.is_admin:
        return ToolResult(False, f"refused: {tool.name} may only be used by workspace admins")
    try:
        model = validate(tool, arguments)
    except ValidationError as exc:
        return ToolResult(False, describe_validation_error(exc))
    except ValueError as exc:
        return ToolResult(False, f"invalid arguments: {exc}")
    except RecursionError:
        return ToolResult(False, "invalid arguments: nested too deeply")
    kwargs = _call_kwargs(tool, model)
    args = (ctx,) if tool.takes_context else ()
    timeout = tool.timeout or default_timeout
    try:
        async with asyncio.timeout(timeout):
            if tool.is_async:
                value = await tool.fn(*args, **kwargs)
            else:
                value = await asyncio.to_thread(tool.fn, *args, **kwargs)
    except TimeoutError:
        return ToolResult(False, f"error: {tool.name} timed out after {timeout:g} s")
    except ToolError as exc:
        return ToolResult(False, f"error: {exc}")
    except Exception as exc:
        return ToolResult(False, f"error: {type(exc).__name__}: {exc}")
    text, files = _render(value)
    if files and ctx.services.send_file is not None:
        for file in files:
            await ctx.services.send_file(file)
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + " … [truncated]"
    return ToolResult(True, text, files)
