"""`/summarize [#channel] [since]`: a channel's recent messages summarized by the summary model,
read under the same permission rules as the history tools, counted and moderated like replies."""

from __future__ import annotations

from dataclasses import dataclass

from core.context.ports import Ports
from core.context.reader import ChannelReader, ReadRefused
from core.context.since import parse_since
from core.events import Event
from core.governance.moderation import OUTPUT_BLOCKED, Moderator
from core.governance.usage import UsageAccounting
from core.llm.client import ModelClient
from core.llm.tokens import TokenCounter
from core.llm.types import Message, ModelRequest

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
    """Reads a channel for the asker and summarizes it."""

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
        self._ports = ports
        self._model = model
        self._summary_model = summary_model
        self._usage = usage
        self._moderator = moderator
        self._tokens = tokens
        self._max_input = max_input_tokens
        self._max_output = max_output_tokens

    async def summarize(self, event: Event, args: str) -> Summary:
        """Summarize `[#channel] [since]` (this channel, the last 24 hours by default)."""
        port = self._ports.get(event.platform)
        if port is None:
            return Summary("There is no channel history to summarize here.", ok=False)
        words = args.split()
        channel = words.pop(0) if words and words[0].startswith(("<#", "#")) else None
        since_text = " ".join(words) or DEFAULT_SINCE
        reader = ChannelReader(
            port, event.key, event.user.id, self._tokens, max_tokens=self._max_input
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
        request = ModelRequest(
            model=self._summary_model,
            instructions=INSTRUCTIONS,
            messages=(Message(role="user", text=transcript.text),),
            max_output_tokens=self._max_output,
            user=f"{event.platform}:{event.workspace}:{event.user.id}",
        )
        done = await self._model.complete(request)
        await self._usage.record(
            done,
            event.key,
            user_id=event.user.id,
            purpose="summarize",
            turn_id=None,
            conversation_id=None,
        )
        verdict = await self._moderator.check(
            done.text, key=event.key, user_id=event.user.id, direction="output"
        )
        if verdict.blocked:
            return Summary(OUTPUT_BLOCKED, ok=False)
        cut = f" ({transcript.omitted} older messages left out)" if transcript.omitted else ""
        return Summary(
            f"Summary of {transcript.messages} messages since {since_text}{cut}:\n{done.text}"
        )
