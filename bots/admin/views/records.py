"""Moderation (the violation log as stored) and Conversations (search, and one conversation's
turns with their messages, tool calls, tokens, cost, latency, model and moderation verdicts)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from aiohttp import web

from bots.admin.site import Route, Site
from core.store.browse import ConversationDetail, ModerationRow, TurnRow, TurnUsage
from core.store.records import MessageRecord

PAGE = 50


@dataclass
class TurnView:
    """One turn as the conversation page shows it."""

    turn: TurnRow | None
    messages: list[MessageRecord] = field(default_factory=list)
    usage: list[TurnUsage] = field(default_factory=list)
    moderation: list[ModerationRow] = field(default_factory=list)

    @property
    def latency(self) -> float | None:
        """From the message's arrival to the turn's end."""
        t = self.turn
        return t.finished_at - t.created_at if t and t.finished_at is not None else None

    @property
    def model_time(self) -> float | None:
        """From the model call's start to the turn's end."""
        t = self.turn
        if t is None or t.finished_at is None or t.started_at is None:
            return None
        return t.finished_at - t.started_at

    @property
    def prompt_tokens(self) -> int:
        return sum(u.prompt_tokens for u in self.usage)

    @property
    def completion_tokens(self) -> int:
        return sum(u.completion_tokens for u in self.usage)

    @property
    def cost_usd(self) -> float:
        return sum(u.cost_usd for u in self.usage)


def turn_views(detail: ConversationDetail) -> tuple[list[TurnView], list[ModerationRow]]:
    """The conversation's turns in order with what belongs to each (messages outside any turn
    in a last view without a turn), and the moderation events from before the first turn."""
    views = {turn.id: TurnView(turn) for turn in detail.turns}
    loose = TurnView(None)
    for message in detail.messages:
        views.get(message.turn_id or 0, loose).messages.append(message)
    for usage in detail.usage:
        if usage.turn_id in views:
            views[usage.turn_id].usage.append(usage)
    starts = [turn.created_at for turn in detail.turns]
    early = []
    for event in detail.moderation:
        i = bisect.bisect_right(starts, event.created_at) - 1
        if i < 0:
            early.append(event)
        else:
            views[detail.turns[i].id].moderation.append(event)
    ordered = list(views.values()) + ([loose] if loose.messages else [])
    return ordered, early


def routes(site: Site) -> list[Route]:
    """The record pages."""

    async def moderation(request: web.Request) -> web.StreamResponse:
        before = request.query.get("before", "")
        events = await site.store.browse.moderation_log(
            limit=100, before_id=int(before) if before.isdigit() else None
        )
        return site.pages.render(
            request,
            "moderation.html",
            title="Moderation",
            events=events,
            older=events[-1].id if len(events) == 100 else None,
            keep_text=site.settings.moderation.keep_text,
        )

    async def conversations(request: web.Request) -> web.StreamResponse:
        q = request.query
        terms = {k: q.get(k, "").strip()[:200] for k in ("text", "user", "channel")}
        page = int(q["page"]) if q.get("page", "").isdigit() else 0
        found = await site.store.browse.search(**terms, limit=PAGE + 1, offset=page * PAGE)
        return site.pages.render(
            request,
            "conversations.html",
            title="Conversations",
            terms=terms,
            found=found[:PAGE],
            page=page,
            more=len(found) > PAGE,
        )

    async def conversation(request: web.Request) -> web.StreamResponse:
        raw = request.match_info["id"]
        detail = await site.store.browse.conversation(int(raw)) if raw.isdigit() else None
        if detail is None:
            return site.pages.render(
                request,
                "message.html",
                status=404,
                title="Not found",
                message="There is no such conversation.",
            )
        views, early = turn_views(detail)
        people = sorted(
            {(m.user_id, m.user_name) for m in detail.messages if m.role == "user" and m.user_id}
        )
        return site.pages.render(
            request,
            "conversation.html",
            title=f"Conversation {detail.conversation.id}",
            detail=detail,
            views=views,
            early=early,
            people=people,
        )

    return [
        ("GET", "/admin/moderation", moderation),
        ("GET", "/admin/conversations", conversations),
        ("GET", "/admin/conversations/{id}", conversation),
    ]
