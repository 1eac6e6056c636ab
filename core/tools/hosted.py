"""OpenAI's hosted tools (`web_search`, `code_interpreter`, `file_search`) and hosted MCP servers.

They exist on the Responses wire only: the model runs them at OpenAI and the answer arrives with
their results (web search citations as `url_citation` annotations). They are switched per
workspace and channel like every other tool (`/tools disable web_search`). On the Chat
Completions wire they are not offered; start-up and `/tool` say so instead of failing a turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from core.settings import OpenAISettings

HOSTED_NAMES = ("web_search", "code_interpreter", "file_search")


class HostedMcp(Protocol):
    """The MCP servers passed to OpenAI (core.connectors.Connectors)."""

    def hosted_entries(self, switches: Mapping[str, bool]) -> list[dict[str, Any]]: ...


class HostedTools:
    """Which hosted tools are configured, and their entries for one request."""

    def __init__(self, settings: OpenAISettings, mcp: HostedMcp | None = None) -> None:
        self._settings = settings
        self._mcp = mcp

    @property
    def configured(self) -> list[str]:
        """The hosted tools the settings offer."""
        names = []
        if self._settings.web_search:
            names.append("web_search")
        if self._settings.code_interpreter:
            names.append("code_interpreter")
        if self._settings.vector_store_ids:
            names.append("file_search")
        return names

    def tools(self) -> list[Any]:
        """No function tools: hosted tools are not called by us."""
        return []

    def switch_names(self) -> list[str]:
        """Names `/tools enable|disable` accepts for them."""
        return self.configured

    def entries(self, switches: Mapping[str, bool]) -> tuple[dict[str, Any], ...]:
        """The Responses `tools` entries for a conversation with these switches."""
        on = [name for name in self.configured if switches.get(name, True)]
        tools: list[dict[str, Any]] = []
        if "web_search" in on:
            tools.append({"type": "web_search"})
        if "code_interpreter" in on:
            tools.append({"type": "code_interpreter", "container": {"type": "auto"}})
        if "file_search" in on:
            tools.append(
                {"type": "file_search", "vector_store_ids": list(self._settings.vector_store_ids)}
            )
        if self._mcp is not None:
            tools += self._mcp.hosted_entries(switches)
        return tuple(tools)

    def notes(self, switches: Mapping[str, bool], *, wire: str) -> list[str]:
        """Lines for `/tool`: the hosted tools on here, or why they are not."""
        on = [name for name in self.configured if switches.get(name, True)]
        if not on:
            return []
        if wire != "responses":
            return [
                f"Hosted by OpenAI but unavailable on the Chat Completions wire "
                f"(OPENAI_WIRE_API): {', '.join(on)}."
            ]
        return [f"Hosted by OpenAI (the model runs them): {', '.join(on)}."]

    def unavailable_reason(self, wire: str) -> str | None:
        """Why the configured hosted tools cannot be offered, for the start-up log."""
        if self.configured and wire != "responses":
            return (
                "the Chat Completions wire has no hosted tools; set OPENAI_WIRE_API=responses "
                "(OpenAI) to offer them, or CONVERSATION_BACKEND=openai for the channels that need them"
            )
        return None
