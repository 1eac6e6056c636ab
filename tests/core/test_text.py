"""Splitting long replies: limits, boundaries and code fences."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from core.render.text import split_message


def _fences_balanced(chunk: str) -> bool:
    return sum(1 for line in chunk.split("\n") if line.strip().startswith("```")) % 2 == 0


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello", 2000) == ["hello"]


def test_paragraph_boundaries_are_preferred() -> None:
    text = "first paragraph " * 10 + "\n\n" + "second paragraph " * 10
    chunks = split_message(text, 200)
    assert chunks[0].endswith("first paragraph")
    assert chunks[1].startswith("second paragraph")


def test_a_long_reply_with_a_code_block_is_split_with_fences_reopened() -> None:
    prose = "Here is the plan. " * 60
    code = "```python\n" + "\n".join(f"print({i})  # step {i}" for i in range(150)) + "\n```"
    text = prose + "\n\n" + code + "\n\nThat is all."
    assert len(text) > 4500 - 1000
    chunks = split_message(text, 2000)
    assert all(len(chunk) <= 2000 for chunk in chunks)
    assert all(_fences_balanced(chunk) for chunk in chunks)
    continued = [c for c in chunks[1:] if c.startswith("```python\n")]
    assert continued, "the code block is reopened with its language"
    joined = "".join(chunks)
    for i in range(150):
        assert f"print({i})" in joined


def test_a_word_longer_than_the_limit_is_hard_cut() -> None:
    chunks = split_message("x" * 100, 40)
    assert all(len(chunk) <= 40 for chunk in chunks)
    assert "".join(chunks) == "x" * 100


def _content(text: str) -> str:
    """Text without fence markers and whitespace: what splitting must preserve."""
    return "".join(re.sub(r"```\S*", "", text).split())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "bc", " ", "de ", "\n", ".", "\n```\n", "\n\n"]),
        max_size=800,
    ).map("".join),
    st.integers(min_value=16, max_value=500),
)
def test_chunks_respect_the_limit_and_keep_the_content(text: str, limit: int) -> None:
    chunks = split_message(text, limit)
    assert all(0 < len(chunk) <= limit for chunk in chunks)
    assert all(chunk.strip() for chunk in chunks)
    assert _content("\n".join(chunks)) == _content(text)
