"""The composition root: builds every long-lived object once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import openai

from bots.settings import AppSettings
from core.conversation.media import Media
from core.conversation.remote import RemoteThreads
from core.engine import Engine
from core.governance.moderation import Moderator, Rule
from core.knowledge import ImageGenerator, KnowledgeBase
from core.llm import ModelClient, ResponsesClient
from core.llm.connect import build_model_client, build_openai
from core.llm.tokens import TokenCounter
from core.store import Store
from core.tools import ToolRegistry, discover
from core.tools.loop import ToolLoop


@dataclass
class Services:
    """Everything a process needs, constructed once and passed in (no globals)."""

    settings: AppSettings
    store: Store
    openai: openai.AsyncOpenAI
    model: ModelClient
    engine: Engine

    async def close(self) -> None:
        """Finish running turns and release connections."""
        await self.engine.drain()
        await self.openai.close()
        await self.store.close()


async def build_services(settings: AppSettings) -> Services:
    """Open the store (applying migrations) and wire the engine to the model client."""
    store = await Store.open(
        settings.store.url,
        busy_timeout_ms=settings.store.busy_timeout_ms,
        pool_size=settings.store.pool_size,
    )
    client = build_openai(settings.openai)
    model = build_model_client(settings.openai, client)
    moderator = Moderator(
        client,
        store.moderation,
        model=settings.models.moderation,
        rules={name: Rule(r.threshold, r.action) for name, r in settings.moderation.policy.items()},
        default=Rule(settings.moderation.threshold, settings.moderation.action),
        policy=model.policy,
        fail_open=settings.moderation.fail_open,
        keep_text=settings.moderation.keep_text,
        enabled=settings.moderation.enabled,
    )
    responses = (
        model if isinstance(model, ResponsesClient) else ResponsesClient(client, model.policy)
    )
    engine = Engine(
        settings=settings,
        store=store,
        model=model,
        moderator=moderator,
        threads=RemoteThreads(client, store, model.policy),
        media=Media(
            client,
            model=settings.models.transcription,
            policy=model.policy,
            max_bytes=settings.memory.max_attachment_mb * 1024 * 1024,
        ),
        responses_model=responses,
        plugin_extras={
            "knowledge": KnowledgeBase(
                client, store, model=settings.models.embedding, policy=model.policy
            ),
            "images": ImageGenerator(client, model=settings.models.image, policy=model.policy),
        },
        tools=ToolLoop(
            discover(ToolRegistry()) if settings.tools.enabled else ToolRegistry(),
            TokenCounter(settings.models.chat),
            max_steps=settings.tools.max_steps,
            timeout=settings.tools.timeout_seconds,
        ),
    )
    return Services(settings, store, client, model, engine)
