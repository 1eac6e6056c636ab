"""Image generation through the images API."""

from __future__ import annotations

import base64

import openai

from core.llm.retry import RetryPolicy, call_with_retries


class ImageGenerator:
    """Images from the images API, as PNG bytes."""

    def __init__(self, client: openai.AsyncOpenAI, *, model: str, policy: RetryPolicy) -> None:
        self._client = client
        self._model = model
        self._policy = policy

    async def generate(self, prompt: str, size: str) -> bytes:
        """One image for the prompt."""
        result = await call_with_retries(
            self._policy,
            lambda: self._client.images.generate(model=self._model, prompt=prompt, size=size, n=1),  # type: ignore[arg-type]
        )
        encoded = result.data[0].b64_json if result.data else None
        if not encoded:
            raise RuntimeError("the images API returned no image data")
        return base64.b64decode(encoded)
