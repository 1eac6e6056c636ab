"""Argument models from typed functions, and OpenAI strict JSON schemas from those models.

Strict mode (function calling, structured outputs): every object has `additionalProperties: false`
and lists every property in `required`; optional means a union with null; only a subset of JSON
schema is allowed. A signature that cannot be expressed that way is refused, never rewritten lossily.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from core.plugin import ToolContext

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ALLOWED = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "anyOf",
    "$defs",
    "$ref",
    "description",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
}
FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
MAX_DEPTH, MAX_PROPERTIES, MAX_ENUM = 10, 5000, 1000


class ToolDefinitionError(Exception):
    """A plugin function cannot be offered as a strict tool; the message says why and how to fix it."""


def docstring_parts(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The summary paragraph and the `Args:` descriptions of a Google-style docstring."""
    doc = inspect.cleandoc(fn.__doc__ or "")
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    args: dict[str, str] = {}
    match = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?)+)", doc, re.MULTILINE)
    if match:
        current = ""
        for line in match.group(1).splitlines():
            item = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
            if item:
                current = item.group(1)
                args[current] = item.group(2).strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    return summary, args


def takes_context(fn: Callable[..., Any]) -> bool:
    """True when the first parameter is annotated `ToolContext`."""
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        return False
    hints = get_type_hints(fn, include_extras=True)
    return hints.get(params[0].name) is ToolContext


def args_model(
    fn: Callable[..., Any], tool_name: str, plugin: str
) -> tuple[type[BaseModel], dict[str, Any]]:
    """A pydantic model of the function's arguments, and the defaults applied when null arrives."""
    where = f"plugin {plugin}, tool {tool_name}"
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"{where}: cannot resolve type hints ({exc})") from None
    _, described = docstring_parts(fn)
    params = list(inspect.signature(fn).parameters.values())
    if params and hints.get(params[0].name) is ToolContext:
        params = params[1:]
    fields: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for param in params:
        problem = f"{where}, parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{problem}: *args/**kwargs cannot be described to the model; name each argument"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolDefinitionError(
                f"{problem}: positional-only parameters are not supported; remove the '/'"
            )
        if param.name not in hints:
            raise ToolDefinitionError(
                f"{problem}: has no type annotation; add one (e.g. `{param.name}: str`)"
            )
        annotation = hints[param.name]
        info = _field_info(annotation)
        description = (
            info.description if info and info.description else described.get(param.name, "")
        ).strip()
        if param.default is not param.empty:
            defaults[param.name] = param.default
            description = _with_default(description, param.default)
            annotation = annotation | None
        fields[param.name] = (annotation, Field(description=description or None))
    model = create_model(  # type: ignore[call-overload]
        f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model, defaults


def _with_default(description: str, default: Any) -> str:
    """State a default in the description (strict schemas have no `default` keyword)."""
    description = description.strip()
    if description and not description.endswith((".", "!", "?")):
        description += "."
    return f"{description} Default: {default!r}.".strip()


def _field_info(annotation: Any) -> FieldInfo | None:
    if get_origin(annotation) is Annotated:
        for extra in get_args(annotation)[1:]:
            if isinstance(extra, FieldInfo):
                return extra
    return None


def strict_schema(model: type[BaseModel], tool_name: str, plugin: str) -> dict[str, Any]:
    """The model's JSON schema made strict, or `ToolDefinitionError` naming what cannot be."""
    where = f"plugin {plugin}, tool {tool_name}"
    try:
        schema = model.model_json_schema()
    except Exception as exc:
        raise ToolDefinitionError(
            f"{where}: arguments cannot be described as JSON schema ({exc})"
        ) from None
    counter = {"properties": 0}
    result = _strict(schema, where, "arguments", 0, counter)
    if result.get("type") != "object":
        raise ToolDefinitionError(f"{where}: the arguments must form an object")
    return result


def _strict(node: Any, where: str, path: str, depth: int, counter: dict[str, int]) -> Any:
    if not isinstance(node, dict):
        return node
    if depth > MAX_DEPTH:
        raise ToolDefinitionError(f"{where}, {path}: nested more than {MAX_DEPTH} levels")
    node = dict(node)
    node.pop("title", None)
    node.pop("examples", None)
    if "default" in node:
        node["description"] = _with_default(node.get("description", ""), node.pop("default"))
    if "const" in node:
        node["enum"] = [node.pop("const")]
    unknown = set(node) - ALLOWED
    if unknown:
        raise ToolDefinitionError(
            f"{where}, {_param(path)}: uses {', '.join(sorted(unknown))}, which strict mode does "
            "not support; drop the constraint and check it in the function instead"
        )
    if not node.get("type") and not any(k in node for k in ("$ref", "anyOf", "enum")):
        raise ToolDefinitionError(
            f"{where}, {_param(path)}: has no type (Any/object); give it a concrete type"
        )
    if node.get("format") and node["format"] not in FORMATS:
        raise ToolDefinitionError(
            f"{where}, {_param(path)}: format {node['format']!r} is not supported in strict mode"
        )
    if len(node.get("enum", [])) > MAX_ENUM:
        raise ToolDefinitionError(f"{where}, {_param(path)}: more than {MAX_ENUM} enum values")
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) or extra is True or "properties" not in node:
            raise ToolDefinitionError(
                f"{where}, {_param(path)}: a free-form mapping (dict) cannot be strict; use a model "
                "with named fields, or a list of key/value models"
            )
        properties = node.get("properties", {})
        counter["properties"] += len(properties)
        if counter["properties"] > MAX_PROPERTIES:
            raise ToolDefinitionError(f"{where}: more than {MAX_PROPERTIES} properties in all")
        node["properties"] = {
            key: _strict(value, where, f"{path}.{key}", depth + 1, counter)
            for key, value in properties.items()
        }
        node["required"] = list(node["properties"])
        node["additionalProperties"] = False
    if node.get("type") == "array":
        items = node.get("items")
        if not items:
            raise ToolDefinitionError(
                f"{where}, {_param(path)}: a list without an item type; write e.g. list[str]"
            )
        node["items"] = _strict(items, where, f"{path}[]", depth + 1, counter)
    if "anyOf" in node:
        node["anyOf"] = [_strict(b, where, path, depth + 1, counter) for b in node["anyOf"]]
    if "$defs" in node:
        node["$defs"] = {
            k: _strict(v, where, f"{k}", depth + 1, counter) for k, v in node["$defs"].items()
        }
    return node


