"""Plugin tools: registry, strict schemas, invocation, slash parsing and discovery."""

from core.tools.discovery import discover
from core.tools.invoke import ToolResult, invoke
from core.tools.registry import Tool, ToolRegistry
from core.tools.schema import ToolDefinitionError
from core.tools.slash import UsageError

__all__ = [
    "Tool",
    "ToolDefinitionError",
    "ToolRegistry",
    "ToolResult",
    "UsageError",
    "discover",
    "invoke",
]
