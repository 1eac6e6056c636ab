"""Every tool the model may be offered: the plugin registry plus the tools of other sources
(MCP servers), which may change while the server runs. `enabled_tools` filters the catalog by the
conversation's switches, so `/tools enable|disable` applies to all of them alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from core.llm.types import ToolSpec
from core.tools.external import ExternalTool
from core.tools.registry import Tool, ToolRegistry

AnyTool = Tool | ExternalTool


class ToolSource(Protocol):
    """Something that contributes tools (e.g. the MCP connectors)."""

    def tools(self) -> Iterable[ExternalTool]:
        """The tools offered right now."""
        ...


class ToolSet(Protocol):
    """What the loop and the commands read: tools by name, in name order."""

    def get(self, name: str) -> AnyTool | None: ...

    def names(self) -> list[str]: ...

    def __iter__(self) -> Iterator[AnyTool]: ...

    def __len__(self) -> int: ...


class ToolCatalog:
    """Plugin tools first; a source's tool never replaces a plugin of the same name."""

    def __init__(self, registry: ToolRegistry, sources: Sequence[ToolSource] = ()) -> None:
        self.registry = registry
        self.sources = list(sources)

    def add(self, fn: Callable[..., Any], *, plugin: str) -> Tool:
        """Register a plugin function (as `ToolRegistry.add`)."""
        return self.registry.add(fn, plugin=plugin)

    def switch_names(self) -> set[str]:
        """Every name `/tools enable|disable` accepts: tools, hosted tools, hosted MCP tools."""
        names = set(self.names())
        for source in self.sources:
            names.update(getattr(source, "switch_names", list)())
        return names

    def _all(self) -> dict[str, AnyTool]:
        tools: dict[str, AnyTool] = {tool.name: tool for tool in self.registry}
        for source in self.sources:
            for tool in source.tools():
                tools.setdefault(tool.name, tool)
        return tools

    def get(self, name: str) -> AnyTool | None:
        return self.registry.get(name) or self._all().get(name)

    def names(self) -> list[str]:
        return sorted(self._all())

    def __iter__(self) -> Iterator[AnyTool]:
        return iter(sorted(self._all().values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._all())

    def specs(self, names: Iterable[str] | None = None) -> tuple[ToolSpec, ...]:
        """Specs of the named tools (all when None)."""
        tools = self._all()
        chosen = tools if names is None else {n: tools[n] for n in names if n in tools}
        return tuple(tool.spec for _, tool in sorted(chosen.items()))


def switchable(tools: ToolSet, name: str) -> bool:
    """Whether `/tools enable|disable` knows `name` (function tools, hosted tools, hosted MCP)."""
    if tools.get(name) is not None:
        return True
    return isinstance(tools, ToolCatalog) and name in tools.switch_names()


def notes(tools: ToolSet, switches: Mapping[str, bool], *, wire: str) -> list[str]:
    """Extra `/tool` lines from the sources that have some (the hosted tools)."""
    if not isinstance(tools, ToolCatalog):
        return []
    lines: list[str] = []
    for source in tools.sources:
        describe = getattr(source, "notes", None)
        if describe is not None:
            lines += describe(switches, wire=wire)
    return lines
