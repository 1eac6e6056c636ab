"""What a generation request asked for, and the reply the simulator will give it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from simulator.schema_fill import fill
from simulator.script import Step, Text


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    """Exact o200k token count (prompt usage is reported like OpenAI's)."""
    return len(_encoding().encode_ordinary(text[:900_000]))


@dataclass(frozen=True, slots=True)
class Ask:
    """The wire-neutral gist of a generation request."""

    model: str
    last_user_text: str
    prompt_text: str
    messages: int
    schema: dict[str, Any] | None
    logprobs: bool


def default_step(ask: Ask) -> Step:
    """The deterministic reply when nothing is queued."""
    if ask.schema is not None:
        import json

        return Text(json.dumps(fill(ask.schema, context=f"{ask.messages} messages")))
    return Text(f"You said: {ask.last_user_text}")


def text_of(content: Any) -> str:
    """The text of a message's content, whether a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def chunks(text: str, size: int) -> list[str]:
    """`text` in pieces of `size` characters."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
