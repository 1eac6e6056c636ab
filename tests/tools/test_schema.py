"""Strict schemas from typed functions, and the signatures that must be refused."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from core.plugin import ToolContext, tool
from core.tools import ToolDefinitionError, ToolRegistry, discover


class Priority(Enum):
    LOW = "low"
    HIGH = "high"


class Line(BaseModel):
    sku: str
    quantity: int = 1


class Folder(BaseModel):
    name: str
    children: list[Folder]


def _schema(fn: Any) -> dict[str, Any]:
    return ToolRegistry().add(fn, plugin="tests").schema


def test_nested_models_optionals_enums_and_descriptions() -> None:
    def order(
        ctx: ToolContext,
        lines: list[Line],
        priority: Priority,
        mode: Literal["fast", "cheap"],
        note: str | None = None,
        count: Annotated[int, Field(description="How many copies", ge=1, le=10)] = 2,
    ) -> str:
        """Place an order.

        Args:
            lines: the order lines
            mode: delivery mode
        """
        return "ok"

    assert _schema(order) == {
        "$defs": {
            "Line": {
                "properties": {
                    "sku": {"type": "string"},
                    "quantity": {"type": "integer", "description": "Default: 1."},
                },
                "required": ["sku", "quantity"],
                "type": "object",
                "additionalProperties": False,
            },
            "Priority": {"enum": ["low", "high"], "type": "string"},
        },
        "properties": {
            "lines": {
                "description": "the order lines",
                "items": {"$ref": "#/$defs/Line"},
                "type": "array",
            },
            "priority": {"$ref": "#/$defs/Priority"},
            "mode": {"description": "delivery mode", "enum": ["fast", "cheap"], "type": "string"},
            "note": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": "Default: None.",
            },
            "count": {
                "anyOf": [
                    {
                        "description": "How many copies",
                        "maximum": 10,
                        "minimum": 1,
                        "type": "integer",
                    },
                    {"type": "null"},
                ],
                "description": "How many copies. Default: 2.",
            },
        },
        "required": ["lines", "priority", "mode", "note", "count"],
        "type": "object",
        "additionalProperties": False,
    }


def test_recursive_models_use_refs() -> None:
    def tree(root: Folder) -> str:
        """Store a folder tree."""
        return ""

    schema = _schema(tree)
    assert schema["$defs"]["Folder"]["properties"]["children"]["items"] == {
        "$ref": "#/$defs/Folder"
    }
    assert schema["$defs"]["Folder"]["additionalProperties"] is False


def test_the_tool_spec_is_strict_and_described() -> None:
    def greet(name: str) -> str:
        """Say hello to someone by name."""
        return f"hello {name}"

    spec = ToolRegistry().add(greet, plugin="tests").spec
    assert spec.strict is True and spec.description == "Say hello to someone by name."


BAD_SIGNATURES = {
    "mapping": ("def f(scores: dict[str, int]) -> str:\n    '''x'''", "free-form mapping"),
    "bare list": ("def f(items: list) -> str:\n    '''x'''", "list without an item type"),
    "any": ("from typing import Any\ndef f(value: Any) -> str:\n    '''x'''", "no type"),
    "args": ("def f(*values: int) -> str:\n    '''x'''", "*args"),
    "kwargs": ("def f(**values: int) -> str:\n    '''x'''", "*args/**kwargs"),
    "untyped": ("def f(value) -> str:\n    '''x'''", "no type annotation"),
    "positional only": ("def f(value: int, /) -> str:\n    '''x'''", "positional-only"),
    "max length": (
        "from typing import Annotated\nfrom pydantic import Field\n"
        "def f(value: Annotated[str, Field(max_length=5)]) -> str:\n    '''x'''",
        "maxLength",
    ),
    "no docstring": ("def f(value: int) -> str:\n    return ''", "docstring"),
}


@pytest.mark.parametrize("case", sorted(BAD_SIGNATURES))
def test_signatures_that_cannot_be_strict_are_refused(case: str) -> None:
    source, reason = BAD_SIGNATURES[case]
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(ToolDefinitionError) as caught:
        ToolRegistry().add(namespace["f"], plugin="acme.plugin")
    message = str(caught.value)
    assert "plugin acme.plugin" in message and reason in message
    if case not in {"no docstring"}:
        assert "parameter" in message


def test_an_invalid_name_is_refused() -> None:
    @tool(name="has spaces")
    def f(x: int) -> str:
        """x"""
        return ""

    with pytest.raises(ToolDefinitionError, match="names must match"):
        ToolRegistry().add(f, plugin="p")


def _package(tmp_path: Path, name: str, files: dict[str, str]) -> str:
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for filename, source in files.items():
        (root / filename).write_text(source)
    sys.path.insert(0, str(tmp_path))
    return name


GOOD = (
    "from core.plugin import tool\n@tool\ndef ping(text: str) -> str:\n"
    "    '''Echo text.'''\n    return text\n"
)


def test_discovery_finds_the_builtin_plugins() -> None:
    names = discover(ToolRegistry()).names()
    assert {"calculate", "now", "date_add", "date_diff"} <= set(names)


def test_a_name_clash_between_plugins_is_an_error(tmp_path: Path) -> None:
    package = _package(tmp_path, "clashpkg", {"one.py": GOOD, "two.py": GOOD})
    with pytest.raises(
        ToolDefinitionError, match=r"defined by both plugin clashpkg\.one and plugin clashpkg\.two"
    ):
        discover(ToolRegistry(), package=package, group="none")


def test_a_broken_plugin_fails_loudly(tmp_path: Path) -> None:
    package = _package(tmp_path, "brokenpkg", {"bad.py": "import does_not_exist\n"})
    with pytest.raises(ToolDefinitionError, match=r"plugin brokenpkg\.bad failed to import"):
        discover(ToolRegistry(), package=package, group="none")
