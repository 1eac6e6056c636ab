"""Rendering the engine's replies into Slack: native streaming, or one message updated ~1/s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.blocks import approval_blocks, control_blocks, message_blocks
from bots.slack.convert import Target, address_of
from bots.slack.mrkdwn import to_mrkdwn
from core.events import OutboundFile
from core.interactive.controls import ApprovalPrompt, Controls
from core.render.streaming import EditingReply

log = structlog.get_logger(__name__)

# Slack truncates message text past 40,000 characters and recommends under 4,000.
MESSAGE_LIMIT = 3_900
FIXES = {
    "not_in_channel": "invite the bot to the channel (/invite @bot)",
    "channel_not_found": "the channel was deleted or the bot cannot see it",
    "invalid_auth": "the bot token (SLACK_BOT_TOKEN, or the workspace's installation) is wrong or "
    "revoked",
    "token_revoked": "the app was uninstalled or its token revoked: install it again",
    "missing_scope": "add the scope named in the error to the app and reinstall it",
    "is_archived": "the channel is archived",
    "ratelimited": "Slack is rate limiting this workspace; replies will be slower",
}


QUEUED_STATUS = "is busy: your message is queued and will be answered in order…"
QUEUED_NOTICE = "I'm busy right now: your message is queued, and I'll answer it in order."

# Errors about the token (revoked, wrong), which say nothing of what the workspace supports.
TOKEN_ERRORS = ("invalid_auth:", "token_revoked:", "account_inactive:", "not_authed:")


def explain(error: SlackApiError) -> str:
    """A log-friendly description of a Slack API error with the fix."""
    response = error.response
    data = getattr(response, "data", None)
    if isinstance(data, dict):
        code = str(data.get("error", "unknown"))
    else:
        code = f"http_{getattr(response, 'status_code', 'error')}"
    return f"{code}: {FIXES.get(code, 'see the Slack API documentation for this error')}"


class SlackSink:
    """The Slack calls a streamed reply needs (MessageSink, with controls).

    It gets Markdown: the message text is its mrkdwn form; where the answer has a table or
    controls, `markdown` blocks carry the Markdown itself (Slack renders tables there) and the
    controls follow them.
    """

    def __init__(self, client: AsyncWebClient, target: Target) -> None:
        self._client = client
        self._target = target
        self._with_blocks: set[str] = set()  # messages that show blocks now

    async def post(self, text: str, controls: Controls | None = None) -> str:
        blocks = message_blocks(text, controls)
        response = await self._client.chat_postMessage(
            channel=self._target.channel,
            thread_ts=self._target.thread_ts,
            text=to_mrkdwn(text),
            mrkdwn=True,
            blocks=blocks,  # None: not sent (slack_sdk drops unset arguments)
        )
        ts = str(response["ts"])
        if blocks is not None:
            self._with_blocks.add(ts)
        return ts

    async def edit(self, message_id: str, text: str, controls: Controls | None = None) -> None:
        blocks = message_blocks(text, controls)
        if blocks is None and message_id in self._with_blocks:
            blocks = []  # the controls move on (or the table went): clear the old blocks
        await self._client.chat_update(
            channel=self._target.channel,
            ts=message_id,
            text=to_mrkdwn(text),
            blocks=blocks,
        )
        if blocks:
            self._with_blocks.add(message_id)
        else:
            self._with_blocks.discard(message_id)

    async def approval(self, prompt: ApprovalPrompt) -> None:
        """Post a tool call's approval prompt in the conversation."""
        await self._client.chat_postMessage(
            channel=self._target.channel,
            thread_ts=self._target.thread_ts,
            text=prompt.text,
            blocks=approval_blocks(prompt),
        )

    async def delete(self, message_id: str) -> None:
        await self._client.chat_delete(channel=self._target.channel, ts=message_id)

    async def typing(self) -> None:
        if self._target.assistant_thread and self._target.thread_ts:
            await self._client.assistant_threads_setStatus(
                channel_id=self._target.channel,
                thread_ts=self._target.thread_ts,
                status="is thinking…",
            )

    async def notice(self, text: str) -> None:
        await self._client.chat_postEphemeral(
            channel=self._target.channel,
            user=self._target.user,
            text=text,
            thread_ts=self._target.thread_ts,
        )

    async def queued(self) -> None:
        """Say that the message waits in line: the assistant thread's status, else a notice."""
        if self._target.assistant_thread and self._target.thread_ts:
            await self._client.assistant_threads_setStatus(
                channel_id=self._target.channel,
                thread_ts=self._target.thread_ts,
                status=QUEUED_STATUS,
            )
        elif self._target.user:
            await self.notice(QUEUED_NOTICE)

    async def upload(self, file: OutboundFile) -> None:
        await self._client.files_upload_v2(
            channel=self._target.channel,
            thread_ts=self._target.thread_ts,
            content=file.data,
            filename=file.name,
            title=file.title or file.name,
        )


