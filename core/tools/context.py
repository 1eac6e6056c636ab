"""What a tool learns about its caller, built from the event that led to the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace

from core.access import is_admin
from core.events import Event, OutboundFile
from core.plugin import PluginServices, ToolContext


@dataclass(frozen=True, slots=True)
class ToolContexts:
    """Makes the `ToolContext` of a call: the caller, where it happens, the services lent."""

    services: PluginServices
    admin_ids: Collection[str] = frozenset()

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
            services=replace(self.services, send_file=send_file),
        )
