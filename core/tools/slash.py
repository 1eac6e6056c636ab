"""`/tool name key=value ...`: the same tools, run directly by people."""

from __future__ import annotations

import difflib
import json
import shlex
from collections.abc import Iterable
from typing import Any

from core.tools.external import ExternalTool
from core.tools.registry import Tool

AnyTool = Tool | ExternalTool


class UsageError(Exception):
    """The command cannot run as typed; the message includes a usage line."""


def parse_slash(text: str) -> tuple[str, list[str]]:
    """The tool name and the raw `key=value` words (quotes honoured)."""
    if any(ord(ch) < 32 and ch not in "\t\n" for ch in text):
        raise UsageError("the command contains control characters; type it again without them")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"could not read the arguments ({exc}); check the quotes") from None
    if not words:
        return "", []
    return words[0], words[1:]


def _placeholder(schema: dict[str, Any]) -> str:
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema = branches[0]
    kinds = schema.get("type") or [
        b.get("type") for b in schema.get("anyOf", []) if b.get("type") != "null"
    ]
    if isinstance(kinds, list):
        kinds = "|".join(str(k) for k in kinds if k and k != "null") or "value"
    if "enum" in schema:
        return "|".join(str(v) for v in schema["enum"])
    return str(kinds)


def usage_line(tool: AnyTool) -> str:
    """`usage: /tool name key=<type> [optional=<type>] — description`."""
    parts = []
    for name, schema in tool.schema["properties"].items():
        item = f"{name}=<{_placeholder(schema)}>"
        parts.append(f"[{item}]" if name in tool.defaults else item)
    return f"usage: /tool {tool.name} {' '.join(parts)}".rstrip() + f" — {tool.summary}"


def list_tools(tools: Iterable[AnyTool]) -> str:
    """One line per tool."""
    lines = [f"{tool.name} — {tool.summary}" for tool in tools]
    return "\n".join(lines) if lines else "No tools are enabled here."


def _coerce(raw: str, schema: dict[str, Any]) -> Any:
    kinds = schema.get("type")
    if kinds == "array" or "$ref" in schema or kinds == "object":
        if raw.startswith(("[", "{")):
            try:
                return json.loads(raw)
            except (json.JSONDecodeError, RecursionError):
                raise UsageError(f"could not read {raw[:80]!r} as JSON") from None
        return (
            [part.strip() for part in raw.split(",") if part.strip()] if kinds == "array" else raw
        )
    return raw


def slash_arguments(tool: AnyTool, words: list[str]) -> dict[str, Any]:
    """The typed words as arguments for the tool's model (validated later by `invoke`)."""
    properties: dict[str, Any] = tool.schema["properties"]
    required = [name for name in properties if name not in tool.defaults]
    arguments: dict[str, Any] = {}
    for word in words:
        if "=" not in word:
            if len(words) == 1 and len(required) == 1:
                arguments[required[0]] = _coerce(word, properties[required[0]])
                continue
            raise UsageError(f"expected key=value, got {word!r}\n{usage_line(tool)}")
        key, _, value = word.partition("=")
        if key not in properties:
            raise UsageError(f"{tool.name} has no argument {key!r}\n{usage_line(tool)}")
        arguments[key] = _coerce(value, properties[key])
    missing = [name for name in required if name not in arguments]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}\n{usage_line(tool)}")
    return arguments


def suggest(name: str, names: Iterable[str]) -> str:
    """An "unknown tool" message with close matches."""
    close = difflib.get_close_matches(name, list(names), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"Unknown tool {name!r}.{hint} Type /tool to list the tools."
