"""The OpenAI SDK client and the model client for the configured wire API."""

from __future__ import annotations

import openai

from core.llm.chat import ChatClient
from core.llm.client import ModelClient
from core.llm.responses import ResponsesClient
from core.llm.retry import RetryPolicy
from core.settings import OpenAISettings


def build_openai(settings: OpenAISettings) -> openai.AsyncOpenAI:
    """The one SDK client, with its own retries off: tenacity owns retries.

    It uses the SDK's aiohttp transport: per request it costs a fraction of the default one's
    CPU, which is most of what a turn costs the server.
    """
    key = settings.api_key.get_secret_value() if settings.api_key else "unused"
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=settings.base_url,
        organization=settings.organization,
        project=settings.project,
        timeout=settings.timeout,
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(timeout=settings.timeout),
    )


def build_moderation_client(settings: OpenAISettings) -> openai.AsyncOpenAI | None:
    """Moderation's own SDK client when it has its own endpoint, else None (it shares the one).

    With `OPENAI_MODERATION_API_KEY` alone it goes to OpenAI (a local model can still use OpenAI's
    free moderation); with `OPENAI_MODERATION_BASE_URL` to that server. The chat API's key,
    organization and project are never sent there: the moderation endpoint may be another host.
    """
    if not settings.moderation_separate:
        return None
    key = settings.moderation_api_key
    return openai.AsyncOpenAI(
        api_key=key.get_secret_value() if key else "unused",
        base_url=settings.moderation_url,  # explicit: None would read OPENAI_BASE_URL
        timeout=settings.timeout,
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(timeout=settings.timeout),
    )


def retry_policy(settings: OpenAISettings) -> RetryPolicy:
    """How model calls are retried."""
    return RetryPolicy(
        attempts=settings.retry_attempts,
        max_seconds=settings.retry_max_seconds,
        initial_wait=settings.retry_initial_wait,
    )


def build_model_client(settings: OpenAISettings, client: openai.AsyncOpenAI) -> ModelClient:
    """The model client for the configured wire API."""
    cls = ResponsesClient if settings.wire == "responses" else ChatClient
    return cls(client, retry_policy(settings))
