"""The clicks on reply controls and approval prompts, decided once, whatever the platform.

Every click is checked before anything changes: the id must be ours and refer to a turn (or
approval) that exists, in the very conversation the click came from (a valid-looking id of
another conversation or workspace is refused like a forged one), in its current epoch (not
before a /reset), for the attempt the control was rendered for; approvals only by the person who
asked or an admin, and only while pending. Each refusal is one clear sentence for the clicker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from core import metrics
from core.access import is_admin
from core.events import Platform, Reply, User
from core.interactive import attempts
from core.interactive.controls import VALUES, Action, ControlId
from core.store.interactive import TurnState

if TYPE_CHECKING:
    from core.engine import Engine

log = structlog.get_logger(__name__)

UNKNOWN = "I don't recognise that button; it may belong to an older version of me."
GONE = "That reply no longer exists."
RESET = "This conversation was reset since; that reply is no longer part of it."
SUPERSEDED = "That answer was regenerated since; use the buttons on the newest one."
STREAMING = "That reply is still being written; wait for it to finish (or stop it) first."
NOT_RUNNING = "That reply has already finished."
NOT_YOURS = "Only the person who asked (or an admin) can do that."
THANKS = "Thanks for the feedback."
COMMENT_SAVED = "Thanks, your comment is saved with the rating."
REGENERATING = "Writing a new answer…"
STOPPING = "Stopping…"
EXPIRED_CLICK = "That request expired; the tool did not run."
OPEN = ("queued", "running")


@dataclass(frozen=True, slots=True)
class Click:
    """One click (or form submission), as the adapter read it from the platform's payload."""

    control: ControlId
    user: User
    platform: Platform
    workspace: str
    channel: str
    value: str = ""  # a rating the payload carried (Slack's feedback buttons)
    comment: str | None = None  # text of the comment form


@dataclass(frozen=True, slots=True)
class ClickResult:
    """What the clicker is told (ephemerally), and what the clicked message becomes."""

    text: str
    ok: bool = True
    updated: str = ""  # new text for the clicked message (a decided approval prompt)
    offer_comment: str = ""  # a rating was stored: the adapter may offer a comment for this value
    changed: bool = False  # something was stored or started


