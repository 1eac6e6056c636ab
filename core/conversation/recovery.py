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

import structlog

from core.events import Platform, PlatformPort
from core.llm.tokens import TokenCounter
from core.metrics import TURNS
from core.render.replies import SafeReply
from core.store import Step, Store, StoreError

log = structlog.get_logger(__name__)

INTERRUPTED = (
    "I was interrupted (the server restarted) before I could finish answering this. "
    "Please ask again."
)


class Recovery:
    """Heartbeats for this process, and the closing of other processes' orphaned turns."""

    def __init__(self, store: Store, tokens: TokenCounter, *, stale_after: float) -> None:
        self._store = store
        self._tokens = tokens
        self._stale_after = stale_after
        self._ports: dict[Platform, PlatformPort] = {}

    async def watch(self, port: PlatformPort) -> int:
        """Serve the port's platform's orphaned turns from now on; closes those already there."""
        self._ports[port.platform] = port
        await self._store.processes.beat()
        return await self.recover(port.platform)

    async def recover(self, platform: Platform) -> int:
        """Close the platform's turns of stopped processes; returns how many."""
        make_reply = self._ports[platform].reply_to
        orphans = await self._store.processes.claim_orphans(platform, stale_after=self._stale_after)
        for orphan in orphans:
            TURNS.labels(platform.value, "interrupted").inc()
            await SafeReply(make_reply(orphan.key)).finish(INTERRUPTED)
            await self._store.finish_turn(
                orphan.turn_id,
                orphan.conversation,
                steps=[Step("assistant", INTERRUPTED, tokens=self._tokens.count(INTERRUPTED))],
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

    async def run(self, until: asyncio.Event) -> None:
        """Beat and look for orphans every third of the stale time, until `until` is set.

        The heartbeat stays after it returns: a stopping process keeps it until its own turns are
        drained (then `leave`), so no other process takes them for orphans meanwhile.
        """
        interval = self._stale_after / 3
        while not until.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), interval)
            if until.is_set():
                return
            try:
                await self._store.processes.beat()
                for platform in list(self._ports):
                    await self.recover(platform)
            except StoreError as exc:
                log.error("recovery_check_failed", error=str(exc))

    async def leave(self) -> None:
        """Forget this process's heartbeat (a clean stop, after its turns are drained)."""
        with contextlib.suppress(StoreError):
            await self._store.processes.leave()
