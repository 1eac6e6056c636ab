"""Chat Completions shapes: the request's gist, whole responses and streamed chunks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from simulator.plan import Ask, count_tokens, offered_tools, text_of
from simulator.script import Text, ToolCalls


def ask(body: dict[str, Any]) -> Ask:
    """Read a chat completions request."""
    messages = body.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    prompt = "\n".join(
        text_of(m.get("content")) + json.dumps(m.get("tool_calls") or "") for m in messages
    )
    fmt = body.get("response_format") or {}
    schema = fmt.get("json_schema", {}).get("schema") if fmt.get("type") == "json_schema" else None
    return Ask(
        model=body.get("model", ""),
        last_user_text=text_of(users[-1].get("content")) if users else "",
        prompt_text=prompt + json.dumps(body.get("tools") or ""),
        messages=len(messages),
        schema=schema,
        logprobs=bool(body.get("logprobs")),
        tools=offered_tools(body.get("tools"), body.get("tool_choice")),
        tool_results=_trailing_results(messages),
    )


def _trailing_results(messages: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """(name, output) of the tool messages the conversation ends with."""
    names = {
        call.get("id"): str((call.get("function") or {}).get("name", "tool"))
        for m in messages
        if m.get("role") == "assistant"
        for call in m.get("tool_calls") or []
        if isinstance(call, dict)
    }
    results: list[tuple[str, str]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(
            (names.get(message.get("tool_call_id"), "tool"), text_of(message.get("content")))
        )
    return tuple(reversed(results))


def _usage(a: Ask, completion: int, step: Text | None) -> dict[str, Any]:
    prompt = count_tokens(a.prompt_text) + 3 * a.messages
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    if step is not None and step.usage:
        usage.update(step.usage)
    return usage


def _logprobs(text_piece: str, step: Text) -> dict[str, Any]:
    value = step.logprob if step.logprob is not None else -0.05
    return {
        "content": [
            {
                "token": text_piece,
                "logprob": value,
                "bytes": list(text_piece.encode()),
                "top_logprobs": [],
            }
        ]
    }


def _tool_calls(step: ToolCalls) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": n, "arguments": a},
        }
        for n, a in step.encoded()
    ]


def completion(a: Ask, step: Text | ToolCalls) -> dict[str, Any]:
    """A whole (non-streamed) chat completion."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None}
    if isinstance(step, Text):
        message["content"] = step.text
        choice["finish_reason"] = "stop"
        if a.logprobs:
            choice["logprobs"] = _logprobs(step.text, step)
        usage = _usage(a, count_tokens(step.text), step)
    else:
        message["tool_calls"] = _tool_calls(step)
        choice["finish_reason"] = "tool_calls"
        usage = _usage(a, sum(count_tokens(x) for _, x in step.encoded()) + 5, None)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": a.model,
        "choices": [choice],
        "usage": usage,
    }


def stream(
    a: Ask, step: Text | ToolCalls, pieces: list[str], include_usage: bool
) -> Iterator[dict[str, Any]]:
    """Streamed chunks; for text, one per piece."""
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": a.model,
    }

    def chunk(
        delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
    ) -> dict[str, Any]:
        return {
            **base,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            ],
        }

    yield chunk({"role": "assistant", "content": ""})
    if isinstance(step, Text):
        for piece in pieces:
            yield chunk({"content": piece}, logprobs=_logprobs(piece, step) if a.logprobs else None)
        yield chunk({}, "stop")
        completion_tokens = count_tokens(step.text)
    else:
        for index, call in enumerate(_tool_calls(step)):
            first = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            yield chunk({"tool_calls": [first]})
            args = call["function"]["arguments"]
            for i in range(0, len(args), 16):
                yield chunk(
                    {"tool_calls": [{"index": index, "function": {"arguments": args[i : i + 16]}}]}
                )
        yield chunk({}, "tool_calls")
        completion_tokens = sum(count_tokens(x) for _, x in step.encoded()) + 5
    if include_usage:
        yield {
            **base,
            "choices": [],
            "usage": _usage(a, completion_tokens, step if isinstance(step, Text) else None),
        }
