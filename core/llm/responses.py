"""The Responses API wire: stateless by default (`store: false`), context sent as input items."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncGenerator
from typing import Any

from core.llm.client import ModelClient
from core.llm.types import (
    MCP_APPROVED,
    Completed,
    FilePart,
    Message,
    ModelRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
    file_text,
)
from core.render.citations import citations_of, link_citations, url_citations


def input_items(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Our messages as Responses input items."""
    items: list[dict[str, Any]] = []
    approvals = {c.id for m in messages for c in m.tool_calls if c.kind == "mcp_approval"}
    for message in messages:
        if message.role == "tool" and (
            message.answers == "mcp_approval" or message.tool_call_id in approvals
        ):
            approve = message.text == MCP_APPROVED
            response = {
                "type": "mcp_approval_response",
                "approval_request_id": message.tool_call_id,
                "approve": approve,
            }
            items.append(response if approve else {**response, "reason": message.text})
            continue
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
        if message.role == "user" and (message.images or message.files):
            content: Any = [{"type": "input_text", "text": message.text}]
            content += [
                {"type": "input_image", "image_url": image.url, "detail": image.detail}
                for image in message.images
            ]
            content += [file_item(file) for file in message.files]
            items.append({"role": "user", "content": content})
        elif message.text or not message.tool_calls:
            items.append({"role": message.role, "content": message.text})
        items.extend(call_item(c) for c in message.tool_calls)
    return items


def call_item(call: ToolCall) -> dict[str, Any]:
    """A call the model made, as an input item (a function call, or a hosted MCP server's
    approval request)."""
    if call.kind == "mcp_approval":
        return {
            "type": "mcp_approval_request",
            "id": call.id,
            "server_label": call.server,
            "name": call.name,
            "arguments": call.arguments,
        }
    return {
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
    }


def file_item(file: FilePart) -> dict[str, Any]:
    """An attached file: an `input_file` with its bytes, or its (cut) text when too large."""
    if file.send_as_text:
        return {"type": "input_text", "text": file_text(file)}
    data = base64.b64encode(file.data).decode()
    return {
        "type": "input_file",
        "filename": file.name,
        "file_data": f"data:{file.mime_type};base64,{data}",
    }


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
        cited: list[tuple[str, str]] = []  # (text part, with its citations linked)
        sources: list[Any] = []
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
                elif (
                    kind == "response.output_item.done"
                    and event["item"]["type"] == "mcp_approval_request"
                ):
                    item = event["item"]
                    calls.append(
                        ToolCall(
                            item["id"],
                            item.get("name", ""),
                            item.get("arguments", ""),
                            kind="mcp_approval",
                            server=item.get("server_label", ""),
                        )
                    )
                elif kind == "response.output_item.done" and event["item"]["type"] == "message":
                    for part in event["item"].get("content") or ():
                        found = url_citations(part.get("annotations") or ())
                        if found and isinstance(part.get("text"), str):
                            cited.append((part["text"], link_citations(part["text"], found)))
                            sources += found
                elif kind in ("response.completed", "response.incomplete"):
                    response = event["response"]
                    usage = response.get("usage")
                    whole = "".join(text)
                    for plain, linked in cited:
                        whole = whole.replace(plain, linked, 1)
                    yield Completed(
                        text=whole,
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
                        citations=citations_of(sources),
                    )
                    return
                elif kind in ("response.failed", "error"):
                    raise ValueError(f"the model reported an error: {_error_text(event)}")
        raise ValueError("the model's stream ended without response.completed")


def _error_text(event: dict[str, Any]) -> str:
    error = (event.get("response") or {}).get("error") or event.get("error") or event
    return str(error.get("message", error) if isinstance(error, dict) else error)
