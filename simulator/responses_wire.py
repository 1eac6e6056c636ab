"""Responses API shapes: the request's gist, the response object and its stream events."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from simulator import hosted
from simulator.plan import Ask, count_tokens, offered_tools, text_of
from simulator.script import McpApproval, Text, ToolCalls


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's input as a list of items (a string becomes one user message)."""
    raw = body.get("input") or []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return [dict(item) for item in raw]


def ask(body: dict[str, Any], history: list[dict[str, Any]]) -> Ask:
    """Read a responses request (with a conversation's stored items before its input)."""
    items = history + input_items(body)
    users = [i for i in items if i.get("role") == "user"]
    prompt = (body.get("instructions") or "") + "\n".join(
        text_of(i.get("content")) + str(i.get("output", "")) + str(i.get("arguments", ""))
        for i in items
    )
    fmt = (body.get("text") or {}).get("format") or {}
    return Ask(
        model=body.get("model", ""),
        last_user_text=text_of(users[-1].get("content")) if users else "",
        prompt_text=prompt + json.dumps(body.get("tools") or ""),
        messages=len(items),
        schema=fmt.get("schema") if fmt.get("type") == "json_schema" else None,
        logprobs="message.output_text.logprobs" in (body.get("include") or []),
        tools=offered_tools(body.get("tools"), body.get("tool_choice")),
        tool_results=_trailing_results(items),
    )


def _trailing_results(items: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """(name, output) of the function_call_output items the input ends with."""
    names = {
        i.get("call_id"): str(i.get("name", "tool"))
        for i in items
        if i.get("type") == "function_call"
    }
    results: list[tuple[str, str]] = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        output = item.get("output")
        text = output if isinstance(output, str) else text_of(output)
        results.append((names.get(item.get("call_id"), "tool"), text))
    return tuple(reversed(results))


def _logprobs(piece: str, step: Text, wanted: bool) -> list[dict[str, Any]]:
    if not wanted:
        return []
    value = step.logprob if step.logprob is not None else -0.05
    return [{"token": piece, "logprob": value, "bytes": list(piece.encode()), "top_logprobs": []}]


def output_items(step: Text | ToolCalls, a: Ask) -> list[dict[str, Any]]:
    """The finished output items for a step."""
    if isinstance(step, McpApproval):
        return hosted.call_items(step)
    if isinstance(step, Text):
        return [
            *hosted.call_items(step),
            {
                "id": f"msg_{uuid.uuid4().hex[:16]}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": step.text,
                        "annotations": hosted.url_annotations(step),
                        "logprobs": _logprobs(step.text, step, a.logprobs),
                    }
                ],
            },
        ]
    return [
        {
            "id": f"fc_{uuid.uuid4().hex[:16]}",
            "type": "function_call",
            "status": "completed",
            "call_id": f"call_{uuid.uuid4().hex[:12]}",
            "name": name,
            "arguments": arguments,
        }
        for name, arguments in step.encoded()
    ]


def response(
    body: dict[str, Any],
    a: Ask,
    output: list[dict[str, Any]],
    status: str,
    step: Text | ToolCalls | None,
) -> dict[str, Any]:
    """A response object."""
    completion = sum(
        count_tokens(part.get("text", "")) for item in output for part in item.get("content", [])
    ) + sum(count_tokens(item.get("arguments", "")) for item in output)
    prompt = count_tokens(a.prompt_text) + 3 * a.messages
    usage: dict[str, Any] | None = None
    if status == "completed":
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }
        if isinstance(step, Text) and step.usage:
            usage.update(
                {
                    "input_tokens": step.usage.get("prompt_tokens", prompt),
                    "output_tokens": step.usage.get("completion_tokens", completion),
                }
            )
    conversation = body.get("conversation")
    if isinstance(conversation, str):
        conversation = {"id": conversation}
    return {
        "id": body.get("_response_id", f"resp_{uuid.uuid4().hex[:16]}"),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": a.model,
        "output": output,
        "usage": usage,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": body.get("tools") or [],
        "text": body.get("text") or {"format": {"type": "text"}},
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "metadata": body.get("metadata") or {},
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"),
        "store": body.get("store", True),
        "conversation": conversation,
    }


def stream(
    body: dict[str, Any], a: Ask, step: Text | ToolCalls, pieces: list[str]
) -> Iterator[dict[str, Any]]:
    """The stream events of a response, in OpenAI's order."""
    body = {**body, "_response_id": f"resp_{uuid.uuid4().hex[:16]}"}
    yield {"type": "response.created", "response": response(body, a, [], "in_progress", None)}
    yield {"type": "response.in_progress", "response": response(body, a, [], "in_progress", None)}
    output = output_items(step, a)
    for index, item in enumerate(output):
        started = {**item, "status": "in_progress"}
        if item["type"] == "message":
            started["content"] = []
            yield {"type": "response.output_item.added", "output_index": index, "item": started}
            part = {"type": "output_text", "text": "", "annotations": []}
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            yield {"type": "response.content_part.added", **common, "part": part}
            assert isinstance(step, Text)
            for piece in pieces:
                yield {
                    "type": "response.output_text.delta",
                    **common,
                    "delta": piece,
                    "logprobs": _logprobs(piece, step, a.logprobs),
                }
            text = item["content"][0]["text"]
            for number, note in enumerate(item["content"][0]["annotations"]):
                yield {
                    "type": "response.output_text.annotation.added",
                    **common,
                    "annotation_index": number,
                    "annotation": note,
                }
            yield {"type": "response.output_text.done", **common, "text": text, "logprobs": []}
            yield {"type": "response.content_part.done", **common, "part": {**part, "text": text}}
        elif item["type"] != "function_call":  # a hosted tool's item: added, then done
            yield {"type": "response.output_item.added", "output_index": index, "item": started}
        else:
            started["arguments"] = ""
            yield {"type": "response.output_item.added", "output_index": index, "item": started}
            args = item["arguments"]
            for i in range(0, len(args), 16):
                yield {
                    "type": "response.function_call_arguments.delta",
                    "item_id": item["id"],
                    "output_index": index,
                    "delta": args[i : i + 16],
                }
            yield {
                "type": "response.function_call_arguments.done",
                "item_id": item["id"],
                "output_index": index,
                "name": item["name"],
                "arguments": args,
            }
        yield {"type": "response.output_item.done", "output_index": index, "item": item}
    yield {"type": "response.completed", "response": response(body, a, output, "completed", step)}
