"""The turns a stopped process left unfinished: run again elsewhere, or closed once each.

The rule: a turn whose process stopped (kill -9, crash, power loss) before it finished is taken by
the next process that serves its platform, in one database transaction, so exactly one process
takes each turn. It goes back to the queue, and whichever process has room runs it again (a reply
it had half-shown is replaced). A turn that cannot be run again (see
`Processes.claim_orphans`) is marked `interrupted` instead, and the user is told in the
conversation to ask again, with that message stored as the turn's answer; the claim is made
before the message is posted: a crash between the two loses the notice, never posts it twice.
The user's message stays stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from core.events import Platform, PlatformPort
from core.llm.tokens import TokenCounter
from core.metrics import REQUEUED, TURNS
from core.render.replies import SafeReply
from core.store import Step, Store, StoreError

log = structlog.get_logger(__name__)

INTERRUPTED = (
    "I was interrupted (the server restarted) before I could finish answering this. "
    "Please ask again."
)


class Recovery:
    """Heartbeats for this process, and the closing of other processes' orphaned turns."""

    def __init__(
        self,
        store: Store,
        tokens: TokenCounter,
        *,
        stale_after: float,
        on_requeued: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._stale_after = stale_after
        self._on_requeued = on_requeued
        self._ports: dict[Platform, PlatformPort] = {}

    async def watch(self, port: PlatformPort) -> int:
        """Serve the port's platform's orphaned turns from now on; closes those already there."""
        self._ports[port.platform] = port
        await self._store.processes.beat()
        return await self.recover(port.platform)

    async def recover(self, platform: Platform) -> int:
        """Queue again (or close) the platform's turns of stopped processes; returns how many."""
        make_reply = self._ports[platform].reply_to
        taken = await self._store.processes.claim_orphans(platform, stale_after=self._stale_after)
        requeued = [orphan for orphan in taken if orphan.requeued]
        if requeued:
            REQUEUED.labels(platform.value).inc(len(requeued))
            log.warning(
                "turns_requeued",
                platform=platform.value,
                count=len(requeued),
                running=sum(o.was_running for o in requeued),
            )
            self._on_requeued()
        orphans = [orphan for orphan in taken if not orphan.requeued]
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
        return len(taken)

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
