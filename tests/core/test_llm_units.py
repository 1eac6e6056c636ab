"""Tokens, prices and the retry policy in isolation."""

from __future__ import annotations

import httpx2
import openai
from bpe_openai import registry

from core.llm.pricing import PriceTable
from core.llm.retry import is_retryable, retry_after
from core.llm.tokens import TokenCounter, encoding_name
from core.llm.types import Usage


def _status_error(status: int, body: object = None, headers: dict[str, str] | None = None):
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return openai.APIStatusError("x", response=response, body=body)


def test_a_counter_leaves_no_rank_tables_cached_in_the_tokenizer_library() -> None:
    counter = TokenCounter("gpt-4-0613")  # an encoding not built before in this process
    assert counter.count("hello world") == 2
    assert registry._load_mergeable_ranks.cache_info().currsize == 0  # each holds a table


def test_token_counts_are_exact_for_o200k() -> None:
    counter = TokenCounter("gpt-6-luna")
    assert counter.count("hello world, how are you?") == 7
    assert encoding_name("gpt-4o-mini") == "o200k_base"
    assert encoding_name("gpt-4") == "cl100k_base"


def test_very_long_text_is_counted_in_slices() -> None:
    counter = TokenCounter()
    text = "word " * 300_000
    assert counter.count(text) == counter.count("word " * 100_000) + 200_000


def test_truncate_keeps_a_prefix_within_the_limit() -> None:
    counter = TokenCounter()
    text = "alpha beta gamma " * 100
    cut = counter.truncate(text, 10)
    assert text.startswith(cut) and counter.count(cut) <= 10


def test_cost_uses_cached_and_output_prices() -> None:
    prices = PriceTable({"gpt-6-luna": (0.10, 0.01, 0.50)})
    cost = prices.cost("gpt-6-luna-2026-06-01", Usage(1_000_000, 200_000, 100_000))
    assert abs(cost - (0.8 * 0.10 + 0.2 * 0.01 + 0.1 * 0.50)) < 1e-12
    assert prices.cost("unknown-model", Usage(10, 0, 10)) == 0.0


def test_retry_classification() -> None:
    assert is_retryable(_status_error(429))
    assert is_retryable(_status_error(503))
    assert not is_retryable(_status_error(400))
    assert not is_retryable(_status_error(401))
    assert not is_retryable(_status_error(404))
    assert not is_retryable(_status_error(422))
    quota = _status_error(429, body={"error": {"code": "insufficient_quota"}})
    assert not is_retryable(quota)
    assert not is_retryable(_status_error(500, headers={"x-should-retry": "false"}))
    assert is_retryable(_status_error(400, headers={"x-should-retry": "true"})) is False
    assert is_retryable(httpx2.ConnectError("refused"))


def test_retry_after_prefers_milliseconds() -> None:
    error = _status_error(429, headers={"retry-after-ms": "1500", "retry-after": "9"})
    assert retry_after(error) == 1.5
    assert retry_after(_status_error(429, headers={"retry-after": "2"})) == 2.0
    assert retry_after(_status_error(429)) is None
