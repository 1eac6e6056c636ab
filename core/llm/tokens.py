"""Exact offline token counting (o200k_base / cl100k_base) with bundled encodings."""

from __future__ import annotations

from functools import lru_cache

import bpe_openai

from core.llm.types import Message

# The encoder refuses calls of 1,000,000+ characters; count long text in slices below that
# (cut at spaces, so the count stays exact for ordinary text).
_SLICE = 500_000
# Per-message framing overhead of the chat format (role markers), as OpenAI's cookbook counts it.
MESSAGE_OVERHEAD = 3
REPLY_PRIMER = 3
# OpenAI bills a low-detail image at 85 tokens; high detail depends on the size (documented
# estimate used when the size is unknown: one 512px tile plus the base).
IMAGE_TOKENS = 85 + 170


def encoding_name(model: str) -> str:
    """The tokenizer family of a model name (GPT-6's is unpublished: o200k_base is assumed)."""
    legacy = model.startswith(("gpt-4-", "gpt-3.5")) or model == "gpt-4"
    return "cl100k_base" if legacy else "o200k_base"


@lru_cache(maxsize=4)
def _encoding(name: str) -> bpe_openai.Encoding:
    return bpe_openai.get_encoding(name)


class TokenCounter:
    """Counts tokens for one model's tokenizer."""

    def __init__(self, model: str = "gpt-6-luna") -> None:
        self._encoding = _encoding(encoding_name(model))

    def count(self, text: str) -> int:
        """Exact token count of `text` (special-token text counted as ordinary text)."""
        if len(text) <= _SLICE:
            return len(self._encoding.encode_ordinary(text))
        total, start = 0, 0
        while start < len(text):
            end = min(start + _SLICE, len(text))
            if end < len(text):  # cut at a space so no token straddles a slice
                space = text.rfind(" ", start + _SLICE // 2, end)
                end = space if space > start else end
            total += len(self._encoding.encode_ordinary(text[start:end]))
            start = end
        return total

    def message(self, message: Message) -> int:
        """Tokens one message costs in a request, framing, tool calls and images included."""
        total = MESSAGE_OVERHEAD + self.count(message.text)
        for call in message.tool_calls:
            total += self.count(call.name) + self.count(call.arguments) + MESSAGE_OVERHEAD
        return total + IMAGE_TOKENS * len(message.images)

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of `text` within `max_tokens` tokens."""
        tokens = self._encoding.encode_ordinary(text[: max_tokens * 8])
        if len(tokens) <= max_tokens:
            return text[: max_tokens * 8]
        return self._encoding.decode(tokens[:max_tokens])
