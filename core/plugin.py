"""The public plugin API: the only part of the core that plugins import.

A plugin is a module of plain typed functions marked with `@tool`. The argument schema comes from the
type hints and the docstring; the same model validates what the model sends and what people type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, overload

import aiohttp
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.events import OutboundFile

__all__ = [
    "ImageMaker",
    "KnowledgeSearch",
    "OutboundFile",
    "PlatformHistory",
    "PluginConfig",
    "PluginServices",
    "ToolContext",
    "ToolError",
    "ToolOptions",
    "tool",
]

F = TypeVar("F", bound=Callable[..., Any])
MARK = "__parley_tool__"


@dataclass(frozen=True, slots=True)
class ToolOptions:
    """How a function is exposed: its tool name, who may run it, its time limit, and whether a
    call by the model waits for a person's approval."""

    name: str | None = None
    admin_only: bool = False
    timeout: float | None = None
    slash: bool = True
    approval: bool = False


@overload
def tool(fn: F) -> F: ...


@overload
def tool(
    *,
    name: str | None = None,
    admin_only: bool = False,
    timeout: float | None = None,
    slash: bool = True,
    approval: bool = False,
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None,
    *,
    name: str | None = None,
    admin_only: bool = False,
    timeout: float | None = None,
    slash: bool = True,
    approval: bool = False,
) -> F | Callable[[F], F]:
    """Mark a function as a tool. Only metadata is attached: registration happens at start-up.

    With `approval=True` a call the model makes waits until the person who asked (or an admin)
    approves it; a denial or TOOL_APPROVAL_MINUTES without an answer is the tool's result.
    """

    def mark(function: F) -> F:
        setattr(function, MARK, ToolOptions(name, admin_only, timeout, slash, approval))
        return function

    return mark(fn) if fn is not None else mark


class Passage(Protocol):
    """One search hit of the knowledge base."""

    @property
    def source(self) -> str: ...

    @property
    def text(self) -> str: ...


class KnowledgeSearch(Protocol):
    """The team's knowledge base (files added with `python -m bots ingest`)."""

    async def search(self, query: str, k: int = 4) -> Sequence[Passage]: ...


class ImageMaker(Protocol):
    """Image generation: PNG bytes for a prompt."""

    async def generate(self, prompt: str, size: str) -> bytes: ...


class PlatformHistory(Protocol):
    """The platform's own messages, read for the caller under the permission rules (only
    channels the caller is a member of; a private channel only into that channel or a DM).
    Refusals and rate limits raise `ToolError` with the reason."""

    async def read_thread(self, *, limit: int, cursor: str | None) -> str: ...

    async def read_channel(
        self, channel: str | None, *, since: str | None, limit: int, cursor: str | None
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class PluginServices:
    """What the bot lends to tools: a shared HTTP session, file upload into the conversation,
    the knowledge base, image generation and the platform's history (None where the server or
    the platform has none)."""

    http: aiohttp.ClientSession | None = None
    send_file: Callable[[OutboundFile], Awaitable[None]] | None = None
    knowledge: KnowledgeSearch | None = None
    images: ImageMaker | None = None
    history: PlatformHistory | None = None


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who called a tool and where; declare a first parameter of this type to receive it."""

    user_id: str
    user_name: str
    is_admin: bool
    platform: str
    workspace: str
    channel: str
    thread: str
    services: PluginServices = field(default_factory=PluginServices)


class ToolError(Exception):
    """An expected failure; its message goes back to the model or the person verbatim."""


class PluginConfig(BaseSettings):
    """Typed plugin settings; subclasses set `env_prefix="PLUGIN_<NAME>_"` in their model_config."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")
