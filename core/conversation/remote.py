"""Server-side conversation state: each conversation maps to an OpenAI Conversation.

This is the successor of the Assistants API (sunset 2026-08-26): an assistant becomes our
instructions and tools, a thread becomes a Conversation, a run becomes a Response.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import openai
import structlog

from core.events import ConversationKey
from core.llm.retry import RetryPolicy, call_with_retries
from core.llm.types import Message
from core.store import Conversation, Store

log = structlog.get_logger(__name__)

SEED_LIMIT = 20  # the Conversations API adds at most 20 items per call
RECREATED_NOTICE = (
    "I couldn't find this conversation's history on the AI service any more, so I started a "
    "fresh one; earlier context may be missing."
)


def seed_items(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The newest user/assistant messages as conversation items (for a backend switch)."""
    items = [
        {"type": "message", "role": m.role, "content": m.text}
        for m in messages
        if m.role in {"user", "assistant"} and m.text
    ]
    return items[-SEED_LIMIT:]


class RemoteThreads:
    """Creates, reuses and replaces the OpenAI conversation behind each of our conversations."""

    def __init__(self, client: openai.AsyncOpenAI, store: Store, policy: RetryPolicy) -> None:
        self._client = client
        self._store = store
        self._policy = policy
        self._locks: dict[int, asyncio.Lock] = {}

    async def ensure(
        self, conversation: Conversation, key: ConversationKey, seed: tuple[Message, ...] = ()
    ) -> str:
        """The live remote id, created on first use (exactly once, even for concurrent turns)."""
        lock = self._locks.setdefault(conversation.id, asyncio.Lock())
        try:
            async with lock:
                live = await self._store.remote.live(conversation)
                if live is not None:
                    return live
                return await self._create(conversation, key, seed)
        finally:
            if not lock.locked() and not lock._waiters:  # type: ignore[attr-defined]
                self._locks.pop(conversation.id, None)

    async def replace(self, conversation: Conversation, key: ConversationKey, old_id: str) -> str:
        """Retire a remote id that no longer exists and create a new one."""
        log.warning("remote_conversation_missing", remote_id=old_id)
        await self._store.remote.replace(conversation, old_id)
        return await self.ensure(conversation, key)

    async def delete(self, remote_id: str) -> bool:
        """Delete a server-side conversation (retried like every call); True when it is gone,
        also when it was already (404). False when the service refused or could not be reached:
        the caller keeps its mapping to try again."""
        try:
            await call_with_retries(
                self._policy, lambda: self._client.conversations.delete(remote_id)
            )
        except openai.NotFoundError:
            pass
        except openai.APIError as exc:
            log.warning("remote_conversation_not_deleted", remote_id=remote_id, error=str(exc))
            return False
        log.info("remote_conversation_deleted", remote_id=remote_id)
        return True

    async def _create(
        self, conversation: Conversation, key: ConversationKey, seed: tuple[Message, ...]
    ) -> str:
        metadata = {
            "platform": key.platform.value,
            "workspace": key.workspace[:512],
            "channel": key.channel[:512],
            "thread": key.thread[:512],
        }
        created = await call_with_retries(
            self._policy,
            lambda: self._client.conversations.create(
                metadata=metadata,
                items=seed_items(seed),  # type: ignore[arg-type]
            ),
        )
        winner = await self._store.remote.claim(conversation, created.id)
        if winner != created.id:  # another process created one first: use theirs
            with contextlib.suppress(openai.APIError):
                await self._client.conversations.delete(created.id)
        else:
            log.info("remote_conversation_created", remote_id=created.id, seeded=len(seed))
        return winner
