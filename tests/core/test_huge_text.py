"""Huge text: counted and truncated in chunks (the encoder refuses a call of 1,000,000+
characters or 200,000+ tokens), and a 1.5 MB mention is answered within the context budget."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from bots.services import build_services
from bots.settings import AppSettings as Settings
from core.conversation.memory import TRUNCATION_MARKER
from core.llm.tokens import MESSAGE_OVERHEAD, TokenCounter, chunks
from simulator import Simulator, Text
from tests.conftest import RecordingReply, make_event

PROSE = [
    *["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "42"],
    *["engineers", "debate", "tokenizers,", "budgets", "and", "context", "windows;"],
    *["naïve", "café", "déjà", "vu", "日本語", "👍🏽", "e\u0301"],
]
# Far fewer characters per token: 1.5 MB of it is about 300,000 tokens.
MULTILINGUAL = [
    *["日本語の", "テキスト", "東京", "会議は", "明日です。", "数据", "模型", "上下文"],
    *["привет", "мир", "данные", "👍🏽", "🎉", "hello", "world", "résumé"],
]
TEXTS = {"prose": PROSE, "multilingual": MULTILINGUAL}
SIZE = 1_500_000  # bytes of UTF-8


def _huge(words: list[str], seed: int = 7) -> tuple[str, list[str]]:
    """About 1.5 MB of paragraphs of `words`, and the paragraphs it is made of."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    size = 0
    while size < SIZE:
        words_in = rng.randint(20, 200)
        paragraphs.append(" ".join(rng.choice(words) for _ in range(words_in)) + ".\n")
        size += len(paragraphs[-1].encode("utf-8"))
    return "".join(paragraphs), paragraphs


@pytest.fixture(scope="module", params=list(TEXTS))
def huge(request: pytest.FixtureRequest) -> tuple[str, list[str]]:
    return _huge(TEXTS[request.param])


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


def test_a_huge_text_is_counted_quickly(counter: TokenCounter, huge: tuple[str, list[str]]) -> None:
    text, paragraphs = huge
    assert len(text.encode("utf-8")) >= SIZE
    started = time.perf_counter()
    total = counter.count(text)
    assert time.perf_counter() - started < 5.0
    by_paragraph = sum(counter.count(p) for p in paragraphs)
    assert total > 200_000, "more tokens than the encoder takes in one call"
    assert abs(total - by_paragraph) <= by_paragraph * 0.001


@pytest.mark.parametrize(
    "text",
    [
        "1234567890" * 150_000,  # no whitespace at all: cut where a chunk is full
        "👍🏽" * 400_000,  # more tokens than characters
        "日本語のテキスト" * 190_000,
        " " * 1_100_000,
        "word\n\n" * 250_000,
    ],
    ids=["digits", "emoji", "cjk", "spaces", "lines"],
)
def test_any_long_text_is_counted_and_truncated(counter: TokenCounter, text: str) -> None:
    assert "".join(chunks(text)) == text
    total = counter.count(text)
    assert total > 0
    for limit in (1, 1_000, 150_000, 250_000):
        cut = counter.truncate(text, limit)
        assert text.startswith(cut)
        assert 0 < counter.count(cut) <= limit


def test_truncating_a_huge_text_keeps_the_longest_prefix_that_fits(
    counter: TokenCounter, huge: tuple[str, list[str]]
) -> None:
    text, _ = huge
    for limit in (0, 1, 7, 16_000, 60_000, 199_999, 250_000):
        started = time.perf_counter()
        cut = counter.truncate(text, limit)
        assert time.perf_counter() - started < 2.0
        assert text.startswith(cut)
        tokens = counter.count(cut)
        assert tokens <= limit
        assert tokens >= limit - 2, "nearly all the room is used"
    assert counter.truncate(text, 10**9) == text


def _turn_messages(sim: Simulator) -> list[dict[str, Any]]:
    """The messages of the last chat turn request (not summaries)."""
    turns = [r for r in sim.requests_to("chat") if r.body and "response_format" not in r.body]
    return turns[-1].body["messages"]  # type: ignore[index]


@pytest.fixture
def database_url(on_both_backends: str) -> str:
    """The engine tests here run on SQLite and on PostgreSQL."""
    return on_both_backends


@pytest.mark.parametrize("budget", [16_000, 100_000])
async def test_a_huge_mention_is_answered_within_the_budget(
    sim: Simulator,
    make_settings: Callable[..., Settings],
    huge: tuple[str, list[str]],
    budget: int,
) -> None:
    text, _ = huge
    services = await build_services(make_settings(context_budget_tokens=budget))
    try:
        sim.enqueue(Text("That is a lot of text."))
        reply = RecordingReply()
        outcome = await services.engine.handle(make_event(text), reply)
        assert outcome is not None and outcome.status == "done", outcome
        assert reply.final == "That is a lot of text."
        sent = _turn_messages(sim)
        last = sent[-1]["content"]
        assert last.endswith(TRUNCATION_MARKER)
        assert text.startswith(last.removesuffix(TRUNCATION_MARKER))
        count = services.engine.tokens.count
        used = sum(count(m["content"]) + MESSAGE_OVERHEAD for m in sent[1:])
        used += count(sent[0]["content"])  # the instructions
        assert used <= budget
        assert used > budget * 0.9, "the truncated message fills the room"
        conversation = await services.store.conversations.get(make_event("x").key)
        assert conversation is not None
        stored = await services.store.messages.all(conversation)
        assert stored[0].content == text, "the whole message is kept"
        assert stored[0].tokens == count(text)
        await services.engine.drain()
    finally:
        await services.close()
