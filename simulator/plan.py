"""What a generation request asked for, and the reply the simulator will give it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from simulator.default_tools import OfferedTool, answer_from, tool_call_for
from simulator.schema_fill import fill
from simulator.script import Step, Text


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    """Exact o200k token count (prompt usage is reported like OpenAI's)."""
    encoding = _encoding()  # in pieces: the encoder refuses 200,000+ tokens in one call
    return sum(
        len(encoding.encode_ordinary(text[i : i + 50_000])) for i in range(0, len(text), 50_000)
    )


@dataclass(frozen=True, slots=True)
class Ask:
    """The wire-neutral gist of a generation request."""

    model: str
    last_user_text: str
    prompt_text: str
    messages: int
    schema: dict[str, Any] | None
    logprobs: bool
    tools: tuple[OfferedTool, ...] = ()
    """The function tools offered (none when `tool_choice` is "none")."""
    tool_results: tuple[tuple[str, str], ...] = ()
    """(tool name, output) of the tool results the input ends with, if it ends with any."""


def default_step(ask: Ask, *, use_tools: bool = True) -> Step:
    """The deterministic reply when nothing is queued. With `use_tools`: an arithmetic or time ask
    with `calculate` or `now` offered calls it, and after tool results the answer is text from
    them. Otherwise structured output fills the schema and anything else is echoed."""
    if use_tools and ask.tools and not ask.tool_results:
        call = tool_call_for(ask.last_user_text, ask.tools)
        if call is not None:
            return call
    if ask.schema is not None:
        import json

        return Text(json.dumps(fill(ask.schema, context=f"{ask.messages} messages")))
    if use_tools and ask.tool_results:
        return Text(answer_from(ask.tool_results))
    return Text(f"You said: {ask.last_user_text}")


def offered_tools(tools: Any, tool_choice: Any) -> tuple[OfferedTool, ...]:
    """The function tools of a request (Responses' flat shape or Chat's nested one)."""
    if tool_choice == "none" or not isinstance(tools, list):
        return ()
    offered = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        nested = tool.get("function")
        spec: dict[str, Any] = nested if isinstance(nested, dict) else tool
        if isinstance(spec.get("name"), str):
            parameters = spec.get("parameters")
            offered.append(
                OfferedTool(spec["name"], parameters if isinstance(parameters, dict) else None)
            )
    return tuple(offered)


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
