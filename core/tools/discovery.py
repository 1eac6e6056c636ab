"""Finding plugins: modules of the `plugins` package and installed entry points.

Whatever goes wrong while a plugin is imported or registered becomes one `ToolDefinitionError`
whose message is one line naming the plugin, the function where known, and the fix; the server
prints it and stops instead of starting with a plugin missing.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import linecache
import pkgutil
import re
from collections.abc import Collection, Iterable
from importlib.metadata import EntryPoint, entry_points
from types import TracebackType
from typing import Any

from core.plugin import tool
from core.tools.registry import ToolRegistry, first_sentence
from core.tools.schema import ToolDefinitionError

ENTRY_POINT_GROUP = "parley.plugins"

TOOL_KEYWORDS = [
    name
    for name, parameter in inspect.signature(tool).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
]
_UNEXPECTED = re.compile(r"tool\(\) got an unexpected keyword argument '(\w+)'")
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)")


def discover(
    registry: ToolRegistry,
    *,
    package: str = "plugins",
    group: str = ENTRY_POINT_GROUP,
    enabled: Collection[str] | None = None,
    entries: Iterable[EntryPoint] | None = None,
) -> ToolRegistry:
    """Import every plugin module and register its tools; fail loudly on any broken plugin.

    `entries` replaces the installed entry points of `group` (tests).
    """
    try:
        root = importlib.import_module(package)
    except Exception as exc:
        raise ToolDefinitionError(_import_failure(f"package {package}", exc)) from exc
    modules = []
    for info in pkgutil.iter_modules(root.__path__, prefix=f"{package}."):
        short = info.name.rsplit(".", 1)[-1]
        if short.startswith("_") or (enabled is not None and short not in enabled):
            continue
        modules.append(info.name)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise ToolDefinitionError(_import_failure(name, exc)) from exc
        registry.add_module(module)
    for entry in entry_points(group=group) if entries is None else entries:
        if enabled is not None and entry.name not in enabled:
            continue
        target = _load(entry)
        if inspect.ismodule(target):
            registry.add_module(target, plugin=entry.name)
        else:
            registry.add(target, plugin=entry.name)
    return registry


def _load(entry: EntryPoint) -> Any:
    """The entry point's module or function, or a one-line `ToolDefinitionError`."""
    try:
        return entry.load()
    except Exception as exc:
        dist = getattr(entry, "dist", None)
        remedy = f"uninstall {dist.name}" if dist is not None else "uninstall its package"
        if isinstance(exc, AttributeError) and _tool_misuse(exc) is None:
            remedy = f"correct the entry point in group {entry.group}, or {remedy}"
        message = _import_failure(
            entry.name, exc, detail=f" ({entry.value})", verb="failed to load", remedy=remedy
        )
        raise ToolDefinitionError(message) from exc


def _import_failure(
    plugin: str,
    exc: BaseException,
    *,
    detail: str = "",
    verb: str = "failed to import",
    remedy: str = "remove it",
) -> str:
    """One line for a plugin that could not be imported: a misused `@tool` decorator named with
    the function it decorates, anything else with where it happened and how to fix it."""
    misuse = _tool_misuse(exc)
    if misuse is not None:
        return f"plugin {plugin}: {misuse}"
    where = _where(exc)
    at = f" ({where[0]}:{where[1]})" if where else ""
    if isinstance(exc, SyntaxError):
        fix = "fix the syntax error"
    elif isinstance(exc, ModuleNotFoundError) and exc.name:
        fix = f"install {exc.name.split('.')[0]}"
    else:
        fix = "fix the plugin"
    return (
        f"plugin {plugin}{detail} {verb}{at}: {type(exc).__name__}: "
        f"{first_sentence(str(exc))}; {fix}, or {remedy}"
    )


def _tool_misuse(exc: BaseException) -> str | None:
    """`get_forecast(): @tool() got an unexpected keyword 'aproval'; accepted: …` when the import
    failed in a `@tool(...)` line; None for any other failure."""
    accepted = ", ".join(TOOL_KEYWORDS)
    function = _decorated_function(exc.__traceback__)
    label = f"{function}()" if function else "a @tool function"
    if isinstance(exc, TypeError) and (match := _UNEXPECTED.search(str(exc))):
        keyword = match.group(1)
        close = difflib.get_close_matches(keyword, TOOL_KEYWORDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"{label}: @tool() got an unexpected keyword {keyword!r}{hint}; accepted: {accepted}"
    positional = isinstance(exc, TypeError) and str(exc).startswith("tool() takes")
    named = isinstance(exc, AttributeError) and "__parley_tool__" in str(exc)
    if positional or named:  # @tool("name") or @tool("name", True)
        return (
            f"{label}: @tool() takes keywords only, e.g. @tool(name={function or 'name'!r}); "
            f"accepted: {accepted}"
        )
    return None


def _module_frames(tb: TracebackType | None) -> list[tuple[str, int]]:
    """(file, line) of each module-level frame of a traceback, outermost first."""
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "<module>" and not code.co_filename.startswith("<"):
            frames.append((code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _where(exc: BaseException) -> tuple[str, int] | None:
    """The plugin line that failed: a syntax error's own location, else the innermost module-level
    frame (the import statement or the top-level code that raised)."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return exc.filename, exc.lineno
    frames = _module_frames(exc.__traceback__)
    return frames[-1] if frames else None


def _decorated_function(tb: TracebackType | None) -> str | None:
    """The name of the function defined below the failing decorator line, if any."""
    frames = _module_frames(tb)
    if not frames:
        return None
    filename, line = frames[-1]
    for number in range(line, line + 30):
        text = linecache.getline(filename, number)
        if not text:
            break
        if match := _DEF.match(text):
            return match.group(1)
    return None
