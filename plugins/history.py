"""The platform's own context as tools: the current thread and channel histories."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.plugin import ToolContext, ToolError, tool

Limit = Annotated[int, Field(description="How many messages at most (1-200)", ge=1, le=200)]


@tool
async def read_thread(ctx: ToolContext, limit: Limit = 100, cursor: str | None = None) -> str:
    """Read the messages of the current thread (for example to summarize it).

    Args:
        cursor: from an earlier call's answer, to read older messages
    """
    if ctx.services.history is None:
        raise ToolError("this platform has no message history I can read")
    return await ctx.services.history.read_thread(limit=limit, cursor=cursor)


@tool
async def read_channel(
    ctx: ToolContext,
    channel: str | None = None,
    since: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> str:
    """Read recent messages of a channel (this one unless named). Only channels the asker is a
    member of; a private channel only when answering in it or in a direct message.

    Args:
        channel: a channel id or mention such as <#C123>; empty for this channel
        since: how far back, e.g. 2h, 3d, yesterday or 2026-11-20
        cursor: from an earlier call's answer, to read older messages
    """
    if ctx.services.history is None:
        raise ToolError("this platform has no message history I can read")
    return await ctx.services.history.read_channel(channel, since=since, limit=limit, cursor=cursor)
