"""Model calls over OpenAI's two wire APIs behind one interface."""

from __future__ import annotations

import openai

from core.llm.chat import ChatClient
from core.llm.client import ModelClient
from core.llm.responses import ResponsesClient
from core.llm.retry import RetryPolicy
from core.settings import Settings

__all__ = [
    "ChatClient",
    "ModelClient",
    "ResponsesClient",
    "RetryPolicy",
    "build_model_client",
    "build_openai",
]


def build_openai(settings: Settings) -> openai.AsyncOpenAI:
    """The one SDK client, with its own retries off: tenacity owns retries.

    It uses the SDK's aiohttp transport: per request it costs a fraction of the default one's
    CPU, which is most of what a turn costs the server.
    """
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=settings.openai_base_url,
        organization=settings.openai_organization,
        project=settings.openai_project,
        timeout=settings.openai_timeout,
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(timeout=settings.openai_timeout),
    )


def build_model_client(settings: Settings, client: openai.AsyncOpenAI) -> ModelClient:
    """The model client for the configured wire API."""
    policy = RetryPolicy(
        attempts=settings.openai_retry_attempts,
        max_seconds=settings.openai_retry_max_seconds,
        initial_wait=settings.openai_retry_initial_wait,
    )
    cls = ResponsesClient if settings.wire_api == "responses" else ChatClient
    return cls(client, policy)
