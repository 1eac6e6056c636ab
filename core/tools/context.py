"""What a tool learns about its caller, built from the event that led to the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace

from core.access import is_admin
from core.context.history import HistoryAccess
from core.context.ports import Ports
from core.context.reader import ChannelReader
from core.events import Event, OutboundFile
from core.llm.tokens import TokenCounter
from core.plugin import PluginServices, ToolContext


@dataclass(frozen=True, slots=True)
class ToolContexts:
    """Makes the `ToolContext` of a call: the caller, where it happens, the services lent."""

    services: PluginServices
    admin_ids: Collection[str] = frozenset()
    ports: Ports | None = None  # the platforms' history, for read_thread / read_channel
    tokens: TokenCounter | None = None

    def for_event(
        self, event: Event, send_file: Callable[[OutboundFile], Awaitable[None]]
    ) -> ToolContext:
        """The context of a tool run on behalf of `event`'s author, posting files with `send_file`."""
        return ToolContext(
            user_id=event.user.id,
            user_name=event.user.name,
            is_admin=is_admin(event.user, self.admin_ids),
            platform=event.platform.value,
            workspace=event.workspace,
            channel=event.channel,
            thread=event.thread,
            services=replace(self.services, send_file=send_file, history=self._history(event)),
        )

    def _history(self, event: Event) -> HistoryAccess | None:
        port = self.ports.get(event.platform) if self.ports is not None else None
        if port is None or self.tokens is None:
            return None
        return HistoryAccess(ChannelReader(port, event.key, event.user.id, self.tokens))
