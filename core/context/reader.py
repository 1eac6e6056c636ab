"""Reading a channel or thread for one asker, with the permission rules checked as the read runs.

The bot reads only channels the asking user is a member of, and never puts a private channel
into a reply anyone else can see: a private channel's messages are used only when the reply goes
to that same channel, or to a direct message with the asker. The result is capped in tokens
(newest messages kept) and pages on with a cursor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from core.events import MAIN_THREAD, ConversationKey, HistoryPage, HistoryUnavailable, PlatformPort
from core.llm.tokens import TokenCounter

DEFAULT_MAX_TOKENS = 4000
MAX_LIMIT = 200
_CHANNEL = re.compile(r"^<?#?([A-Za-z0-9]+)(?:\|[^>]*)?>?$")


class ReadRefused(Exception):
    """The read is not allowed or not possible; the message says why, for the model or user."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """Messages rendered as lines, within the token cap."""

    text: str
    messages: int
    omitted: int
    next_cursor: str | None


class ChannelReader:
    """History reads on behalf of one user, answering in one conversation."""

    def __init__(
        self,
        port: PlatformPort,
        here: ConversationKey,
        user_id: str,
        tokens: TokenCounter,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self._port = port
        self.here = here
        self._user = user_id
        self._tokens = tokens
        self._max_tokens = max_tokens

    def channel_key(self, channel: str | None) -> ConversationKey:
        """The key of a channel given as an id, `#id` or a `<#id|name>` mention (None: here)."""
        if not channel:
            return ConversationKey(
                self.here.platform, self.here.workspace, self.here.channel, MAIN_THREAD
            )
        match = _CHANNEL.match(channel.strip())
        if match is None:
            raise ReadRefused(
                f"{channel!r} is not a channel I can look up; give its id or mention it (#channel)"
            )
        return ConversationKey(self.here.platform, self.here.workspace, match.group(1), MAIN_THREAD)

    async def read(
        self,
        key: ConversationKey,
        *,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Transcript:
        """The messages of `key` (a channel, or a thread), after the permission checks."""
        label = await self.check(key)
        try:
            page = await self._port.history(
                key, since=since, limit=max(1, min(limit, MAX_LIMIT)), cursor=cursor
            )
        except HistoryUnavailable as exc:
            raise ReadRefused(str(exc)) from None
        return self.render(page, label)

    async def check(self, key: ConversationKey) -> str:
        """Refuse (`ReadRefused`) unless the asker may have `key` read into this reply; returns
        the channel's name for display."""
        try:
            access = await self._port.access(key, self._user)
        except HistoryUnavailable as exc:
            raise ReadRefused(str(exc)) from None
        name = f"#{access.name}" if access.name and not access.direct else "this conversation"
        if not access.readable:
            raise ReadRefused(
                f"I can't read {name if access.name else 'that channel'}: I'm not a member of it "
                "(invite me) or it does not exist"
            )
        if not access.member:
            raise ReadRefused(f"you are not a member of {name}, so I won't read it for you")
        if access.private and key.channel != self.here.channel:
            here = await self._port.access(self.here, self._user)
            if not (here.direct and here.member):
                raise ReadRefused(
                    f"{name} is private: I only use its messages when answering in {name} itself "
                    "or in a direct message with you"
                )
        return name

    def render(
        self, page: HistoryPage, label: str, *, tags: Sequence[str] | None = None
    ) -> Transcript:
        """Lines `[time] name: text`, oldest first, keeping the newest that fit the cap (the
        last `Transcript.messages` of the page); `tags` go before each message's line."""
        lines = [
            (f"{tags[i]} " if tags else "")
            + f"[{m.at:%Y-%m-%d %H:%M}] {m.user_name or m.user_id}{' (bot)' if m.is_bot else ''}: "
            + " ".join(m.text.split())
            for i, m in enumerate(page.messages)
        ]
        kept: list[str] = []
        used = 0
        for line in reversed(lines):
            cost = self._tokens.count(line) + 1
            if used + cost > self._max_tokens:
                break
            kept.append(line)
            used += cost
        kept.reverse()
        omitted = len(lines) - len(kept)
        head = f"{len(kept)} messages from {label}"
        if omitted:
            head += f" ({omitted} older ones left out to stay within {self._max_tokens} tokens)"
        tail = (
            f"\n(older messages exist: call again with cursor={page.next_cursor!r})"
            if page.next_cursor
            else ""
        )
        body = "\n".join(kept) if kept else "(no messages)"
        return Transcript(f"{head}:\n{body}{tail}", len(kept), omitted, page.next_cursor)