class Interactions:
    """Validates clicks and acts on them through the engine and the store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._store = engine.store
        self._admins = engine.settings.access.admin_user_ids
        self._stale_after = engine.settings.store.recovery_stale_seconds

    async def click(self, click: Click, replace: Callable[[], Reply] | None = None) -> ClickResult:
        """Act on one click; `replace` makes the Reply that rewrites the clicked answer (for
        Regenerate), in place where the platform can edit it."""
        action = click.control.action
        with structlog.contextvars.bound_contextvars(action=action.value, ref=click.control.ref):
            if action in (Action.APPROVE, Action.DENY):
                return await self._decide(click)
            state = await self._store.interactive.turn(click.control.ref)
            refusal = self._check_turn(click, state)
            if refusal is not None or state is None:
                log.info("click_refused", reason=refusal)
                return ClickResult(refusal or GONE, ok=False)
            if action in (Action.RATE, Action.COMMENT):
                return await self._rate(click, state)
            if not self._allowed(click.user, state.user_id):
                return ClickResult(NOT_YOURS, ok=False)
            if action == Action.STOP:
                return await self._stop(state)
            return await self._again(state, replace)

    def _check_turn(self, click: Click, state: TurnState | None) -> str | None:
        if state is None:
            return GONE
        if not _same_conversation(click, state):
            return UNKNOWN  # a real id, but of another conversation: as good as forged
        if not state.current_epoch:
            return RESET
        if click.control.attempt != state.attempt:
            return SUPERSEDED
        return None

    def _allowed(self, user: User, asker: str) -> bool:
        return user.id == asker or is_admin(user, self._admins)

    async def _rate(self, click: Click, state: TurnState) -> ClickResult:
        value = click.control.value or click.value
        if value not in VALUES:
            return ClickResult(UNKNOWN, ok=False)
        if state.status in OPEN:
            return ClickResult(STREAMING, ok=False)
        comment = click.comment.strip() if click.comment else ""
        await self._store.interactive.rate(state.turn_id, click.user.id, value, comment)
        metrics.FEEDBACK.labels(click.platform.value, value).inc()
        log.info("feedback", value=value, comment=bool(comment))
        if comment:
            return ClickResult(COMMENT_SAVED, changed=True)
        return ClickResult(THANKS, offer_comment=value, changed=True)

    async def _stop(self, state: TurnState) -> ClickResult:
        if state.status not in OPEN:
            return ClickResult(NOT_RUNNING, ok=False)
        if self._engine.stops.stop(state.turn_id):
            return ClickResult(STOPPING, changed=True)
        if await self._store.interactive.request_stop(state.turn_id):  # another process runs it
            return ClickResult(STOPPING, changed=True)
        return ClickResult(NOT_RUNNING, ok=False)

    async def _again(self, state: TurnState, replace: Callable[[], Reply] | None) -> ClickResult:
        if state.status in OPEN:
            return ClickResult(STREAMING, ok=False)
        reply = replace() if replace is not None else self._engine_reply(state)
        if reply is None:
            return ClickResult(UNKNOWN, ok=False)
        task = await attempts.regenerate(self._engine, state, reply)
        if task is None:  # another click got there first
            return ClickResult(STREAMING, ok=False)
        return ClickResult(REGENERATING, changed=True)

    def _engine_reply(self, state: TurnState) -> Reply | None:
        port = self._engine.port(state.key.platform.value)
        return port.reply_to(state.key) if port is not None else None

    async def _decide(self, click: Click) -> ClickResult:
        store = self._store.interactive
        approval = await store.approval(click.control.ref)
        state = await store.turn(approval.turn_id) if approval is not None else None
        if approval is None or state is None:
            return ClickResult(GONE, ok=False)
        if not _same_conversation(click, state):
            return ClickResult(UNKNOWN, ok=False)
        if not state.current_epoch:
            return ClickResult(RESET, ok=False)
        if not self._allowed(click.user, approval.requested_by):
            return ClickResult(
                f"Only <@{approval.requested_by}> or an admin can decide this.", ok=False
            )
        status = "approved" if click.control.action == Action.APPROVE else "denied"
        if approval.status != "pending" or not await store.decide(
            approval.id, status, click.user.id
        ):
            return await self._already(approval.id)
        metrics.TOOL_APPROVALS.labels(status).inc()
        log.info("tool_call_decided", outcome=status, tool=approval.tool)
        verb = "Approved" if status == "approved" else "Denied"
        updated = f"{verb} by <@{click.user.id}>: `{approval.tool}`."
        await self._wake_or_resume(approval.id, approval.owner)
        return ClickResult(f"{verb}.", updated=updated, changed=True)

    async def _wake_or_resume(self, approval_id: int, owner: str) -> None:
        """The waiting turn continues: here at once, on its live process by its poll, or, when
        its process is gone, resumed here (claimed once)."""
        gate = self._engine.gate
        if gate is not None and gate.waiting_here(approval_id):
            gate.notify(approval_id)
            return
        processes = self._store.processes
        if await processes.alive(owner, stale_after=self._stale_after):
            return
        if not await self._store.interactive.claim_resume(approval_id, processes.owner):
            return
        decided = await self._store.interactive.approval(approval_id)
        if decided is not None:
            await attempts.resume(self._engine, decided)

    async def _already(self, approval_id: int) -> ClickResult:
        current = await self._store.interactive.approval(approval_id)
        if current is None:
            return ClickResult(GONE, ok=False)
        if current.status == "pending":  # past its deadline, not yet swept
            if await self._store.interactive.decide(approval_id, "expired", ""):
                metrics.TOOL_APPROVALS.labels("expired").inc()
            return ClickResult(EXPIRED_CLICK, ok=False, updated=EXPIRED_CLICK)
        if current.status == "expired":
            return ClickResult(EXPIRED_CLICK, ok=False, updated=EXPIRED_CLICK)
        return ClickResult(f"That was already {current.status}.", ok=False)


def _same_conversation(click: Click, state: TurnState) -> bool:
    """Whether the click came from the turn's own conversation (platform, workspace, channel)."""
    key = state.key
    return (key.platform, key.workspace, key.channel) == (
        click.platform,
        click.workspace,
        click.channel,
    )
