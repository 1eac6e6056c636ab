"""The Chat Completions wire, spoken by OpenAI-compatible servers (vLLM, Ollama, gateways)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from core.llm.client import ModelClient
from core.llm.types import (
    Completed,
    ModelRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
    file_text,
)


def chat_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """Our messages as Chat Completions messages, instructions first."""
    out: list[dict[str, Any]] = []
    if request.instructions:
        out.append({"role": "system", "content": request.instructions})
    for message in request.messages:
        if message.role == "tool":
            out.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
            )
            continue
        text = "\n\n".join([message.text, *(file_text(f) for f in message.files)])
        entry: dict[str, Any] = {"role": message.role, "content": text.strip("\n")}
        if message.images:
            entry["content"] = [{"type": "text", "text": entry["content"]}] + [
                {"type": "image_url", "image_url": {"url": image.url, "detail": image.detail}}
                for image in message.images
            ]
        if message.tool_calls:
            entry["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
            entry["content"] = message.text or None
        out.append(entry)
    return out


def request_body(request: ModelRequest) -> dict[str, Any]:
    """The JSON body of a streaming `POST /chat/completions` (with usage)."""
    params: dict[str, Any] = {
        "model": request.model,
        "messages": chat_messages(request),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        params["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                    "strict": tool.strict,
                },
            }
            for tool in request.tools
        ]
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.max_output_tokens:
        params["max_completion_tokens"] = request.max_output_tokens
    if request.response_format:
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": request.response_format.name,
                "schema": request.response_format.schema,
                "strict": True,
            },
        }
    if request.logprobs:
        params["logprobs"] = True
    if request.user:
        params["user"] = request.user
    return params


class ChatClient(ModelClient):
    """Streams calls through `POST /v1/chat/completions`."""

    wire_api = "chat"

    async def _stream_once(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        stream = await self._post_stream("/chat/completions", request_body(request))
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        logprobs: list[float] = []
        usage = Usage()
        model = request.model
        finish_reason = ""
        async with stream:
            async for chunk in stream:
                model = chunk.get("model") or model
                if counts := chunk.get("usage"):
                    details = counts.get("prompt_tokens_details") or {}
                    usage = Usage(
                        counts.get("prompt_tokens") or 0,
                        details.get("cached_tokens") or 0,
                        counts.get("completion_tokens") or 0,
                    )
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if content := delta.get("content"):
                        text.append(content)
                        yield TextDelta(content)
                    for fragment in delta.get("tool_calls") or ():
                        call = calls.setdefault(
                            fragment.get("index", 0), {"id": "", "name": "", "args": ""}
                        )
                        call["id"] = fragment.get("id") or call["id"]
                        if function := fragment.get("function"):
                            call["name"] = function.get("name") or call["name"]
                            call["args"] += function.get("arguments") or ""
                    if (choice.get("logprobs") or {}).get("content"):
                        logprobs.extend(lp["logprob"] for lp in choice["logprobs"]["content"])
                    finish_reason = choice.get("finish_reason") or finish_reason
        if not finish_reason:
            raise ValueError("the model's stream ended without a finish reason")
        yield Completed(
            text="".join(text),
            tool_calls=tuple(
                ToolCall(c["id"], c["name"], c["args"]) for _, c in sorted(calls.items())
            ),
            usage=usage,
            model=model,
            finish_reason=finish_reason,
            mean_logprob=sum(logprobs) / len(logprobs) if logprobs else None,
        )
