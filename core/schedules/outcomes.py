"""How a run ends: stored once with its outcome, counted in `/metrics`, and — for a paused schedule
or the first of a streak of skipped runs — one short notice in the conversation."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from core import metrics
from core.context.ports import Ports
from core.events import ConversationKey
from core.store import Store
from core.store.schedules import Run

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A run's end: `status` is done, empty, skipped or failed; `detail` says why (stored);
    `notice` is told to the conversation; `pause` stops the schedule (its owner left)."""

    status: str
    detail: str = ""
    notice: str = ""
    pause: bool = False
    covered_until: float | None = None


async def post(ports: Ports, key: ConversationKey, text: str) -> str | None:
    """Post `text` into the conversation as a message; None when it was posted, else why not."""
    port = ports.get(key.platform)
    if port is None:
        return f"no {key.platform.value} connection in this process"
    reply = port.reply_to(key)
    try:
        await reply.begin()
        await reply.finish(text)
    except Exception as exc:  # a platform error: the run's outcome says so
        log.warning("scheduled_post_failed", conversation=str(key), error=f"{type(exc).__name__}")
        return f"posting failed ({type(exc).__name__}: {str(exc)[:200]})"
    return None


async def conclude(store: Store, ports: Ports, run: Run, outcome: Outcome, *, now: float) -> bool:
    """Store the run's outcome (once: False when it was closed already), count it, and tell the
    conversation what it needs to know."""
    schedule = run.schedule
    stored = await store.schedules.finish(
        run, outcome.status, outcome.detail, now=now, covered_until=outcome.covered_until
    )
    if not stored:
        return False
    metrics.SCHEDULED_RUNS.labels(schedule.kind, outcome.status).inc()
    log.info(
        "scheduled_run",
        schedule=schedule.id,
        run=run.id,
        kind=schedule.kind,
        outcome=outcome.status,
        detail=outcome.detail,
        catch_up=run.catch_up,
    )
    if outcome.pause:
        if await store.schedules.pause(schedule.id, outcome.detail, now=now) and outcome.notice:
            await post(ports, schedule.key, outcome.notice)
    elif outcome.notice and await store.schedules.note_skip(schedule.id):
        await post(ports, schedule.key, outcome.notice)
    return True
