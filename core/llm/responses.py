"""The Responses API wire: stateless by default (`store: false`), context sent as input items."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator
from typing import Any

from core.llm.client import ModelClient
from core.llm.types import (
    Completed,
    Message,
    ModelRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
)


def input_items(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Our messages as Responses input items."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            output: Any = message.text
            if message.images:  # a tool result with pictures (an MCP tool's image content)
                output = [{"type": "input_text", "text": message.text}] + [
                    {"type": "input_image", "image_url": image.url, "detail": image.detail}
                    for image in message.images
                ]
            items.append(
                {"type": "function_call_output", "call_id": message.tool_call_id, "output": output}
            )
            continue
        if message.role == "user" and message.images:
            content: Any = [{"type": "input_text", "text": message.text}] + [
                {"type": "input_image", "image_url": image.url, "detail": image.detail}
                for image in message.images
            ]
            items.append({"role": "user", "content": content})
        elif message.text or not message.tool_calls:
            items.append({"role": message.role, "content": message.text})
        items.extend(
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
            for c in message.tool_calls
        )
    return items


def request_body(request: ModelRequest) -> dict[str, Any]:
    """The JSON body of a streaming `POST /responses`."""
    params: dict[str, Any] = {
        "model": request.model,
        "input": input_items(request.messages),
        "stream": True,
    }
    if request.conversation:
        params["conversation"] = request.conversation
    else:
        params["store"] = False
    if request.instructions:
        params["instructions"] = request.instructions
    if request.tools or request.builtin_tools:
        params["tools"] = list(request.builtin_tools) + [
            {
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
                "strict": tool.strict,
            }
            for tool in request.tools
        ]
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.max_output_tokens:
        params["max_output_tokens"] = request.max_output_tokens
    if request.response_format:
        params["text"] = {
            "format": {
                "type": "json_schema",
                "name": request.response_format.name,
                "schema": request.response_format.schema,
                "strict": True,
            }
        }
    if request.logprobs:
        params["include"] = ["message.output_text.logprobs"]
        params["top_logprobs"] = 0
    if request.user:
        params["safety_identifier"] = hashlib.sha256(request.user.encode()).hexdigest()[:32]
    if request.metadata:
        params["metadata"] = request.metadata
    return params


class ResponsesClient(ModelClient):
    """Streams calls through `POST /v1/responses`."""

    wire_api = "responses"

    async def _stream_once(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        stream = await self._post_stream("/responses", request_body(request))
        text: list[str] = []
        calls: list[ToolCall] = []
        logprobs: list[float] = []
        async with stream:
            async for event in stream:
                kind = event.get("type")
                if kind == "response.output_text.delta":
                    text.append(event["delta"])
                    logprobs.extend(lp["logprob"] for lp in event.get("logprobs") or ())
                    yield TextDelta(event["delta"])
                elif (
                    kind == "response.output_item.done" and event["item"]["type"] == "function_call"
                ):
                    item = event["item"]
                    calls.append(ToolCall(item["call_id"], item["name"], item["arguments"]))
                elif kind in ("response.completed", "response.incomplete"):
                    response = event["response"]
                    usage = response.get("usage")
                    yield Completed(
                        text="".join(text),
                        tool_calls=tuple(calls),
                        usage=Usage(
                            usage["input_tokens"],
                            (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
                            usage["output_tokens"],
                        )
                        if usage
                        else Usage(),
                        model=response.get("model") or request.model,
                        finish_reason="tool_calls"
                        if calls
                        else ("stop" if kind == "response.completed" else "length"),
                        mean_logprob=sum(logprobs) / len(logprobs) if logprobs else None,
                        response_id=response.get("id", ""),
                    )
                    return
                elif kind in ("response.failed", "error"):
                    raise ValueError(f"the model reported an error: {_error_text(event)}")
        raise ValueError("the model's stream ended without response.completed")


def _error_text(event: dict[str, Any]) -> str:
    error = (event.get("response") or {}).get("error") or event.get("error") or event
    return str(error.get("message", error) if isinstance(error, dict) else error)