class NativeStreamReply:
    """Slack's AI streaming (chat.startStream / appendStream / stopStream) in a thread.

    Deltas are coalesced and appended at most every `interval` seconds. A reply that is whole
    before anything was streamed (a short answer, held back until moderation passed it) is
    posted in one `chat.postMessage`, not started and stopped as a stream. If the workspace does
    not support streaming, the reply falls back to posting and updating one message.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        target: Target,
        *,
        interval: float = 1.0,
        unsupported: set[str],
    ) -> None:
        self._client = client
        self._target = target
        self._interval = interval
        self._unsupported = unsupported  # teams where streaming failed: post + update there
        self._ts: str | None = None
        self._buffer = ""
        self._streamed = ""
        self._last = 0.0
        self._fallback: EditingReply | None = None
        self._live: Controls | None = None
        self._offer: asyncio.Task[None] | None = None  # the ephemeral Stop, posted meanwhile
        self._on_shown: Callable[[str], None] | None = None

    def address(self) -> dict[str, Any]:
        """Where this reply answers (`SlackAdapter.reply_to` builds it again from this)."""
        return address_of(self._target)

    def on_shown(self, callback: Callable[[str], None]) -> None:
        """Be told the ts of the stream (or first message) once something is shown."""
        self._on_shown = callback

    def _fall_back(self) -> EditingReply:
        if self._fallback is None:
            self._fallback = editing_reply(self._client, self._target)
            if self._live is not None:
                self._fallback.show_live(self._live)
            if self._on_shown is not None and self._ts is None:
                self._fallback.on_shown(self._on_shown)
        return self._fallback

    async def live(self, controls: Controls) -> None:
        """Stop goes to the asker as an ephemeral message once the stream starts (the stream
        itself carries no buttons while it runs)."""
        self._live = controls

    async def ask_approval(self, prompt: ApprovalPrompt) -> None:
        await SlackSink(self._client, self._target).approval(prompt)

    async def _offer_stop(self) -> None:
        assert self._live is not None
        try:
            await self._client.chat_postEphemeral(
                channel=self._target.channel,
                user=self._target.user,
                thread_ts=self._target.thread_ts,
                text="Writing the answer…",
                blocks=control_blocks(self._live),
            )
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("slack_call_failed", method="chat.postEphemeral", error=str(exc)[:200])

    async def begin(self) -> None:
        await SlackSink(self._client, self._target).typing()

    async def append(self, delta: str) -> None:
        if self._fallback is not None:
            await self._fallback.append(delta)
            return
        self._buffer += delta
        if time.monotonic() - self._last >= self._interval:
            await self._flush()

    async def _flush(self) -> None:
        if not self._buffer:
            return
        chunk, self._buffer = self._buffer, ""
        self._last = time.monotonic()
        if self._ts is None:
            try:
                response = await self._client.chat_startStream(
                    channel=self._target.channel,
                    thread_ts=self._target.thread_ts or "",
                    markdown_text=chunk,
                    recipient_team_id=self._target.team or None,
                    recipient_user_id=self._target.user or None,
                )
            except SlackApiError as exc:
                log.info("slack_streaming_unavailable", error=explain(exc), fallback="chat.update")
                if not explain(exc).startswith(TOKEN_ERRORS):  # the token, not the workspace
                    self._unsupported.add(self._target.team)
                await self._fall_back().append(self._streamed + chunk)
                return
            self._ts = str(response["ts"])
            if self._on_shown is not None:
                self._on_shown(self._ts)
            if self._live is not None and self._target.user:  # off the stream's path
                self._offer = asyncio.create_task(self._offer_stop())
        else:
            await self._client.chat_appendStream(
                channel=self._target.channel, ts=self._ts, markdown_text=chunk
            )
        self._streamed += chunk

    async def finish(self, text: str) -> None:
        await self.finish_with(text, None)

    async def finish_with(self, text: str, controls: Controls | None) -> None:
        """Stop the stream; the controls go in chat.stopStream's blocks, at the bottom of the
        finished message (feedback through Slack's own feedback buttons)."""
        blocks = control_blocks(controls) if controls is not None else None
        if self._fallback is None and self._ts is None:
            # Nothing streamed yet: the whole answer goes out as posted messages (one, unless
            # it is long), which is one Web API call where a stream takes two.
            self._buffer = ""
            await editing_reply(self._client, self._target).finish_with(text, controls)
            return
        if self._fallback is None and text.startswith(self._streamed):
            self._buffer = text[len(self._streamed) :]
            if self._fallback is None and self._ts is not None:
                rest, self._buffer = self._buffer, ""
                await self._client.chat_stopStream(
                    channel=self._target.channel,
                    ts=self._ts,
                    markdown_text=rest or None,
                    blocks=blocks,
                )
                return
        if self._fallback is None and self._ts is not None:
            # The final text differs from what was streamed (e.g. withheld): replace it.
            await self._client.chat_stopStream(channel=self._target.channel, ts=self._ts)
            # Rewritten like a post-and-update reply: split into messages of at most 3,900
            # characters (each within a markdown block's limit), controls on the last.
            await editing_reply(self._client, self._target, existing=self._ts).finish_with(
                text, controls
            )
            return
        await self._fall_back().finish_with(text, controls)

    async def notice(self, text: str) -> None:
        await SlackSink(self._client, self._target).notice(text)

    async def upload(self, file: OutboundFile) -> None:
        await SlackSink(self._client, self._target).upload(file)


class SlackEditingReply(EditingReply):
    """A post-and-update reply that says where it answers; with `stopping`, the ts of a stream
    a crashed run left open, that stream is stopped first (its message is then rewritten, as
    `existing`)."""

    def __init__(
        self,
        client: AsyncWebClient,
        target: Target,
        *,
        existing: str | None = None,
        stopping: str | None = None,
    ) -> None:
        super().__init__(SlackSink(client, target), limit=MESSAGE_LIMIT, existing=existing)
        self._client = client
        self._target = target
        self._stopping = stopping

    def address(self) -> dict[str, Any]:
        return address_of(self._target)

    async def begin(self) -> None:
        if self._stopping is not None:
            stream, self._stopping = self._stopping, None
            try:  # a message posted whole, or a stream Slack closed already, refuses: fine
                await self._client.chat_stopStream(channel=self._target.channel, ts=stream)
            except (SlackApiError, OSError, TimeoutError) as exc:
                log.info("slack_stream_not_stopped", ts=stream, error=str(exc)[:200])
        await super().begin()


def editing_reply(
    client: AsyncWebClient, target: Target, *, existing: str | None = None
) -> SlackEditingReply:
    """One message posted (or, with `existing`, that message) and updated ~1/s."""
    return SlackEditingReply(client, target, existing=existing)


def replacing_reply(client: AsyncWebClient, target: Target, ts: str) -> SlackEditingReply:
    """The reply of a turn run again after a crash: the message the crashed run had half
    shown (`ts`, a stream or a posted message) is stopped and rewritten with the new answer."""
    return SlackEditingReply(client, target, existing=ts, stopping=ts)


def make_reply(
    client: AsyncWebClient, target: Target, *, native: bool, unsupported: set[str]
) -> NativeStreamReply | SlackEditingReply:
    """Native streaming in threads of workspaces that support it, else post + update."""
    if native and target.thread_ts and target.team not in unsupported:
        return NativeStreamReply(client, target, unsupported=unsupported)
    return editing_reply(client, target)
