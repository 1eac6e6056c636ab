"""Finding plugins: modules of the `plugins` package and installed entry points."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Collection
from importlib.metadata import entry_points

from core.tools.registry import ToolRegistry
from core.tools.schema import ToolDefinitionError

ENTRY_POINT_GROUP = "parley.plugins"


def discover(
    registry: ToolRegistry,
    *,
    package: str = "plugins",
    group: str = ENTRY_POINT_GROUP,
    enabled: Collection[str] | None = None,
) -> ToolRegistry:
    """Import every plugin module and register its tools; fail loudly on any broken plugin."""
    modules = []
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__, prefix=f"{package}."):
        short = info.name.rsplit(".", 1)[-1]
        if short.startswith("_") or (enabled is not None and short not in enabled):
            continue
        modules.append(info.name)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise ToolDefinitionError(
                f"plugin {name} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        registry.add_module(module)
    for entry in entry_points(group=group):
        if enabled is not None and entry.name not in enabled:
            continue
        try:
            target = entry.load()
        except Exception as exc:
            raise ToolDefinitionError(
                f"plugin {entry.name} ({entry.value}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if inspect.ismodule(target):
            registry.add_module(target)
        else:
            registry.add(target, plugin=entry.name)
    return registry
