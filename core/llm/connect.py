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
