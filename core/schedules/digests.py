"""Channel digests: the channel's messages since the last digest, read for the schedule's owner
with the history tools' reader (core/context), summarized by the summary model into topics,
decisions and open questions with links to the threads, and posted in that channel.

A digest reads only its own channel and answers only there, so it never carries another
channel's text; the owner must still be a member of the channel, or the schedule pauses. Budgets
apply to the owner and the workspace; a digest over budget, or whose model is down, is skipped
with one notice, and its messages go into the next digest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from core.access import is_admin
from core.context.ports import Ports
from core.context.reader import ChannelReader
from core.context.summaries import ChannelSummaries
from core.events import (
    MAIN_THREAD,
    ConversationKey,
    HistoryMessage,
    HistoryPage,
    HistoryUnavailable,
    PlatformPort,
    User,
)
from core.governance.budgets import Budgets
from core.governance.moderation import ModerationUnavailable
from core.llm.errors import classify
from core.llm.types import Completed, JsonSchemaFormat, ModelRequest
from core.schedules.outcomes import Outcome, post
from core.schedules.timing import describe, previous_run
from core.settings import Settings
from core.store.schedules import Run, Schedule

log = structlog.get_logger(__name__)

TITLE = "Digest of"  # the first words of every digest (and how the next one leaves it out)
MAX_MESSAGES = 1000  # read per digest at most (the newest are kept within the token cap)
PAGE = 200
INSTRUCTIONS = (
    "You write the digest of a chat channel for people who missed it. From the transcript, give "
    "the main topics (a short title and one or two sentences each), the decisions made and the "
    "questions still open. Each line of the transcript starts with a reference in brackets, "
    "like [m12]; list the references of the messages each item comes from in `messages`. Use "
    "only the transcript; leave a list empty when there is nothing for it."
)
_ITEM = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "messages": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["text", "messages"],
    "additionalProperties": False,
}
SCHEMA = JsonSchemaFormat(
    "channel_digest",
    {
        "type": "object",
        "properties": {
            "topics": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "title": {"type": "string"},
                        "summary": {"type": "string"},
                        "messages": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["title", "summary", "messages"],
                    "additionalProperties": False,
                },
            },
            "decisions": {"type": "array", "items": _ITEM},
            "open_questions": {"type": "array", "items": _ITEM},
        },
        "required": ["topics", "decisions", "open_questions"],
        "additionalProperties": False,
    },
)


@dataclass(frozen=True, slots=True)
class DigestInput:
    """What one digest sends to the model and needs to render the answer; stored with the run
    while it waits in a batch, so another process can finish it."""

    transcript: str
    label: str
    messages: int
    omitted: int
    since: float
    until: float
    user: str
    links: dict[str, str] = field(default_factory=dict)  # reference -> permalink
    threads: tuple[str, ...] = ()  # references of messages that have a thread

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> DigestInput:
        data = json.loads(text)
        data["threads"] = tuple(data.get("threads") or ())
        return cls(**data)


class Digests:
    """Prepares, runs and posts digests."""

    def __init__(self, settings: Settings, summaries: ChannelSummaries, budgets: Budgets) -> None:
        self._settings = settings
        self._summaries = summaries
        self._budgets = budgets

    @property
    def ports(self) -> Ports:
        return self._summaries.ports

    async def prepare(self, run: Run, *, now: float, batch: bool) -> DigestInput | Outcome:
        """Read the channel since the last digest and check what may stop the digest (the owner
        left, the bot cannot read it, the budget); the digest's input, or the run's outcome."""
        schedule = run.schedule
        key = channel_of(schedule.key)
        port = self.ports.get(key.platform)
        if port is None:
            return Outcome("failed", f"no {key.platform.value} connection in this process")
        try:
            access = await port.access(key, schedule.owner_id)
            label = f"#{access.name}" if access.name and not access.direct else "this channel"
            if not access.readable:
                return Outcome(
                    "skipped",
                    "the bot cannot read the channel",
                    pause=True,
                    notice="The digest of this channel is paused: I can no longer read it. "
                    "Invite me back and set it up again with `/digest daily 09:00`.",
                )
            if not access.member:
                return self._owner_left(schedule)
            since = schedule.covered_until or previous_run(
                schedule.cron, schedule.time_zone, run.due_at
            )
            page = await self._read(port, key, since, now)
        except HistoryUnavailable as exc:
            return Outcome("skipped", f"history: {exc}", notice=_skipped("this channel", str(exc)))
        if not page.messages:
            return Outcome("empty", "no messages", covered_until=now)
        reader = ChannelReader(
            port,
            key,
            schedule.owner_id,
            self._summaries.tokens,
            max_tokens=self._summaries.max_input_tokens,
        )
        tags = [f"[m{i + 1}]" for i in range(len(page.messages))]
        transcript = reader.render(page, label, tags=tags)
        kept = list(zip(tags, page.messages, strict=True))[len(tags) - transcript.messages :]
        digest = DigestInput(
            transcript=transcript.text,
            label=label,
            messages=transcript.messages,
            omitted=transcript.omitted,
            since=since,
            until=now,
            user=f"{key.platform.value}:{key.workspace}:{schedule.owner_id}",
            links={tag[1:-1]: m.permalink for tag, m in kept if m.permalink},
            threads=tuple(tag[1:-1] for tag, m in kept if m.replies),
        )
        owner = User(schedule.owner_id, schedule.owner_name)
        exempt = self._settings.budgets.admins_exempt and is_admin(
            owner, self._settings.access.admin_user_ids
        )
        if not exempt:
            estimate = self._summaries.estimate(self.request(digest), batch=batch)
            refusal = await self._budgets.check_spend(
                key.platform.value, key.workspace, schedule.owner_id, estimate
            )
            if refusal is not None:
                return Outcome(
                    "skipped",
                    f"budget: {refusal.reason}",
                    notice=_skipped(label, "it would go over the AI budget"),
                )
        return digest

    async def _read(
        self, port: PlatformPort, key: ConversationKey, since: float, now: float
    ) -> HistoryPage:
        """The channel's messages from `since` to `now`, oldest first, up to `MAX_MESSAGES`
        (the newest), without earlier digests."""
        found: list[HistoryMessage] = []
        cursor: str | None = None
        start = datetime.fromtimestamp(since, UTC)
        while len(found) < MAX_MESSAGES:
            page = await port.history(key, since=start, limit=PAGE, cursor=cursor)
            found[:0] = [m for m in page.messages if since <= m.at.timestamp() <= now]
            cursor = page.next_cursor
            if not cursor or not page.messages:
                break
        found = [m for m in found if not (m.is_bot and m.text.lstrip("*_ ").startswith(TITLE))]
        return HistoryPage(tuple(found[-MAX_MESSAGES:]))

    def request(self, digest: DigestInput) -> ModelRequest:
        """The model request of a digest (the same for a batch line and a direct call)."""
        return self._summaries.request(
            digest.transcript, user=digest.user, instructions=INSTRUCTIONS, response_format=SCHEMA
        )

    async def run_direct(self, run: Run, digest: DigestInput, *, now: float) -> Outcome:
        """Call the model now, then post the digest."""
        try:
            done = await self._summaries.model.complete(self.request(digest))
        except Exception as exc:  # the model is down (after retries): skip, tell once
            failure = classify(exc)
            log.warning("digest_model_failed", run=run.id, kind=failure.kind)
            return Outcome(
                "skipped",
                f"model: {failure.kind}",
                notice=_skipped(digest.label, "the AI service is unavailable"),
            )
        return await self.publish(run, digest, done, batch=False)

    async def publish(
        self, run: Run, digest: DigestInput, done: Completed, *, batch: bool
    ) -> Outcome:
        """Count the call (at batch rates when it came from a batch), moderate the digest and
        post it in the channel."""
        schedule = run.schedule
        text = render(digest, done.text, schedule, catch_up=run.catch_up)
        purpose = "digest_batch" if batch else "digest"
        key = channel_of(schedule.key)
        try:
            allowed = await self._summaries.checked(
                done, key, user_id=schedule.owner_id, purpose=purpose, batch=batch, text=text
            )
        except ModerationUnavailable:
            return Outcome(
                "skipped",
                "moderation unavailable",
                notice=_skipped(digest.label, "its text could not be checked for safety"),
            )
        if not allowed:
            return Outcome(
                "skipped",
                "moderation blocked the digest",
                notice=_skipped(digest.label, "it was withheld by the usage policy"),
            )
        problem = await post(self.ports, key, text)
        if problem is not None:
            return Outcome("failed", problem)
        return Outcome("done", plural(digest.messages, "message"), covered_until=digest.until)

    def _owner_left(self, schedule: Schedule) -> Outcome:
        name = schedule.owner_name or schedule.owner_id
        return Outcome(
            "skipped",
            "the owner is no longer a member of the channel",
            pause=True,
            notice=(
                f"The digest of this channel is paused: {name}, who set it up, is no longer a "
                "member here. Anyone in the channel can set it up again with "
                "`/digest daily 09:00`."
            ),
        )


def channel_of(key: ConversationKey) -> ConversationKey:
    """The channel of a conversation key (a digest is a channel's)."""
    return ConversationKey(key.platform, key.workspace, key.channel, MAIN_THREAD)


def plural(count: int, word: str) -> str:
    """`1 message`, `2 messages`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _skipped(label: str, why: str) -> str:
    return f"The digest of {label} was skipped: {why}. The next digest covers these messages too."


def render(digest: DigestInput, answer: str, schedule: Schedule, *, catch_up: bool = False) -> str:
    """The digest as Markdown: a title line, then topics, decisions and open questions, each
    with links to the messages and threads it comes from (only this channel's)."""
    since = describe(digest.since, schedule.time_zone)
    head = f"**{TITLE} {digest.label}** — {plural(digest.messages, 'message')} since {since}"
    if digest.omitted:
        head += f" ({digest.omitted} older ones left out)"
    if catch_up:
        head += " (catching up after a pause in service)"
    try:
        data = json.loads(answer)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return f"{head}\n\n{answer.strip()}"
    lines = [head]
    sections = (
        ("Topics", data.get("topics"), True),
        ("Decisions", data.get("decisions"), False),
        ("Open questions", data.get("open_questions"), False),
    )
    for title, items, topics in sections:
        entries = [_entry(item, digest, topics) for item in items or () if isinstance(item, dict)]
        entries = [e for e in entries if e]
        if entries:
            lines += ["", f"**{title}**", *entries]
    if len(lines) == 1:
        lines += ["", "Nothing to report."]
    return "\n".join(lines)


def _entry(item: dict[str, Any], digest: DigestInput, topic: bool) -> str:
    if topic:
        title, summary = (
            str(item.get("title") or "").strip(),
            str(item.get("summary") or "").strip(),
        )
        text = f"**{title}** — {summary}" if title and summary else title or summary
    else:
        text = str(item.get("text") or "").strip()
    if not text:
        return ""
    links: list[tuple[str, str]] = []
    for ref in item.get("messages") or ():
        ref = str(ref).strip("[] ")
        url = digest.links.get(ref)
        if url and url not in (link for _, link in links):
            links.append(("thread" if ref in digest.threads else "message", url))
    shown = " ".join(f"([{word}]({url}))" for word, url in links[:3])
    return f"• {text} {shown}".rstrip()
