"""Where a conversation's history lives when the model answers: our memory, or OpenAI's.

On the local backend every call sends the assembled context. On the server-side backend an OpenAI
Conversation holds the history, so each call sends only what is new (this turn's message, then
tool results), with our instructions and tools.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import openai

from core.conversation.overrides import TurnConfig
from core.conversation.remote import RECREATED_NOTICE, RemoteThreads
from core.events import Event, Reply
from core.governance.turn_redaction import TurnRedactor
from core.governance.usage import UsageAccounting
from core.llm.client import ModelClient, Streamer
from core.llm.tokens import TokenCounter
from core.llm.types import Completed, Message, ModelRequest, TextDelta, ToolCall, Usage
from core.settings import OpenAISettings
from core.store import Accepted
from core.tools.catalog import ToolSet
from core.tools.context import ToolContexts
from core.tools.hosted import HostedTools
from core.tools.loop import Answer, ToolLoop, enabled_tools

if TYPE_CHECKING:
    from core.interactive.approvals import ApprovalScope


@dataclass(frozen=True, slots=True)
class TurnInProgress:
    """The turn a model answer belongs to."""

    event: Event
    accepted: Accepted
    reply: Reply
    config: TurnConfig
    redactor: TurnRedactor | None = None
    approvals: ApprovalScope | None = None


class ConversationBackends:
    """Answers a turn's request through the tool loop, on the conversation's backend."""

    def __init__(
        self,
        *,
        model: ModelClient,
        responses_model: ModelClient,
        threads: RemoteThreads,
        usage: UsageAccounting,
        tool_contexts: ToolContexts,
        openai_settings: OpenAISettings,
        loop: ToolLoop | None,
        empty_loop: ToolLoop,
        tokens: TokenCounter,
        hosted: HostedTools | None = None,
    ) -> None:
        self._model = model
        self._responses_model = responses_model
        self.threads = threads
        self._usage = usage
        self._tool_contexts = tool_contexts
        self._openai = openai_settings
        self.loop = loop
        self._empty_loop = empty_loop
        self._tokens = tokens
        self._hosted = hosted or HostedTools(openai_settings)

    @property
    def registry(self) -> ToolSet | None:
        """The tools offered, or None when tools are off."""
        return self.loop.registry if self.loop else None

    async def answer(self, request: ModelRequest, turn: TurnInProgress) -> Answer:
        """The model's answer to `request`, running the tools it asks for."""
        loop = self.loop or self._empty_loop
        tools = enabled_tools(loop.registry, turn.config.tool_switches) if self.loop else []
        ctx = self._tool_contexts.for_event(turn.event, turn.reply.upload)
        redactor = turn.redactor
        switches = turn.config.tool_switches
        if turn.config.backend != "openai":
            if self._model.wire_api == "responses":
                request = replace(request, builtin_tools=self._hosted.entries(switches))
            chat: Streamer = redactor.model(self._model) if redactor else self._model
            return await loop.run(
                request,
                call=lambda r: self._call(r, chat, turn),
                proceed=lambda r, new: replace(r, messages=r.messages + new),
                tools=tools,
                ctx=ctx,
                reply=turn.reply,
                approvals=turn.approvals,
            )
        conversation, key = turn.accepted.conversation, turn.event.key
        seed = request.messages[:-1]
        remote_id = await self.threads.ensure(
            conversation, key, seed=redactor.messages(seed) if redactor else seed
        )
        remote_model = redactor.model(self._responses_model) if redactor else self._responses_model
        remote = replace(
            request,
            messages=request.messages[-1:],
            conversation=remote_id,
            builtin_tools=self._hosted.entries(switches),
        )

        async def call(r: ModelRequest) -> Completed:
            return await self._call(r, remote_model, turn)

        def proceed(r: ModelRequest, new: tuple[Message, ...]) -> ModelRequest:
            return replace(r, messages=tuple(m for m in new if m.role == "tool"))

        run = functools.partial(
            loop.run,
            call=call,
            proceed=proceed,
            tools=tools,
            ctx=ctx,
            reply=turn.reply,
            approvals=turn.approvals,
        )
        try:
            return await run(remote)
        except openai.NotFoundError:
            remote_id = await self.threads.replace(conversation, key, remote_id)
            await turn.reply.notice(RECREATED_NOTICE)
            return await run(replace(remote, conversation=remote_id))

    async def run_approved(self, call: ToolCall, event: Event, reply: Reply) -> str:
        """Run a tool call a person approved after its turn's process stopped (the resume)."""
        loop = self.loop or self._empty_loop
        tool = loop.registry.get(call.name)
        if tool is None:
            return f"error: there is no tool named {call.name!r} here"
        result = await loop.execute(call, tool, self._tool_contexts.for_event(event, reply.upload))
        return result.output

    async def _call(
        self, request: ModelRequest, model: Streamer, turn: TurnInProgress
    ) -> Completed:
        """Stream one model call into the reply and record its usage (estimated by our own
        count when the call is cut off by a Stop or a shutdown: the tokens were still spent)."""
        streamed: list[str] = []
        try:
            async for item in model.stream(request):
                if isinstance(item, TextDelta):
                    streamed.append(item.text)
                    await turn.reply.append(item.text)
                else:
                    await self._record(item, turn)
                    return item
        except asyncio.CancelledError:
            await self._record(self._cut_off(request, "".join(streamed)), turn)
            raise
        raise RuntimeError("the model stream ended without completing")

    def _cut_off(self, request: ModelRequest, streamed: str) -> Completed:
        """What a cancelled call cost, as far as we can count it."""
        prompt = self._tokens.count(request.instructions) + sum(
            self._tokens.message(m) for m in request.messages
        )
        usage = Usage(prompt, 0, self._tokens.count(streamed))
        return Completed(streamed, (), usage, request.model, finish_reason="cancelled")

    async def _record(self, completed: Completed, turn: TurnInProgress) -> None:
        await self._usage.record(
            completed,
            turn.event.key,
            user_id=turn.event.user.id,
            purpose="chat",
            turn_id=turn.accepted.turn_id,
            conversation_id=turn.accepted.conversation.id,
        )
