"""A deterministic instance of a JSON schema, for structured-output requests."""

from __future__ import annotations

from typing import Any


def fill(
    schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "", context: str = ""
) -> Any:
    """Make a value that validates against `schema` (strict-mode subset)."""
    root = root or schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return fill(target, root, name, context)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"] or schema["anyOf"]
        return fill(branches[0], root, name, context)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {
            key: fill(sub, root, key, context) for key, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        count = max(schema.get("minItems", 1 if name in {"facts"} else 0), 0)
        return [fill(schema.get("items", {}), root, name, context) for _ in range(count)]
    if kind == "string":
        if "summary" in name:
            return f"summary of {context}" if context else "summary"
        return f"example {name}".strip()
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None
