"""The rules of OpenAI's chat fine-tuning format, checked line by line (as OpenAI's data
preparation guide checks them): each line one JSON object with a non-empty `messages` list; roles
system, user, assistant (tool calls are not exported); an optional system message first only; then
user and assistant alternating, starting with user and ending with assistant; every content a
non-empty string; `weight` only on assistant messages, 0 or 1, and the example trains on at least
one message; no other keys."""

from __future__ import annotations

import json
from typing import Any

MESSAGE_KEYS = {"role", "content", "weight"}


def check_example(example: object) -> None:
    """Raise AssertionError naming the first rule the example breaks."""
    assert isinstance(example, dict) and set(example) == {"messages"}, "only a messages key"
    messages = example["messages"]
    assert isinstance(messages, list) and messages, "a non-empty messages list"
    for m in messages:
        assert isinstance(m, dict) and set(m) <= MESSAGE_KEYS, f"unknown keys in {m}"
        assert m.get("role") in {"system", "user", "assistant"}, f"role {m.get('role')!r}"
        assert isinstance(m.get("content"), str) and m["content"].strip(), "empty content"
        if "weight" in m:
            assert m["role"] == "assistant" and m["weight"] in (0, 1), "weight 0/1 on assistant"
    rest = messages[1:] if messages[0]["role"] == "system" else messages
    assert all(m["role"] != "system" for m in rest), "a system message only first"
    assert rest, "at least one user and assistant message"
    for i, m in enumerate(rest):
        assert m["role"] == ("user" if i % 2 == 0 else "assistant"), "user/assistant alternate"
    assert rest[-1]["role"] == "assistant", "ends with the assistant"
    assert any(m.get("weight", 1) == 1 for m in rest if m["role"] == "assistant"), "trains on one"


def check_fine_tune_file(text: str) -> list[dict[str, Any]]:
    """Every line of a fine-tuning JSONL file, checked; returns the examples."""
    assert text.endswith("\n") or not text, "JSON Lines end each line with a newline"
    examples = []
    for number, line in enumerate(text.splitlines(), 1):
        example = json.loads(line)  # each line valid JSON on its own
        try:
            check_example(example)
        except AssertionError as exc:
            raise AssertionError(f"line {number}: {exc}") from None
        examples.append(example)
    return examples
