"""The tool registry: typed functions registered once, offered as strict tools and slash commands."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from core.llm.types import ToolSpec
from core.plugin import MARK, ToolOptions
from core.tools.schema import (
    NAME,
    ToolDefinitionError,
    args_model,
    docstring_parts,
    strict_schema,
    takes_context,
)


@dataclass(frozen=True, slots=True)
class Tool:
    """One registered tool."""

    name: str
    description: str
    plugin: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    defaults: dict[str, Any]
    schema: dict[str, Any]
    takes_context: bool
    is_async: bool
    admin_only: bool = False
    timeout: float | None = None
    slash: bool = True
    approval: bool = False  # a model's call waits for a person (any tool source may set it)

    @property
    def spec(self) -> ToolSpec:
        """What the model is offered."""
        return ToolSpec(self.name, self.description, self.schema, strict=True)

    @property
    def summary(self) -> str:
        """The first sentence of the description."""
        return self.description.split(". ")[0].rstrip(".")


def build_tool(fn: Callable[..., Any], *, plugin: str, options: ToolOptions | None = None) -> Tool:
    """Turn a typed function into a tool, or raise `ToolDefinitionError`."""
    options = options or getattr(fn, MARK, None) or ToolOptions()
    name = options.name or fn.__name__
    if not NAME.match(name):
        raise ToolDefinitionError(
            f"plugin {plugin}, tool {name!r}: names must match {NAME.pattern}"
        )
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise ToolDefinitionError(
            f"plugin {plugin}, tool {name}: generators are not supported; return a value"
        )
    description, _ = docstring_parts(fn)
    if not description:
        raise ToolDefinitionError(
            f"plugin {plugin}, tool {name}: add a docstring; it is the tool's description"
        )
    model, defaults = args_model(fn, name, plugin)
    return Tool(
        name=name,
        description=description,
        plugin=plugin,
        fn=fn,
        args_model=model,
        defaults=defaults,
        schema=strict_schema(model, name, plugin),
        takes_context=takes_context(fn),
        is_async=inspect.iscoroutinefunction(fn),
        admin_only=options.admin_only,
        timeout=options.timeout,
        slash=options.slash,
        approval=options.approval,
    )


def one_line(text: str) -> str:
    """A message on one line (pydantic's span several, with a documentation link)."""
    lines = (line.strip() for line in str(text).splitlines())
    return " ".join(
        line for line in lines if line and not line.startswith("For further information")
    )


def first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of a message, on one line and at most `limit` characters."""
    line = one_line(text)
    head = line.split(". ", 1)[0].rstrip(".")
    return head if len(head) <= limit else head[: limit - 1] + "…"


def describe_function(fn: object) -> str:
    """`get_forecast()` for a function; its repr for anything else."""
    name = getattr(fn, "__name__", None)
    return f"{name}()" if isinstance(name, str) else repr(fn)


def _label(fn: Callable[..., Any]) -> str:
    """`get_forecast()`, plus the tool name when `@tool(name=...)` gives another."""
    label = describe_function(fn)
    name = getattr(getattr(fn, MARK, None), "name", None)
    return f"{label} (tool {name})" if name and name != getattr(fn, "__name__", None) else label


def _located(message: str, plugin: str, fn: Callable[..., Any]) -> str:
    """`plugin P: fn(): <problem>` from build_tool's `plugin P, tool T: <problem>`."""
    where = re.match(rf"plugin {re.escape(plugin)}, tool (?:'[^']*'|[^\s:,]+)(?:: |, )", message)
    problem = message[where.end() :] if where else message
    return f"plugin {plugin}: {_label(fn)}: {one_line(problem)}"


class ToolRegistry:
    """Tools by name; a name registered twice is an error naming both plugins."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def add(self, fn: Callable[..., Any], *, plugin: str) -> Tool:
        """Register one function; any problem is a one-line `ToolDefinitionError` naming the
        plugin, the function and the fix."""
        if not callable(fn):
            raise ToolDefinitionError(
                f"plugin {plugin}: {fn!r} is not a function; point the plugin at a module of "
                "@tool functions or at one function"
            )
        try:
            tool = build_tool(fn, plugin=plugin)
        except ToolDefinitionError as exc:
            raise ToolDefinitionError(_located(str(exc), plugin, fn)) from exc
        except Exception as exc:  # pydantic, inspect: a signature nobody foresaw
            raise ToolDefinitionError(
                f"plugin {plugin}: {_label(fn)}: cannot be made a tool "
                f"({type(exc).__name__}: {first_sentence(str(exc))}); give every parameter a plain "
                "type (str, int, float, bool, Literal, list[...], a pydantic model)"
            ) from exc
        existing = self._tools.get(tool.name)
        if existing is not None:
            raise ToolDefinitionError(
                f"tool name {tool.name!r} is defined by both plugin {existing.plugin} and plugin "
                f"{plugin} ({describe_function(existing.fn)} and {describe_function(fn)}); "
                "rename one with @tool(name=...)"
            )
        self._tools[tool.name] = tool
        return tool

    def add_module(self, module: ModuleType, *, plugin: str | None = None) -> list[Tool]:
        """Register every `@tool` function of a module (as `plugin`, default its name)."""
        return [
            self.add(value, plugin=plugin or module.__name__)
            for _, value in vars(module).items()
            if callable(value)
            and hasattr(value, MARK)
            and getattr(value, "__module__", "") == module.__name__
        ]

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(sorted(self._tools.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._tools)

    def specs(self, names: Iterable[str] | None = None) -> tuple[ToolSpec, ...]:
        """Specs of the named tools (all when None)."""
        chosen = (
            self._tools if names is None else {n: self._tools[n] for n in names if n in self._tools}
        )
        return tuple(tool.spec for _, tool in sorted(chosen.items()))
