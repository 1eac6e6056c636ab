"""The composition root: builds every long-lived object once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import openai

from core.conversation.media import Media
from core.conversation.remote import RemoteThreads
from core.engine import Engine
from core.governance.moderation import Moderator, Rule
from core.knowledge import ImageGenerator, KnowledgeBase
from core.llm import ModelClient, ResponsesClient, build_model_client, build_openai
from core.llm.tokens import TokenCounter
from core.settings import Settings
from core.store import Store
from core.tools import ToolRegistry, discover
from core.tools.loop import ToolLoop


@dataclass
class Services:
    """Everything a process needs, constructed once and passed in (no globals)."""

    settings: Settings
    store: Store
    openai: openai.AsyncOpenAI
    model: ModelClient
    engine: Engine

    async def close(self) -> None:
        """Finish running turns and release connections."""
        await self.engine.drain()
        await self.openai.close()
        await self.store.close()


async def build_services(settings: Settings) -> Services:
    """Open the store (applying migrations) and wire the engine to the model client."""
    store = await Store.open(
        settings.database_url,
        busy_timeout_ms=settings.database_busy_timeout_ms,
        pool_size=settings.database_pool_size,
    )
    client = build_openai(settings)
    model = build_model_client(settings, client)
    moderator = Moderator(
        client,
        store.moderation,
        model=settings.openai_moderation_model,
        rules={name: Rule(r.threshold, r.action) for name, r in settings.moderation_policy.items()},
        default=Rule(settings.moderation_threshold, settings.moderation_action),
        policy=model.policy,
        fail_open=settings.moderation_fail_open,
        keep_text=settings.moderation_keep_text,
        enabled=settings.moderation_enabled,
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
            model=settings.openai_transcription_model,
            policy=model.policy,
            max_bytes=settings.max_attachment_mb * 1024 * 1024,
        ),
        responses_model=responses,
        plugin_extras={
            "knowledge": KnowledgeBase(
                client, store, model=settings.openai_embedding_model, policy=model.policy
            ),
            "images": ImageGenerator(
                client, model=settings.openai_image_model, policy=model.policy
            ),
        },
        tools=ToolLoop(
            discover(ToolRegistry()) if settings.tools_enabled else ToolRegistry(),
            TokenCounter(settings.openai_model),
            max_steps=settings.tool_max_steps,
            timeout=settings.tool_timeout_seconds,
        ),
    )
    return Services(settings, store, client, model, engine)
