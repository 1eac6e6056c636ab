"""RETENTION_DAYS: message text older than that is removed, once an hour, by one process.

Each `web` process runs `Retention.run`; a database lease (`job_leases`) lets one of them at a time
do a pass, at most once an hour across all of them. A pass removes, for what is older than the
cutoff: message text (rows, tokens and usage stay), moderation excerpts, pins, summaries not
updated since, feedback comments; and it deletes the server-side OpenAI conversations of
conversations idle since then (and their mappings). Passes that removed something are in the
audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import structlog

from core.conversation.remote import RemoteThreads
from core.store import Store, StoreError
from core.store.erasure import Expired

log = structlog.get_logger(__name__)

JOB = "retention"
DAY = 86_400


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one pass removed."""

    cutoff: float
    expired: Expired
    remote_deleted: int = 0
    remote_failed: int = 0


class Retention:
    """Hourly removal of text older than `days`, claimed through the database."""

    def __init__(
        self,
        store: Store,
        threads: RemoteThreads,
        *,
        days: float,
        every: float = 3600.0,
        poll: float = 300.0,
        lease: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._threads = threads
        self.days = days
        self._every, self._poll, self._lease = every, min(poll, every), lease
        self._clock = clock

    async def purge(self) -> RetentionReport:
        """One pass now, whoever else runs (see `run_once` for the claimed one)."""
        cutoff = self._clock() - self.days * DAY
        expired = await self._store.erasure.expire_text(cutoff)
        deleted = failed = 0
        for remote_id in await self._store.erasure.remote_idle_since(cutoff):
            if await self._threads.delete(remote_id):
                await self._store.erasure.forget_remote(remote_id)
                deleted += 1
            else:
                failed += 1
        report = RetentionReport(cutoff, expired, deleted, failed)
        if expired.anything or deleted or failed:
            detail = {**asdict(expired), "remote_deleted": deleted, "remote_failed": failed}
            await self._store.audit.record(
                "retention", "purge.retention", f"older than {self.days:g} days", detail
            )
            log.info("retention_pass", cutoff=cutoff, **detail)
        return report

    async def run_once(self) -> RetentionReport | None:
        """A pass if one is due and no other process is running it; else None."""
        if not await self._store.jobs.claim(JOB, interval=self._every, lease=self._lease):
            return None
        try:
            report = await self.purge()
        except BaseException:
            with contextlib.suppress(StoreError):
                await self._store.jobs.release(JOB)
            raise
        await self._store.jobs.done(JOB)
        return report

    async def run(self, until: asyncio.Event) -> None:
        """Try every `poll` seconds until `until` is set; a failed pass is logged and retried."""
        while not until.is_set():
            try:
                await self.run_once()
            except StoreError as exc:
                log.error("retention_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), self._poll)
