"""Exact offline token counting (o200k_base / cl100k_base) with bundled encodings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import bpe_openai
from bpe_openai import registry as bpe_registry

from core.llm.types import Message

# The encoder refuses a call of 1,000,000+ characters or one that makes 200,000+ tokens, so long
# text is counted in chunks. A token is at least one UTF-8 byte and a character at most four,
# so a chunk of 50,000 characters stays below both limits whatever the text. Chunks end where a
# run of whitespace begins (looked for in the last `_LOOKBACK` characters), so no word is cut
# and the sum of the chunks' counts is the count of the whole for ordinary text (it may differ
# by a token where punctuation runs into a line break at a cut).
_CHUNK = 50_000
_LOOKBACK = 2_000
_WHITESPACE = re.compile(r"\s+")
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
    encoding = bpe_openai.get_encoding(name)
    _drop_loaded_tables()
    return encoding


def _drop_loaded_tables() -> None:
    """Free the rank tables bpe_openai's loaders keep after building an encoding.

    Importing bpe_openai reads three encodings' tables (for their special tokens) and its
    loaders cache them (`functools.lru_cache`); each built encoding holds its own copy, so the
    cached ones only cost memory: about 36 MB of a server's resident set.
    """
    for loader in vars(bpe_registry).values():
        clear = getattr(loader, "cache_clear", None)
        if callable(clear):
            clear()


class TokenCounter:
    """Counts tokens for one model's tokenizer."""

    def __init__(self, model: str = "gpt-6-luna") -> None:
        self._encoding = _encoding(encoding_name(model))

    def count(self, text: str) -> int:
        """Token count of `text` (special-token text counted as ordinary text), of any length.

        Exact for text up to `_CHUNK` characters; longer text is the sum over its chunks.
        """
        if len(text) <= _CHUNK:
            return len(self._encode(text))
        return sum(len(self._encode(chunk)) for chunk in chunks(text))

    def _encode(self, chunk: str) -> list[int]:
        return self._encoding.encode_ordinary(chunk)

    def message(self, message: Message) -> int:
        """Tokens one message costs in a request, framing, tool calls and images included."""
        total = MESSAGE_OVERHEAD + self.count(message.text)
        for call in message.tool_calls:
            total += self.count(call.name) + self.count(call.arguments) + MESSAGE_OVERHEAD
        return total + IMAGE_TOKENS * len(message.images)

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of `text` within `max_tokens` tokens (as `count` counts them).

        Only the chunks up to the cut are encoded, so the cost follows `max_tokens`, not the text.
        """
        if max_tokens <= 0:
            return ""
        kept: list[str] = []
        room = max_tokens
        for chunk in chunks(text):
            tokens = self._encode(chunk)
            if len(tokens) <= room:
                kept.append(chunk)
                room -= len(tokens)
                continue
            kept.append(self._prefix(chunk, tokens, room))
            break
        return "".join(kept)

    def _prefix(self, chunk: str, tokens: list[int], room: int) -> str:
        """The longest prefix of `chunk` whose own count is within `room` (`tokens` is its
        encoding): its first `room` tokens, fewer when re-encoding the cut end takes more."""
        keep = room
        while keep > 0:
            # The tokens' bytes are a prefix of the chunk's UTF-8; a character cut in two at
            # the end is dropped, so what is left is a prefix of the chunk.
            prefix = self._encoding.decode_bytes(tokens[:keep]).decode("utf-8", "ignore")
            excess = len(self._encode(prefix)) - room
            if excess <= 0:
                return prefix
            keep -= excess
        return ""


def chunks(text: str) -> Iterator[str]:
    """`text` in pieces of at most `_CHUNK` characters, cut where a run of whitespace begins
    when there is one near the end of a piece (the whole text when it is short)."""
    start, length = 0, len(text)
    while length - start > _CHUNK:
        end = start + _CHUNK
        cut = end  # no whitespace near the end: cut where the piece is full
        for match in _WHITESPACE.finditer(text, end - _LOOKBACK, end):
            cut = match.start()
        yield text[start:cut]
        start = cut
    if start < length or not text:
        yield text[start:]
