"""Reply wrappers the engine puts around an adapter's reply: error isolation and moderation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog

from core.events import ConversationKey, OutboundFile, Reply, is_interactive
from core.governance.moderation import Moderator
from core.interactive.controls import ApprovalPrompt, Controls
from core.llm.types import Completed

log = structlog.get_logger(__name__)


async def _quietly(step: str, call: Awaitable[None]) -> None:
    try:
        await call
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.error("reply_failed", step=step, error=f"{type(exc).__name__}: {exc}")


class SafeReply:
    """A platform error while replying is logged, never allowed to end the turn."""

    def __init__(self, reply: Reply) -> None:
        self._reply = reply

    async def begin(self) -> None:
        await _quietly("begin", self._reply.begin())

    async def append(self, delta: str) -> None:
        await _quietly("append", self._reply.append(delta))

    async def finish(self, text: str) -> None:
        await _quietly("finish", self._reply.finish(text))

    async def notice(self, text: str) -> None:
        await _quietly("notice", self._reply.notice(text))

    async def upload(self, file: OutboundFile) -> None:
        await _quietly("upload", self._reply.upload(file))

    async def live(self, controls: Controls) -> None:
        """Offer Stop while streaming, where the platform has buttons."""
        if is_interactive(self._reply):
            await _quietly("live", self._reply.live(controls))

    async def finish_with(self, text: str, controls: Controls | None) -> None:
        """Finish with the reply's controls, where the platform has buttons."""
        if controls is not None and is_interactive(self._reply):
            await _quietly("finish", self._reply.finish_with(text, controls))
        else:
            await self.finish(text)

    async def ask_approval(self, prompt: ApprovalPrompt) -> None:
        """Show a tool call waiting for approval (as a notice where there are no buttons)."""
        if is_interactive(self._reply):
            await _quietly("approval", self._reply.ask_approval(prompt))
        else:
            await self.notice(prompt.text)


# How much already-checked text to send along with new text, so a harmful phrase split across
# two checks is still seen whole.
_OVERLAP = 200


class ModeratedReply:
    """Wraps a Reply: holds streamed text back until each ~N new characters pass moderation.

    Trade-off: nothing unmoderated is ever shown (zero exposure), at the cost of one moderation
    round trip per N characters and of the first text appearing only once the first N characters
    (or the whole reply, if shorter) are checked.
    """

    def __init__(
        self,
        reply: Reply,
        moderator: Moderator,
        *,
        key: ConversationKey,
        user_id: str,
        every: int = 400,
    ) -> None:
        self._reply = reply
        self._moderator = moderator
        self._key = key
        self._user_id = user_id
        self._every = every
        self._released = ""
        self._pending = ""
        self.blocked = False

    async def begin(self) -> None:
        await self._reply.begin()

    async def append(self, delta: str) -> None:
        if self.blocked:
            return
        self._pending += delta
        if len(self._pending) >= self._every:
            await self._release()

    async def _release(self) -> None:
        verdict = await self._moderator.check(
            self._released[-_OVERLAP:] + self._pending,
            key=self._key,
            user_id=self._user_id,
            direction="output",
        )
        if verdict.blocked:
            self.blocked = True
            return
        await self._reply.append(self._pending)
        self._released += self._pending
        self._pending = ""

    async def check_final(self, text: str) -> bool:
        """Moderate the whole final text (what is left unchecked); False when it is blocked.

        A reply none of which was released yet (shorter than one step) is checked without being
        appended: `finish` shows it whole, so the platform gets it in one message.
        """
        if self.blocked:
            return False
        if not self._released:
            verdict = await self._moderator.check(
                text, key=self._key, user_id=self._user_id, direction="output"
            )
            self.blocked = verdict.blocked
        elif self._pending:
            self._pending = text[len(self._released) :]
            await self._release()
        return not self.blocked

    async def finish(self, text: str) -> None:
        await self._reply.finish(text)

    async def notice(self, text: str) -> None:
        await self._reply.notice(text)

    async def upload(self, file: OutboundFile) -> None:
        await self._reply.upload(file)


LOW_CONFIDENCE = "_(Low confidence: please double-check this answer.)_"


def mark_confidence(text: str, completed: Completed, threshold: float | None) -> str:
    """The answer, marked when its mean token logprob is below `threshold` (LOW_CONFIDENCE_LOGPROB)."""
    if threshold is None or completed.mean_logprob is None:
        return text
    return f"{text}\n\n{LOW_CONFIDENCE}" if completed.mean_logprob < threshold else text