def _param(path: str) -> str:
    parts = path.split(".")
    return (
        f"parameter {parts[1]!r}" + (f" ({'.'.join(parts[2:])})" if len(parts) > 2 else "")
        if len(parts) > 1
        else path
    )


# -- schemas that arrive as JSON (MCP servers) ------------------------------------------------

ANNOTATIONS = {"title", "examples", "$schema", "$id", "$comment", "readOnly", "writeOnly"}


@dataclass(frozen=True, slots=True)
class StrictAttempt:
    """A JSON schema made strict where that loses nothing; otherwise the schema as given, and why.

    `strict` schemas have every optional property turned required-and-nullable: `drop_nulls`
    removes those nulls again before the arguments go to the tool.
    """

    schema: dict[str, Any]
    strict: bool
    reason: str = ""


class _NotLossless(Exception):
    """Making this schema strict would change what it accepts."""


def strict_from_json(schema: Any) -> StrictAttempt:
    """`schema` (a tool's JSON Schema, e.g. an MCP `inputSchema`) as a strict schema, or as it
    was with `strict=False` and the reason, when strictness would rewrite what it means."""
    if not isinstance(schema, dict):
        return StrictAttempt(
            {"type": "object", "properties": {}}, False, "the schema is not an object"
        )
    try:
        if schema.get("type") != "object":
            raise _NotLossless("the root is not an object")
        counter = {"properties": 0}
        result = _lossless(schema, "arguments", 0, counter, root=schema)
    except _NotLossless as exc:
        return StrictAttempt(dict(schema), False, str(exc))
    except RecursionError:
        return StrictAttempt(dict(schema), False, "the schema is nested too deeply")
    return StrictAttempt(result, True)


