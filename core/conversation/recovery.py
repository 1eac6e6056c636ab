"""Closing the turns a stopped process left unfinished: once each, with a clear message.

The rule: a turn whose process stopped (kill -9, crash, power loss) before it finished is marked
`interrupted` by the next process that serves its platform, which tells the user in the
conversation to ask again and stores that message as the turn's answer. The claim is one database
transaction, so exactly one process claims each turn, and it is made before the message is posted:
a crash between the two loses the notice, never posts it twice. The user's message stays stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from core.events import ConversationKey, Platform, Reply
from core.llm.tokens import TokenCounter
from core.metrics import TURNS
from core.render.replies import SafeReply
from core.store import Store, StoreError

log = structlog.get_logger(__name__)

INTERRUPTED = (
    "I was interrupted (the server restarted) before I could finish answering this. "
    "Please ask again."
)

ReplyFactory = Callable[[ConversationKey], Reply]


class Recovery:
    """Heartbeats for this process, and the closing of other processes' orphaned turns."""

    def __init__(self, store: Store, tokens: TokenCounter, *, stale_after: float) -> None:
        self._store = store
        self._tokens = tokens
        self._stale_after = stale_after
        self._platforms: dict[Platform, ReplyFactory] = {}

    async def attach(self, platform: Platform, make_reply: ReplyFactory) -> int:
        """Serve `platform`'s orphaned turns from now on; closes those already there."""
        self._platforms[platform] = make_reply
        await self._store.processes.beat()
        return await self.recover(platform)

    async def recover(self, platform: Platform) -> int:
        """Close the platform's turns of stopped processes; returns how many."""
        make_reply = self._platforms[platform]
        orphans = await self._store.processes.claim_orphans(platform, stale_after=self._stale_after)
        for orphan in orphans:
            TURNS.labels(platform.value, "interrupted").inc()
            await SafeReply(make_reply(orphan.key)).finish(INTERRUPTED)
            await self._store.finish_turn(
                orphan.turn_id,
                orphan.conversation,
                steps=[("assistant", INTERRUPTED, (), "", self._tokens.count(INTERRUPTED))],
                status="interrupted",
                error="process stopped",
            )
        if orphans:
            log.warning(
                "turns_interrupted",
                platform=platform.value,
                count=len(orphans),
                running=sum(o.was_running for o in orphans),
            )
        return len(orphans)

    async def run(self, stop: asyncio.Event) -> None:
        """Beat and look for orphans every third of the stale time, until `stop`."""
        interval = self._stale_after / 3
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            try:
                await self._store.processes.beat()
                for platform in list(self._platforms):
                    await self.recover(platform)
            except StoreError as exc:
                log.error("recovery_check_failed", error=str(exc))
        with contextlib.suppress(StoreError):
            await self._store.processes.leave()
