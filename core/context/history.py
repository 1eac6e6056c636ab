"""`PlatformHistory` for tools: the reader of one call's asker, with errors as `ToolError`."""

from __future__ import annotations

from core.context.reader import ChannelReader, ReadRefused
from core.context.since import parse_since
from core.events import MAIN_THREAD
from core.plugin import ToolError


class HistoryAccess:
    """What `ctx.services.history` is in a tool run for a person in a conversation."""

    def __init__(self, reader: ChannelReader) -> None:
        self._reader = reader

    async def read_thread(self, *, limit: int, cursor: str | None) -> str:
        here = self._reader.here
        if here.thread == MAIN_THREAD:
            raise ToolError("this conversation is not in a thread; use read_channel instead")
        try:
            return (await self._reader.read(here, limit=limit, cursor=cursor)).text
        except ReadRefused as exc:
            raise ToolError(str(exc)) from None

    async def read_channel(
        self, channel: str | None, *, since: str | None, limit: int, cursor: str | None
    ) -> str:
        try:
            moment = parse_since(since) if since else None
            key = self._reader.channel_key(channel)
            return (await self._reader.read(key, since=moment, limit=limit, cursor=cursor)).text
        except (ReadRefused, ValueError) as exc:
            raise ToolError(str(exc)) from None
