"""`/summarize [#channel] [since]`: a channel's recent messages summarized by the summary model,
read under the same permission rules as the history tools, counted and moderated like replies."""

from __future__ import annotations

from dataclasses import dataclass

from core.context.ports import Ports
from core.context.reader import ChannelReader, ReadRefused
from core.context.since import parse_since
from core.events import ConversationKey, Event
from core.governance.moderation import OUTPUT_BLOCKED, Moderator
from core.governance.usage import UsageAccounting
from core.llm.client import ModelClient
from core.llm.tokens import TokenCounter
from core.llm.types import Completed, JsonSchemaFormat, Message, ModelRequest

DEFAULT_SINCE = "24h"
INSTRUCTIONS = (
    "Summarize this chat transcript for someone who missed it: the main topics, decisions, open "
    "questions and who is doing what, in a few short bullet points. Use only the transcript."
)
USAGE = "usage: /summarize [#channel] [since, e.g. 2h, 3d, yesterday]"


@dataclass(frozen=True, slots=True)
class Summary:
    """The answer: the summary or why there is none."""

    text: str
    ok: bool = True


class ChannelSummaries:
    """Reads a channel for the asker and summarizes it; digests (core/schedules) use the same
    request, usage and moderation steps (`request`, `checked`)."""

    def __init__(
        self,
        *,
        ports: Ports,
        model: ModelClient,
        summary_model: str,
        usage: UsageAccounting,
        moderator: Moderator,
        tokens: TokenCounter,
        max_input_tokens: int,
        max_output_tokens: int,
    ) -> None:
        self.ports = ports
        self.model = model
        self.summary_model = summary_model
        self.usage = usage
        self._moderator = moderator
        self.tokens = tokens
        self.max_input_tokens = max_input_tokens
        self._max_output = max_output_tokens

    def request(
        self,
        transcript: str,
        *,
        user: str,
        instructions: str = INSTRUCTIONS,
        response_format: JsonSchemaFormat | None = None,
        model: str | None = None,
    ) -> ModelRequest:
        """The summary model's request for a transcript, on behalf of `user`."""
        return ModelRequest(
            model=model or self.summary_model,
            instructions=instructions,
            messages=(Message(role="user", text=transcript),),
            max_output_tokens=self._max_output,
            response_format=response_format,
            user=user,
        )

    def estimate(self, request: ModelRequest, *, batch: bool = False) -> float:
        """The most the request can cost."""
        prompt = sum(self.tokens.count(m.text) for m in request.messages)
        prompt += self.tokens.count(request.instructions)
        return self.usage.estimate(
            request.model, prompt, request.max_output_tokens or 0, batch=batch
        )

    async def checked(
        self,
        done: Completed,
        key: ConversationKey,
        *,
        user_id: str,
        purpose: str,
        batch: bool = False,
        text: str | None = None,
    ) -> bool:
        """Record a finished call's usage (at batch rates with `batch`) and moderate its text
        (or `text`, what will be shown) as output; False when moderation blocks it."""
        await self.usage.record(
            done,
            key,
            user_id=user_id,
            purpose=purpose,
            turn_id=None,
            conversation_id=None,
            batch=batch,
        )
        verdict = await self._moderator.check(
            done.text if text is None else text, key=key, user_id=user_id, direction="output"
        )
        return not verdict.blocked

    async def summarize(self, event: Event, args: str) -> Summary:
        """Summarize `[#channel] [since]` (this channel, the last 24 hours by default)."""
        port = self.ports.get(event.platform)
        if port is None:
            return Summary("There is no channel history to summarize here.", ok=False)
        words = args.split()
        channel = words.pop(0) if words and words[0].startswith(("<#", "#")) else None
        since_text = " ".join(words) or DEFAULT_SINCE
        reader = ChannelReader(
            port, event.key, event.user.id, self.tokens, max_tokens=self.max_input_tokens
        )
        try:
            since = parse_since(since_text)
            key = reader.channel_key(channel)
            transcript = await reader.read(key, since=since, limit=200)
        except ValueError as exc:
            return Summary(f"{exc}\n{USAGE}", ok=False)
        except ReadRefused as exc:
            return Summary(f"I can't summarize that: {exc}.", ok=False)
        if not transcript.messages:
            return Summary(f"No messages there since {since_text}.")
        request = self.request(
            transcript.text, user=f"{event.platform}:{event.workspace}:{event.user.id}"
        )
        done = await self.model.complete(request)
        if not await self.checked(done, event.key, user_id=event.user.id, purpose="summarize"):
            return Summary(OUTPUT_BLOCKED, ok=False)
        cut = f" ({transcript.omitted} older messages left out)" if transcript.omitted else ""
        return Summary(
            f"Summary of {transcript.messages} messages since {since_text}{cut}:\n{done.text}"
        )
