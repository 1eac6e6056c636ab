"""`/digest` and `/schedule`: set up, show, run now and cancel scheduled work.

Bad input gets one answer naming the problem, and nothing is scheduled: a malformed or
too-frequent cron expression, an unknown time zone, a channel the bot cannot read or the person
is not a member of (so only members of a private channel can set one up there).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.events import ConversationKey, Event, HistoryUnavailable
from core.schedules.digests import DigestInput, Digests, channel_of
from core.schedules.outcomes import Outcome, conclude
from core.schedules.timing import (
    ScheduleError,
    When,
    day_of,
    describe,
    looks_like_zone,
    previous_run,
    when,
)
from core.settings import Settings
from core.store import Store
from core.store.schedules import NewSchedule, Schedule

DIGEST_USAGE = (
    "usage: /digest daily 09:00 [time zone] | /digest weekly mon 09:00 [time zone] | "
    "/digest weekdays 09:00 [time zone] | /digest off | /digest now"
)
SCHEDULE_USAGE = (
    'usage: /schedule "every monday 9:00 [time zone]" <prompt> (or cron: "0 9 * * mon") | '
    "/schedule list | /schedule cancel <number>"
)
MAX_PER_CHANNEL = 25
MAX_PROMPT_CHARS = 4000
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


@dataclass(frozen=True, slots=True)
class Answer:
    """What a command answers; `public` answers are posted for everyone in the conversation."""

    text: str
    ok: bool = True
    public: bool = False


class ScheduleCommands:
    """The logic behind `/digest` and `/schedule`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        digests: Digests,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings.schedules
        self._store = store
        self._digests = digests
        self.clock = clock

    # -- /digest ---------------------------------------------------------------------------

    async def digest(self, event: Event, args: str, *, admin: bool) -> Answer:
        """`/digest daily 09:00 [zone]`, `weekly mon 09:00`, `weekdays 09:00`, `off`, `now`, or
        nothing (what is set up here)."""
        words = args.split()
        key = channel_of(event.key)
        current = await self._store.schedules.digest_of(key)
        if not words:
            if current is None:
                return Answer(f"No digest is set up here.\n{DIGEST_USAGE}")
            return Answer(self._describe(current))
        action = words[0].lower()
        if action in ("off", "stop", "cancel"):
            if current is None:
                return Answer("There is no digest here to turn off.", ok=False)
            if refusal := self._not_theirs(current, event, admin):
                return refusal
            await self._store.schedules.cancel(current.id, now=self.clock())
            return Answer(
                f"The digest of this channel is off (turned off by {_who(event)}).", public=True
            )
        if action == "now":
            if current is None:
                return Answer(
                    "No digest is set up here: set one with `/digest daily 09:00`, or use "
                    "`/summarize` for a one-off summary.",
                    ok=False,
                )
            return await self._now(current)
        try:
            timing = self._digest_when(words)
        except ScheduleError as exc:
            return Answer(f"{exc}. Nothing was scheduled.\n{DIGEST_USAGE}", ok=False)
        if current is not None and (refusal := self._not_theirs(current, event, admin)):
            return refusal
        if problem := await self._place_problem(key, event):
            return Answer(f"{problem}. Nothing was scheduled.", ok=False)
        now = self.clock()
        first = timing.next_after(now)
        schedule = await self._store.schedules.add(
            NewSchedule(
                "digest",
                key,
                event.user.id,
                event.user.name,
                timing.spec,
                timing.cron,
                timing.time_zone,
                first,
                covered_until=previous_run(timing.cron, timing.time_zone, first),
            ),
            now=now,
        )
        verb = "changed" if current is not None else "set up"
        return Answer(
            f"Digest of this channel {verb} by {_who(event)}: {schedule.spec} "
            f"(cron `{schedule.cron}` in {schedule.time_zone}). The first is "
            f"{describe(schedule.next_run_at, schedule.time_zone)}.",
            public=True,
        )

    def _digest_when(self, words: list[str]) -> When:
        zone = words.pop() if len(words) > 2 and looks_like_zone(words[-1]) else ""
        kind, rest = words[0].lower(), words[1:]
        phrases = {"daily": "every day", "weekdays": "every weekday", "weekly": "every"}
        if kind not in phrases or not rest or (kind == "weekly") != (len(rest) == 2):
            raise ScheduleError(f"{' '.join(words)!r} is not a digest schedule")
        if kind == "weekly":
            day_of(rest[0].lower())
        phrase = f"{phrases[kind]} {' '.join(rest)}"
        timing = when(
            f"{phrase} {zone}".strip(),
            default_zone=self._settings.time_zone,
            min_minutes=self._settings.min_minutes,
            now=self.clock(),
        )
        spec = " ".join([*words, zone or timing.time_zone])
        return When(spec, timing.cron, timing.time_zone)

    async def _now(self, schedule: Schedule) -> Answer:
        now = self.clock()
        run = await self._store.schedules.claim_now(schedule.id, now=now)
        if run is None:
            return Answer("A digest of this channel is being made right now.", ok=False)
        prepared = await self._digests.prepare(run, now=now, batch=False)
        outcome = (
            await self._digests.run_direct(run, prepared, now=now)
            if isinstance(prepared, DigestInput)
            else prepared
        )
        await conclude(self._store, self._digests.ports, run, outcome, now=self.clock())
        return _said(outcome)

    # -- /schedule -------------------------------------------------------------------------

    async def schedule(self, event: Event, args: str, *, admin: bool) -> Answer:
        """`/schedule "when" prompt`, `/schedule list`, `/schedule cancel N`."""
        text = args.strip().translate(_QUOTES)
        first = text.split(maxsplit=1)[0].lower() if text else ""
        if not text or first == "help":
            return Answer(SCHEDULE_USAGE)
        if first == "list":
            return await self._list(event, admin)
        if first == "cancel":
            return await self._cancel(event, text.split(maxsplit=1)[1:], admin)
        try:
            written, prompt = _split_when(text)
            timing = when(
                written,
                default_zone=self._settings.time_zone,
                min_minutes=self._settings.min_minutes,
                now=self.clock(),
            )
        except ScheduleError as exc:
            return Answer(f"{exc}. Nothing was scheduled.\n{SCHEDULE_USAGE}", ok=False)
        if len(prompt) > MAX_PROMPT_CHARS:
            return Answer(
                f"The prompt has {len(prompt):,} characters, more than the {MAX_PROMPT_CHARS:,} a "
                "schedule takes. Nothing was scheduled.",
                ok=False,
            )
        if problem := await self._place_problem(channel_of(event.key), event):
            return Answer(f"{problem}. Nothing was scheduled.", ok=False)
        here = await self._store.schedules.in_channel(event.key)
        if len(here) >= MAX_PER_CHANNEL:
            return Answer(
                f"This channel has {len(here)} schedules, the most it may have; cancel one with "
                "`/schedule cancel N` first. Nothing was scheduled.",
                ok=False,
            )
        now = self.clock()
        schedule = await self._store.schedules.add(
            NewSchedule(
                "prompt",
                event.key,
                event.user.id,
                event.user.name,
                timing.spec,
                timing.cron,
                timing.time_zone,
                timing.next_after(now),
                prompt=prompt,
            ),
            now=now,
        )
        return Answer(
            f"Scheduled #{schedule.id}: {schedule.spec} (cron `{schedule.cron}` in "
            f"{schedule.time_zone}), first run {describe(schedule.next_run_at, schedule.time_zone)}"
            f". Cancel it with `/schedule cancel {schedule.id}`."
        )

    async def _list(self, event: Event, admin: bool) -> Answer:
        shown = [
            s
            for s in await self._store.schedules.in_channel(event.key)
            if admin or s.owner_id == event.user.id
        ]
        if not shown:
            whose = "" if admin else " of yours"
            return Answer(f"No schedules{whose} here.\n{SCHEDULE_USAGE}")
        return Answer("Schedules here:\n" + "\n".join(self._line(s) for s in shown))

    async def _cancel(self, event: Event, rest: list[str], admin: bool) -> Answer:
        number = rest[0].strip().lstrip("#") if rest else ""
        if not number.isdigit():
            return Answer(
                "usage: /schedule cancel <number> (the numbers are in /schedule list)", ok=False
            )
        schedule = await self._store.schedules.get(int(number))
        key = event.key
        if (
            schedule is None
            or schedule.status == "cancelled"
            or (schedule.key.platform, schedule.key.workspace) != (key.platform, key.workspace)
        ):
            return Answer(f"There is no schedule #{number}.", ok=False)
        if refusal := self._not_theirs(schedule, event, admin):
            return refusal
        await self._store.schedules.cancel(schedule.id, now=self.clock())
        return Answer(f"Cancelled #{schedule.id} ({schedule.spec}).")

    # -- shared ----------------------------------------------------------------------------

    async def _place_problem(self, key: ConversationKey, event: Event) -> str | None:
        """Why work may not be scheduled in this channel by this person, or None."""
        port = self._digests.ports.get(key.platform)
        if port is None:
            return (
                "Scheduled work needs the platform's history, which this server does not have here"
            )
        try:
            access = await port.access(key, event.user.id)
        except HistoryUnavailable as exc:
            return f"I can't check this channel right now ({exc})"
        name = f"#{access.name}" if access.name and not access.direct else "this channel"
        if not access.readable:
            return f"I can't read {name}: invite me to it first (I'm not a member, or it does not exist)"
        if not access.member:
            return f"Only members of {name} can schedule work there"
        return None

    def _not_theirs(self, schedule: Schedule, event: Event, admin: bool) -> Answer | None:
        """Only its owner or an admin changes a schedule; a paused one (its owner left) anyone
        may take over or cancel."""
        if admin or schedule.owner_id == event.user.id or schedule.status == "paused":
            return None
        return Answer(
            f"#{schedule.id} belongs to {schedule.owner_name or schedule.owner_id}: only they or "
            "an admin can change or cancel it.",
            ok=False,
        )

    def _describe(self, schedule: Schedule) -> str:
        lines = [self._line(schedule)]
        if schedule.status == "paused":
            lines.append(f"Paused: {schedule.last_detail}. Set it up again to resume it.")
        return "\n".join(lines)

    def _line(self, schedule: Schedule) -> str:
        what = "digest" if schedule.kind == "digest" else f"prompt {_short(schedule.prompt)!r}"
        when_next = (
            f"next {describe(schedule.next_run_at, schedule.time_zone)}"
            if schedule.status == "active"
            else schedule.status
        )
        last = f"; last run: {schedule.last_outcome}" if schedule.last_outcome else ""
        if schedule.last_outcome and schedule.last_detail:
            last += f" ({schedule.last_detail})"
        owner = schedule.owner_name or schedule.owner_id
        return f"#{schedule.id} {what}, {schedule.spec}, by {owner}: {when_next}{last}"


def _split_when(text: str) -> tuple[str, str]:
    """`"when" prompt` into its two parts; `ScheduleError` when the time is not quoted."""
    quote = text[:1]
    if quote not in ('"', "'"):
        raise ScheduleError(
            'put the time in quotes, then the prompt: /schedule "every monday 9:00" <prompt>'
        )
    end = text.find(quote, 1)
    if end < 0:
        raise ScheduleError(f"the quoted time has no closing {quote}")
    prompt = text[end + 1 :].strip()
    if not prompt:
        raise ScheduleError("say what to run after the time: the prompt is missing")
    return text[1:end], prompt


def _short(text: str, limit: int = 60) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _who(event: Event) -> str:
    return event.user.name or event.user.id


def _said(outcome: Outcome) -> Answer:
    if outcome.status == "done":
        return Answer(f"Posted the digest ({outcome.detail}).")
    if outcome.status == "empty":
        return Answer("No new messages since the last digest: nothing to post.")
    return Answer(f"The digest was not posted: {outcome.detail}.", ok=False)
