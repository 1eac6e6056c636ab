"""Removing one person's text everywhere (`python -m bots purge --user ID`, the admin site).

What goes, in every platform and workspace where the id wrote: their messages' text and their
name on them; the answers to their messages; their pins; the moderation excerpts about them;
their feedback comments; the running summaries of the conversations they wrote in; and those
conversations' server-side OpenAI conversations (deleted at OpenAI, then their mappings). What
stays: every row's existence, tokens and cost (usage, turns), so budgets and reports still add
up, and the audit log. Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import structlog

from core.conversation.remote import RemoteThreads
from core.store import Store
from core.store.erasure import Erased

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What one erasure changed, and the server-side conversations it could not delete."""

    user_id: str
    erased: Erased
    remote_deleted: int = 0
    remote_failed: tuple[str, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        """Whether everything was removed (else run it again once OpenAI answers)."""
        return not self.remote_failed

    def summary(self) -> str:
        """One line for people."""
        e = self.erased
        line = (
            f"erased {self.user_id}: {e.messages} messages, {e.answers} answers, {e.pins} pins, "
            f"{e.moderation_excerpts} moderation excerpts, {e.feedback_comments} feedback "
            f"comments, {e.summaries} summaries, {self.remote_deleted} server-side conversations"
        )
        if self.remote_failed:
            line += (
                f"; {len(self.remote_failed)} server-side conversations could not be deleted "
                f"({', '.join(self.remote_failed)}): run it again once OpenAI answers"
            )
        return line


async def erase_person(
    store: Store, threads: RemoteThreads, user_id: str, *, actor: str
) -> ErasureReport:
    """Remove one person's text (see the module docstring) and record it in the audit log."""
    erased = await store.erasure.erase_person(user_id)
    deleted, failed = 0, []
    for remote_id in await store.erasure.remote_of_person(user_id):
        if await threads.delete(remote_id):
            await store.erasure.forget_remote(remote_id)
            deleted += 1
        else:
            failed.append(remote_id)
    report = ErasureReport(user_id, erased, deleted, tuple(failed))
    detail = {**asdict(erased), "remote_deleted": deleted, "remote_failed": failed}
    await store.audit.record(actor, "purge.user", user_id, detail)
    log.info("person_erased", **detail)
    return report
