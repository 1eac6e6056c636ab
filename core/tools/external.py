"""Tools whose code runs elsewhere (MCP servers): described by a JSON schema, called by a runner.

They sit beside plugin tools in the catalog, are switched on and off the same way, and are run
by the same `invoke`: arguments are parsed and checked against the tool's own JSON schema
(`jsonschema`), the admin rule is checked when the call executes, and the time limit applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from core.llm.types import ToolSpec
from core.plugin import ToolContext
from core.tools.result import ToolResult, parse_arguments
from core.tools.schema import drop_nulls

Runner = Callable[[dict[str, Any], ToolContext, float], Awaitable[ToolResult]]


@dataclass(frozen=True, slots=True)
class ExternalTool:
    """One tool of another program, exposed under `name`."""

    name: str
    description: str
    plugin: str  # where it comes from, e.g. "mcp server github"
    schema: dict[str, Any]  # what the model is offered (strict where that is lossless)
    original: dict[str, Any]  # the schema as the server gave it: what arguments are checked against
    strict: bool
    run: Runner = field(repr=False, compare=False)
    admin_only: bool = False
    approval: bool = False  # a person approves each call (the interactive approval flow)
    timeout: float | None = None
    slash: bool = True

    @property
    def spec(self) -> ToolSpec:
        """What the model is offered."""
        return ToolSpec(self.name, self.description, self.schema, strict=self.strict)

    @property
    def summary(self) -> str:
        """The first sentence of the description."""
        return (self.description.split(". ")[0].rstrip(".") or self.name)[:200]

    @property
    def defaults(self) -> dict[str, Any]:
        """The optional arguments (None: the tool's own default), as slash usage shows them."""
        required = set(self.original.get("required", []))
        return {k: None for k in self.original.get("properties", {}) if k not in required}


def check_arguments(tool: ExternalTool, arguments: str | Mapping[str, Any]) -> dict[str, Any]:
    """Parsed, null-cleaned and schema-checked arguments, or `ValueError` saying what is wrong."""
    arguments = parse_arguments(arguments)
    values = drop_nulls(dict(arguments), tool.original) if tool.strict else dict(arguments)
    try:
        validator = jsonschema.Draft202012Validator(tool.original)
        errors = sorted(validator.iter_errors(values), key=lambda e: list(e.path))
    except (jsonschema.SchemaError, RecursionError, TypeError):
        return values  # a schema jsonschema cannot use: the server checks its own arguments
    if errors:
        problems = [
            f"{'.'.join(str(p) for p in e.path) or 'arguments'}: {e.message[:200]}"
            for e in errors[:10]
        ]
        raise ValueError("; ".join(problems))
    return values


async def invoke_external(
    tool: ExternalTool,
    arguments: str | Mapping[str, Any],
    ctx: ToolContext,
    *,
    default_timeout: float,
) -> ToolResult:
    """Run a call of an external tool; every failure becomes a clear error result."""
    if tool.admin_only and not ctx.is_admin:
        return ToolResult(False, f"refused: {tool.name} may only be used by workspace admins")
    try:
        values = check_arguments(tool, arguments)
    except ValueError as exc:
        return ToolResult(False, f"invalid arguments: {exc}")
    timeout = tool.timeout or default_timeout
    try:
        return await tool.run(values, ctx, timeout)
    except TimeoutError:
        return ToolResult(False, f"error: {tool.name} timed out after {timeout:g} s")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return ToolResult(False, f"error: {type(exc).__name__}: {exc}")