def _lossless(
    node: Any, path: str, depth: int, counter: dict[str, int], *, root: dict[str, Any]
) -> Any:
    if isinstance(node, bool):
        raise _NotLossless(f"{path}: a boolean schema")
    if not isinstance(node, dict):
        raise _NotLossless(f"{path}: not a schema object")
    if depth > MAX_DEPTH:
        raise _NotLossless(f"{path}: nested more than {MAX_DEPTH} levels")
    node = {k: v for k, v in node.items() if k not in ANNOTATIONS}
    if "definitions" in node and "$defs" not in node:
        raise _NotLossless(f"{path}: uses definitions (write $defs)")
    if "default" in node:
        node["description"] = _with_default(str(node.get("description", "")), node.pop("default"))
    if "const" in node:
        node["enum"] = [node.pop("const")]
    unknown = set(node) - ALLOWED
    if unknown:
        raise _NotLossless(f"{path}: uses {', '.join(sorted(unknown))}, which strict mode lacks")
    if not node.get("type") and not any(k in node for k in ("$ref", "anyOf", "enum")):
        raise _NotLossless(f"{path}: has no type")
    if node.get("format") and node["format"] not in FORMATS:
        raise _NotLossless(f"{path}: format {node['format']!r} is not supported in strict mode")
    if len(node.get("enum", [])) > MAX_ENUM:
        raise _NotLossless(f"{path}: more than {MAX_ENUM} enum values")
    if "$ref" in node and not str(node["$ref"]).startswith("#/$defs/"):
        raise _NotLossless(f"{path}: a $ref outside #/$defs")
    kinds = node.get("type")
    if kinds == "object" or "properties" in node:
        extra = node.get("additionalProperties")
        if "properties" not in node or extra is True or isinstance(extra, dict):
            raise _NotLossless(f"{path}: a free-form object (additional properties allowed)")
        properties = node["properties"]
        if not isinstance(properties, dict):
            raise _NotLossless(f"{path}: properties is not an object")
        counter["properties"] += len(properties)
        if counter["properties"] > MAX_PROPERTIES:
            raise _NotLossless(f"more than {MAX_PROPERTIES} properties in all")
        required = node.get("required", [])
        if not isinstance(required, list):
            raise _NotLossless(f"{path}: required is not a list")
        converted = {}
        for key, value in properties.items():
            child = _lossless(value, f"{path}.{key}", depth + 1, counter, root=root)
            if key not in required:
                if _admits_null(value, root):
                    raise _NotLossless(
                        f"{path}.{key}: optional and nullable, so null and absent would mean the same"
                    )
                description = child.pop("description", None) if isinstance(child, dict) else None
                child = {"anyOf": [child, {"type": "null"}]}
                if description:
                    child["description"] = description
            converted[key] = child
        node["properties"] = converted
        node["required"] = list(converted)
        node["additionalProperties"] = False
    if kinds == "array":
        items = node.get("items")
        if not isinstance(items, dict):
            raise _NotLossless(f"{path}: an array without one item schema")
        node["items"] = _lossless(items, f"{path}[]", depth + 1, counter, root=root)
    if "anyOf" in node:
        if not isinstance(node["anyOf"], list):
            raise _NotLossless(f"{path}: anyOf is not a list")
        node["anyOf"] = [_lossless(b, path, depth + 1, counter, root=root) for b in node["anyOf"]]
    if "$defs" in node:
        if depth:
            raise _NotLossless(f"{path}: $defs below the root")
        node["$defs"] = {
            k: _lossless(v, k, depth + 1, counter, root=root) for k, v in node["$defs"].items()
        }
    return node


def _admits_null(node: Any, root: dict[str, Any], seen: int = 0) -> bool:
    """Whether a schema accepts null (following local $refs a little way)."""
    if not isinstance(node, dict) or seen > 10:
        return False
    if "$ref" in node:
        name = str(node["$ref"]).removeprefix("#/$defs/")
        return _admits_null(root.get("$defs", {}).get(name), root, seen + 1)
    kinds = node.get("type")
    if kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    if None in node.get("enum", ()):
        return True
    return any(_admits_null(b, root, seen + 1) for b in node.get("anyOf", ()))


def drop_nulls(arguments: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """Undo the strict rewrite: remove nulls of properties that the original `schema` left
    optional (the model must send every property in strict mode; null meant "absent")."""
    root = schema if root is None else root
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix("#/$defs/")
        target = root.get("$defs", {}).get(name)
        return drop_nulls(arguments, target, root) if isinstance(target, dict) else arguments
    if isinstance(arguments, dict) and isinstance(schema.get("properties"), dict):
        required = set(schema.get("required", []))
        out = {}
        for key, value in arguments.items():
            sub = schema["properties"].get(key)
            if value is None and key not in required:
                continue
            out[key] = drop_nulls(value, sub, root) if isinstance(sub, dict) else value
        return out
    if isinstance(arguments, list) and isinstance(schema.get("items"), dict):
        return [drop_nulls(item, schema["items"], root) for item in arguments]
    if "anyOf" in schema and arguments is not None:
        for branch in schema["anyOf"]:
            if isinstance(branch, dict) and not _admits_null(branch, root):
                return drop_nulls(arguments, branch, root)
    return arguments
