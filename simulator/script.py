"""Scripted steps that decide how the simulator answers the next generation requests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Text:
    """Reply with text, streamed in pieces `pace` seconds apart; `cut_after` aborts the stream
    after that many characters."""

    text: str
    delay: float = 0.0
    pace: float = 0.0
    cut_after: int | None = None
    logprob: float | None = None
    usage: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class WebSearch(Text):
    """(Responses) a `web_search_call`, then `text` citing `citations`: (url, title, the quoted
    part of `text`; "" cites the end) as `url_citation` annotations."""

    query: str = ""
    citations: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CodeRun(Text):
    """(Responses) a `code_interpreter_call` running `code` with `output` in its logs, then text."""

    code: str = ""
    output: str = ""


@dataclass(frozen=True, slots=True)
class McpApproval(Text):
    """(Responses) a hosted MCP server's `mcp_approval_request` for `name`, and no text."""

    server_label: str = ""
    name: str = ""
    arguments: str = "{}"


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """Reply with one or more function calls (several = parallel calls)."""

    calls: tuple[tuple[str, dict[str, Any] | str], ...]
    delay: float = 0.0

    @classmethod
    def of(cls, *calls: tuple[str, dict[str, Any] | str], delay: float = 0.0) -> ToolCalls:
        """`ToolCalls.of(("name", {"arg": 1}), ...)`."""
        return cls(tuple(calls), delay)

    def encoded(self) -> list[tuple[str, str]]:
        """(name, JSON arguments) pairs; a string argument is sent verbatim."""
        return [(n, a if isinstance(a, str) else json.dumps(a)) for n, a in self.calls]


@dataclass(frozen=True, slots=True)
class Fail:
    """Answer with an HTTP error in OpenAI's error shape, with optional retry headers."""

    status: int
    code: str | None = None
    message: str = "simulated failure"
    retry_after: float | None = None
    retry_after_ms: int | None = None
    should_retry: bool | None = None
    delay: float = 0.0

    def body(self) -> dict[str, Any]:
        """OpenAI's error body."""
        kinds = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            429: "rate_limit_exceeded",
        }
        kind = (
            "insufficient_quota"
            if self.code == "insufficient_quota"
            else kinds.get(self.status, "server_error")
        )
        return {"error": {"message": self.message, "type": kind, "param": None, "code": self.code}}

    def headers(self) -> dict[str, str]:
        """Retry-related headers."""
        headers = {}
        if self.retry_after is not None:
            headers["retry-after"] = f"{self.retry_after:g}"
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.retry_after_ms)
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers


Step = Text | ToolCalls | Fail


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the simulator received."""

    endpoint: str
    method: str
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str] = field(repr=False)
    at: float = 0.0


def step_from_json(data: dict[str, Any]) -> Step:
    """Build a step from the admin API's JSON (`{"kind": "text" | "tool_calls" | "fail", ...}`)."""
    kind = data.pop("kind")
    if kind == "text":
        return Text(**data)
    if kind == "tool_calls":
        return ToolCalls(tuple((c[0], c[1]) for c in data["calls"]), data.get("delay", 0.0))
    if kind == "fail":
        return Fail(**data)
    raise ValueError(f"unknown step kind {kind!r}")
