"""The tool loop: call the model, run the tools it asks for (concurrently), feed results back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import structlog

from core.events import Reply
from core.llm.tokens import TokenCounter
from core.llm.types import MCP_APPROVED, Completed, Message, ModelRequest, ToolCall, Usage
from core.plugin import ToolContext
from core.store.records import Step
from core.tools import ToolResult, invoke
from core.tools.catalog import AnyTool, ToolSet

if TYPE_CHECKING:
    from core.interactive.approvals import ApprovalGate, ApprovalScope

log = structlog.get_logger(__name__)

NO_APPROVALS = "error: {tool} needs a person's approval, which cannot be given here"
ModelCall = Callable[[ModelRequest], Awaitable[Completed]]
Continue = Callable[[ModelRequest, tuple[Message, ...]], ModelRequest]


@dataclass
class Answer:
    """The outcome of a turn's model calls: the text shown, the last call, what to store."""

    text: str
    last: Completed
    usage: Usage = field(default_factory=Usage)
    steps: list[Step] = field(default_factory=list)


def enabled_tools(registry: ToolSet, switches: Mapping[str, bool]) -> list[AnyTool]:
    """Every registered tool, minus those switched off for the conversation's scope."""
    return [tool for tool in registry if switches.get(tool.name, True)]


class ToolLoop:
    """Runs up to `max_steps` rounds of tool calls, then makes the model answer without tools."""

    def __init__(
        self,
        registry: ToolSet,
        tokens: TokenCounter,
        *,
        max_steps: int,
        timeout: float,
        gate: ApprovalGate | None = None,
    ) -> None:
        self.registry = registry
        self._tokens = tokens
        self._max_steps = max_steps
        self._timeout = timeout
        self.gate = gate  # tool calls that need a person's approval wait here

    async def run(
        self,
        request: ModelRequest,
        *,
        call: ModelCall,
        proceed: Continue,
        tools: list[AnyTool],
        ctx: ToolContext,
        reply: Reply,
        approvals: ApprovalScope | None = None,
    ) -> Answer:
        """Answer `request`, running the tool calls the model makes along the way (those that
        need approval once a person approved them, in `approvals`' turn)."""
        allowed = {tool.name: tool for tool in tools}
        specs = tuple(tool.spec for tool in tools)
        texts: list[str] = []
        steps: list[Step] = []
        usage = Usage()
        for step in range(self._max_steps + 1):
            last_round = step == self._max_steps or not specs
            if texts and texts[-1]:
                await reply.append("\n\n")
            done = await call(replace(request, tools=() if last_round else specs))
            usage = usage + done.usage
            texts.append(done.text)
            if not done.tool_calls or last_round:
                steps.append(Step("assistant", done.text, tokens=done.usage.completion_tokens))
                break
            results = await asyncio.gather(
                *(self._execute(c, allowed, ctx, approvals) for c in done.tool_calls)
            )
            assistant = Message(role="assistant", text=done.text, tool_calls=done.tool_calls)
            outputs = tuple(
                Message(
                    role="tool",
                    text=result.output,
                    tool_call_id=c.id,
                    name=c.name,
                    images=result.images,
                    answers=c.kind,
                )
                for c, result in zip(done.tool_calls, results, strict=True)
            )
            steps.append(
                Step("assistant", done.text, done.tool_calls, tokens=done.usage.completion_tokens)
            )
            steps += [
                Step("tool", m.text, tool_call_id=m.tool_call_id, tokens=self._tokens.count(m.text))
                for m in outputs
            ]
            request = proceed(request, (assistant, *outputs))
        text = "\n\n".join(t for t in texts if t)
        return Answer(text, done, usage, steps)

    async def _execute(
        self,
        call: ToolCall,
        allowed: Mapping[str, AnyTool],
        ctx: ToolContext,
        approvals: ApprovalScope | None = None,
    ) -> ToolResult:
        if call.kind == "mcp_approval":  # a hosted MCP server asks before OpenAI runs its tool
            refused = await self._approve(call, f"{call.server}__{call.name}", approvals)
            return refused or ToolResult(True, MCP_APPROVED)
        tool = allowed.get(call.name)
        if tool is None:
            return ToolResult(False, f"error: there is no tool named {call.name!r} here")
        if self.gate is not None and self.gate.required(tool):
            refused = await self._approve(call, tool.name, approvals)
            if refused is not None:
                return refused
        return await self.execute(call, tool, ctx)

    async def _approve(
        self, call: ToolCall, name: str, approvals: ApprovalScope | None
    ) -> ToolResult | None:
        """A person's decision on a call: None when approved, else what the model is told."""
        if self.gate is None or approvals is None:
            return ToolResult(False, NO_APPROVALS.format(tool=name))
        return await self.gate.ask(approvals, call, name)

    async def execute(self, call: ToolCall, tool: AnyTool, ctx: ToolContext) -> ToolResult:
        """Run one tool call (already allowed and, where needed, approved)."""
        started = time.perf_counter()
        result = await invoke(tool, call.arguments, ctx, default_timeout=self._timeout)
        log.info(
            "tool_call",
            tool=call.name,
            ok=result.ok,
            ms=round((time.perf_counter() - started) * 1000, 1),
            error=None if result.ok else result.output[:200],
        )
        return result
