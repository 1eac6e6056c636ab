"""Wire-neutral request, message and stream-event types shared by both OpenAI wire APIs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image given to the model, as a data: URL or an https URL."""

    url: str
    detail: Literal["low", "high", "auto"] = "auto"


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file given to the model: its bytes (for wires that take files, e.g. a Responses
    ``input_file``) and its text as extracted here (for wires that take only text)."""

    name: str
    mime_type: str
    data: bytes = field(repr=False)
    text: str = field(default="", repr=False)
    note: str = ""  # shown with the text when it was cut to fit (e.g. "pages 1-12 of 40")
    send_as_text: bool = False  # too large for the wire's file input: send the (cut) text


def file_text(file: FilePart) -> str:
    """An attached file as text for the model: a header naming it (and any cut), then its text."""
    note = f" ({file.note})" if file.note else ""
    return f"[Attached file {file.name}{note}]\n{file.text}"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for; ``arguments`` is the raw JSON text.

    ``kind`` is ``function`` for our function tools, or ``mcp_approval`` for a hosted MCP
    server's approval request (``server`` is its label); those are answered, not run.
    """

    id: str
    name: str
    arguments: str
    kind: Literal["function", "mcp_approval"] = "function"
    server: str = ""


@dataclass(frozen=True, slots=True)
class Citation:
    """A source the answer cites (a web search ``url_citation``)."""

    url: str
    title: str = ""


# The tool message that approves a hosted MCP server's request (any other text denies it).
MCP_APPROVED = "approved by the user"


@dataclass(frozen=True, slots=True)
class Message:
    """One item of context. ``tool`` messages carry ``tool_call_id``; assistant ones may carry calls."""

    role: Role
    text: str = ""
    images: tuple[ImagePart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""
    files: tuple[FilePart, ...] = ()
    answers: Literal["function", "mcp_approval"] = "function"  # what a tool message answers


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function tool offered to the model; ``parameters`` is a strict JSON schema (object root)."""

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool = True


@dataclass(frozen=True, slots=True)
class JsonSchemaFormat:
    """Ask for structured output matching a strict JSON schema."""

    name: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything one model call needs, independent of the wire API."""

    model: str
    messages: tuple[Message, ...]
    instructions: str = ""
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    max_output_tokens: int | None = None
    response_format: JsonSchemaFormat | None = None
    logprobs: bool = False
    user: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    conversation: str = ""
    builtin_tools: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the API for one call."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.cached_tokens + other.cached_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of streamed reply text."""

    text: str


@dataclass(frozen=True, slots=True)
class Completed:
    """The end of one model call: whole text, tool calls (if any), usage and the model that answered."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    model: str
    finish_reason: str = "stop"
    mean_logprob: float | None = None
    response_id: str = ""
    citations: tuple[Citation, ...] = ()


StreamEvent = TextDelta | Completed
