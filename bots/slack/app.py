"""The Slack adapter: Bolt (HTTP and Socket Mode) wired to the engine."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import convert, intake
from bots.slack.convert import Target
from bots.slack.mrkdwn import to_mrkdwn
from bots.slack.reply import SlackSink, explain, make_reply
from bots.slack.settings import SlackSettings
from core.engine import Engine
from core.events import Attachment, ConversationKey, Platform, Reply, User

log = structlog.get_logger(__name__)

SUGGESTED_PROMPTS = [
    {"title": "Summarize", "message": "Summarize this thread for me."},
    {"title": "Draft a reply", "message": "Help me draft a reply."},
    {"title": "Explain", "message": "Explain this in simple terms."},
]
USER_CACHE_SECONDS = 600


class SlackAdapter:
    """Receives Slack events and commands, hands them to the engine, renders the replies.

    It is the engine's `PlatformPort` for Slack: replies into a conversation, file downloads.
    """

    platform = Platform.SLACK

    def __init__(self, settings: SlackSettings, engine: Engine) -> None:
        if settings.bot_token is None:
            raise ValueError("SLACK_BOT_TOKEN is required for the Slack adapter")
        self._settings = settings
        self._engine = engine
        self._token = settings.bot_token.get_secret_value()
        # One pooled HTTP session for every Web API call and file download (keep-alive).
        self.http = aiohttp.ClientSession()
        self.client = AsyncWebClient(
            token=self._token,
            base_url=settings.api_url,
            session=self.http,
            retry_handlers=[
                AsyncRateLimitErrorRetryHandler(max_retry_count=3),
                AsyncServerErrorRetryHandler(max_retry_count=2),
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
            ],
        )
        secret = settings.signing_secret
        self._verifier = SignatureVerifier(secret.get_secret_value()) if secret else None
        self.app = AsyncApp(
            client=self.client,
            signing_secret=secret.get_secret_value() if secret else None,
            request_verification_enabled=secret is not None,
            # Listeners only store the message (a few ms) and return: the answer runs in the
            # background. A storage failure therefore becomes a 5xx and Slack redelivers.
            process_before_response=True,
            ignoring_self_events_enabled=True,
        )
        self._users: dict[str, tuple[float, User]] = {}
        self._no_stream: set[str] = set()
        self._bot_user_id = ""
        self._register()

    # -- wiring ---------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.event("assistant_thread_started")(self._on_assistant_thread_started)
        app.event("assistant_thread_context_changed")(self._ignore)
        for command in self._settings.commands:
            app.command(command)(self._on_command)
        app.error(self._on_error)

    def install(self, web_app: web.Application) -> None:
        """Serve `POST /slack/events` (events, commands and interactivity) on `web_app`."""

        async def slack_events(request: web.Request) -> web.Response:
            raw = await request.read()
            try:
                intake.verify(self._verifier, raw, request)
                bolt_request = intake.parse(raw, request)
            except intake.Rejected as rejected:
                log.warning("slack_request_rejected", reason=str(rejected), length=len(raw))
                return rejected.response
            try:
                bolt_response = await self.app.async_dispatch(bolt_request)
            except Exception as exc:  # Bolt's own routing tripped on a payload of an odd shape
                log.warning("slack_request_rejected", reason=f"{type(exc).__name__}: {exc}")
                return web.json_response({"error": "malformed request body"}, status=400)
            return await to_aiohttp_response(bolt_response)

        web_app.router.add_post("/slack/events", slack_events)

    async def close(self) -> None:
        """Release the HTTP session."""
        await self.http.close()

    async def socket_mode(self) -> None:
        """Run Slack Socket Mode until cancelled (needs SLACK_APP_TOKEN)."""
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        assert self._settings.app_token is not None
        handler = AsyncSocketModeHandler(
            self.app,
            self._settings.app_token.get_secret_value(),
            web_client=AsyncWebClient(base_url=self._settings.api_url),
        )
        await handler.connect_async()
        log.info("slack_socket_mode_connected")
        try:
            await asyncio.Event().wait()
        finally:
            await handler.close_async()

    async def bot_user_id(self) -> str:
        if not self._bot_user_id:
            auth = await self.client.auth_test()
            self._bot_user_id = str(auth["user_id"])
        return self._bot_user_id

    # -- listeners ------------------------------------------------------------------------

    async def _on_mention(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        await self._handle(body, event, addressed=True)

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        subtype = event.get("subtype")
        if subtype in {"message_changed", "message_deleted", "channel_join", "channel_leave"}:
            return  # edits and deletions of answered messages do not re-run them (see README)
        if subtype not in (None, "file_share", "thread_broadcast"):
            return
        if event.get("bot_id") and self._settings.ignore_bots:
            return
        bot = await self.bot_user_id()
        if convert.is_dm(event):
            await self._handle(body, event, addressed=True)
            return
        if convert.mentions(event.get("text") or "", bot):
            return  # the app_mention event answers it
        if event.get("thread_ts") and self._settings.follow_threads:
            await self._handle(body, event, addressed=False)  # continues a known conversation

    async def _on_assistant_thread_started(
        self, body: dict[str, Any], event: dict[str, Any]
    ) -> None:
        thread = event.get("assistant_thread") or {}
        try:
            await self.client.assistant_threads_setSuggestedPrompts(
                channel_id=thread.get("channel_id", ""),
                thread_ts=thread.get("thread_ts", ""),
                prompts=SUGGESTED_PROMPTS,
            )
        except SlackApiError as exc:
            log.warning(
                "slack_call_failed",
                method="assistant.threads.setSuggestedPrompts",
                error=explain(exc),
            )

    async def _ignore(self) -> None:
        return None

    def reply_to(self, key: ConversationKey) -> Reply:
        """A reply into a conversation with no message to answer (after a restart)."""
        return make_reply(
            self.client,
            convert.target_for(key),
            native=self._settings.native_streaming,
            unsupported=self._no_stream,
        )

    async def _handle(
        self, body: dict[str, Any], event: dict[str, Any], *, addressed: bool
    ) -> None:
        bot = await self.bot_user_id()
        user_id = event.get("user", "")
        if not user_id or user_id == bot:
            return
        user = await self._user(user_id)
        if user.is_bot and self._settings.ignore_bots:
            return
        ours = convert.to_event(body, event, user, bot_user_id=bot, addressed=addressed)
        target = convert.target_of(body, event)
        reply = make_reply(
            self.client,
            target,
            native=self._settings.native_streaming,
            unsupported=self._no_stream,
        )
        received = await self._engine.receive(ours, reply)
        result = received.command
        if result is not None:
            sink = SlackSink(self.client, target)
            try:
                await (
                    sink.post(to_mrkdwn(result.text)) if result.public else sink.notice(result.text)
                )
            except SlackApiError as exc:
                log.warning("slack_call_failed", method="command reply", error=explain(exc))

    async def _on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        name = convert.command_name(command["command"], self._settings.commands) or ""
        user = await self._user(command["user_id"])
        event = convert.command_event(command, user)
        text = event.text
        if name == "ask":
            await self._ask(command, user, text, respond)
            return
        result = await self._engine.command(event, name, text)
        await respond(
            text=result.text, response_type="in_channel" if result.public else "ephemeral"
        )
        sink = SlackSink(self.client, Target(event.channel, None, user.id, event.workspace))
        for file in result.files:
            try:
                await sink.upload(file)
            except SlackApiError as exc:
                log.warning("slack_call_failed", method="files.upload", error=explain(exc))

    async def _ask(self, command: dict[str, Any], user: User, text: str, respond: Any) -> None:
        """`/ask question`: post the question in the channel and answer in its thread."""
        if not text:
            await respond(text="usage: /ask <your question>", response_type="ephemeral")
            return
        channel = command["channel_id"]
        try:
            posted = await self.client.chat_postMessage(
                channel=channel, text=f"<@{user.id}> asked: {text}"
            )
        except SlackApiError as exc:
            log.warning("slack_call_failed", method="chat.postMessage", error=explain(exc))
            await respond(text=f"I can't post here ({explain(exc)}).", response_type="ephemeral")
            return
        event = convert.ask_event(command, user, text, str(posted["ts"]))
        target = Target(channel, event.thread, user.id, event.workspace)
        reply = make_reply(
            self.client,
            target,
            native=self._settings.native_streaming,
            unsupported=self._no_stream,
        )
        await self._engine.submit(event, reply)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        detail = (
            explain(error)
            if isinstance(error, SlackApiError)
            else f"{type(error).__name__}: {error}"
        )
        # Bolt answers 500, so Slack redelivers: a message that could not be stored is not lost.
        log.error("slack_listener_failed", error=detail, event_id=body.get("event_id"))

    # -- helpers --------------------------------------------------------------------------

    async def _user(self, user_id: str) -> User:
        cached = self._users.get(user_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            info = await self.client.users_info(user=user_id)
            user = convert.user_from_info(info.get("user") or {}, user_id)
        except SlackApiError as exc:
            log.warning("slack_call_failed", method="users.info", error=explain(exc))
            user = User(user_id, user_id)
        self._users[user_id] = (time.monotonic() + USER_CACHE_SECONDS, user)
        return user

    async def download(self, attachment: Attachment) -> bytes:
        """Files are private: download with the bot token."""
        headers = {"Authorization": f"Bearer {self._token}"}
        async with self.http.get(
            attachment.url, headers=headers, allow_redirects=False
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"download answered {response.status}; the app needs files:read")
            return await response.read()
