"""The composition root: builds every long-lived object once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import openai

from core.engine import Engine
from core.llm import ModelClient, build_model_client, build_openai
from core.settings import Settings
from core.store import Store


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
    store = await Store.open(settings.database_path)
    client = build_openai(settings)
    model = build_model_client(settings, client)
    engine = Engine(settings=settings, store=store, model=model)
    return Services(settings, store, client, model, engine)
