"""Discord API errors explained for operators: what failed and what to do about it."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import discord

T = TypeVar("T")

# Discord's JSON error codes worth a specific hint.
_FIXES = {
    10003: "the channel or thread was deleted",
    10008: "the message was deleted",
    10015: "the interaction expired (15 minutes) before the answer was ready",
    50001: "the bot cannot see this channel; give it View Channel there",
    50013: (
        "the bot lacks a permission here (Send Messages, Send Messages in Threads, Create Public "
        "Threads, Read Message History, Attach Files); re-invite it with the URL that "
        "`python -m bots discord-sync` prints, or fix the channel's overrides"
    ),
    50027: "the interaction token expired (15 minutes) before the answer was ready",
    50083: "the thread is archived; unarchive it or start a new conversation",
}


class DiscordCallFailed(Exception):
    """A Discord API call failed; the message names the error and the fix."""


def explain(exc: discord.HTTPException) -> str:
    """One line: Discord's status, code and text, and what the operator can do."""
    fix = _FIXES.get(exc.code)
    if fix is None:
        if isinstance(exc, discord.Forbidden):
            fix = _FIXES[50013]
        elif isinstance(exc, discord.NotFound):
            fix = "the channel, thread or message no longer exists"
        else:
            fix = "Discord failed; later messages will be tried again"
    return f"HTTP {exc.status}, code {exc.code}: {exc.text[:200]} (fix: {fix})"


async def explained(call: Awaitable[T]) -> T:
    """Await a Discord call, turning its HTTP error into a `DiscordCallFailed` with the fix."""
    try:
        return await call
    except discord.HTTPException as exc:
        raise DiscordCallFailed(explain(exc)) from None
