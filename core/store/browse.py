"""What the admin site lists and opens: conversations (searched with bound parameters), one
conversation's turns, messages, usage and moderation, the moderation log, known channels."""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.store.db import Database, Row
from core.store.records import MESSAGE_ORDER, MESSAGE_RECORD, MessageRecord
from core.store.usage import RESERVED


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """A conversation as listed, with the first message that matched a text search."""

    id: int
    key: str
    platform: str
    workspace: str
    channel: str
    thread: str
    updated_at: float
    snippet: str = ""


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One turn with its timing."""

    id: int
    user_message_id: int
    status: str
    model: str
    error: str
    user_key: str
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class TurnUsage:
    """One turn's usage by model and purpose."""

    turn_id: int
    model: str
    purpose: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class ModerationRow:
    """One moderation event as stored (the excerpt is redacted as stored)."""

    id: int
    created_at: float
    platform: str
    workspace: str
    channel: str
    thread: str
    user_id: str
    direction: str
    action: str
    categories: tuple[str, ...]
    excerpt: str


@dataclass(frozen=True, slots=True)
class ConversationDetail:
    """Everything stored about one conversation."""

    conversation: ConversationRow
    epoch: int
    turns: list[TurnRow]
    messages: list[MessageRecord]
    usage: list[TurnUsage]
    moderation: list[ModerationRow]
    remote_ids: list[str]


def _like(text: str) -> str:
    """A LIKE pattern that matches `text` anywhere, its own % and _ taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_MODERATION = (
    "SELECT id, created_at, platform, workspace, channel, thread, user_id, direction, action, "
    "categories, excerpt FROM moderation_events"
)


def _moderation(r: Row) -> ModerationRow:
    categories = tuple(json.loads(r[9]))
    return ModerationRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], categories, r[10])


def _conversation(row: Row, snippet: str = "") -> ConversationRow:
    return ConversationRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], snippet=snippet)


class Browse:
    """The admin site's lists and detail reads."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def search(
        self, *, text: str = "", user: str = "", channel: str = "", limit: int = 50, offset: int = 0
    ) -> list[ConversationRow]:
        """Conversations matching every given filter, the most recently active first: `text`
        anywhere in a message (case-insensitive), `user` a participant's id or name, `channel`
        the channel id. Every term is a bound parameter."""
        where, params = [], []
        snippet, snippet_params = "''", []
        if channel:
            where.append("c.channel = ?")
            params.append(channel)
        if user:
            where.append(
                "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id "
                "AND (m.user_id = ? OR LOWER(m.user_name) = ?))"
            )
            params += [user, user.lower()]
        if text:
            match = "LOWER(m.content) LIKE ? ESCAPE '\\'"
            where.append(
                f"EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND {match})"
            )
            params.append(_like(text))
            snippet = (
                f"(SELECT m.content FROM messages m WHERE m.conversation_id = c.id AND {match} "
                "ORDER BY m.id LIMIT 1)"
            )
            snippet_params.append(_like(text))
        sql = (
            f"SELECT c.id, c.key, c.platform, c.workspace, c.channel, c.thread, c.updated_at, "
            f"{snippet} FROM conversations c"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?"
        )
        rows = await self._db.fetchall(sql, (*snippet_params, *params, limit, offset))
        return [_conversation(row, snippet=row[7] or "") for row in rows]

    async def conversation(self, conversation_id: int) -> ConversationDetail | None:
        """One conversation with every turn, message, usage row and moderation event."""
        row = await self._db.fetchone(
            "SELECT id, key, platform, workspace, channel, thread, updated_at, epoch "
            "FROM conversations WHERE id = ?",
            (conversation_id,),
        )
        if row is None:
            return None
        conversation = _conversation(row)
        turns = await self._db.fetchall(
            "SELECT id, user_message_id, status, model, error, user_key, created_at, started_at, "
            "finished_at FROM turns WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        messages = await self._db.fetchall(
            f"{MESSAGE_RECORD} WHERE m.conversation_id = ? ORDER BY {MESSAGE_ORDER}",
            (conversation_id,),
        )
        usage = await self._db.fetchall(
            "SELECT turn_id, model, purpose, SUM(prompt_tokens), SUM(cached_tokens), "
            "SUM(completion_tokens), SUM(cost_usd) FROM usage "
            f"WHERE conversation_id = ? AND purpose != '{RESERVED}' AND turn_id IS NOT NULL "
            "GROUP BY turn_id, model, purpose ORDER BY turn_id",
            (conversation_id,),
        )
        moderation = await self._db.fetchall(
            f"{_MODERATION} WHERE platform = ? AND workspace = ? AND channel = ? AND thread = ? "
            "ORDER BY id",
            (
                conversation.platform,
                conversation.workspace,
                conversation.channel,
                conversation.thread,
            ),
        )
        remote = await self._db.fetchall(
            "SELECT remote_id FROM remote_conversations WHERE conversation_id = ? "
            "ORDER BY created_at",
            (conversation_id,),
        )
        return ConversationDetail(
            conversation,
            int(row[7]),
            [TurnRow(*t) for t in turns],
            [MessageRecord.from_row(m) for m in messages],
            [
                TurnUsage(u[0], u[1], u[2], int(u[3]), int(u[4]), int(u[5]), float(u[6]))
                for u in usage
            ],
            [_moderation(m) for m in moderation],
            [r[0] for r in remote],
        )

    async def moderation_log(
        self, *, limit: int = 100, before_id: int | None = None
    ) -> list[ModerationRow]:
        """Moderation events, the newest first (page on with `before_id`)."""
        if before_id is None:
            rows = await self._db.fetchall(f"{_MODERATION} ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = await self._db.fetchall(
                f"{_MODERATION} WHERE id < ? ORDER BY id DESC LIMIT ?", (before_id, limit)
            )
        return [_moderation(row) for row in rows]

    async def channels(self, limit: int = 500) -> list[tuple[str, str, str]]:
        """(platform, workspace, channel) of the channels with conversations, the most recently
        active first."""
        rows = await self._db.fetchall(
            "SELECT platform, workspace, channel FROM conversations "
            "GROUP BY platform, workspace, channel ORDER BY MAX(updated_at) DESC LIMIT ?",
            (limit,),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    async def last_activity(self) -> dict[str, float]:
        """Per platform: when a conversation last had a message."""
        rows = await self._db.fetchall(
            "SELECT platform, MAX(updated_at) FROM conversations GROUP BY platform"
        )
        return {row[0]: float(row[1]) for row in rows}
