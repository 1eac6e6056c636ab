"""The Slack adapter: Bolt (HTTP and Socket Mode) wired to the engine."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bots.errors import StartupError
from bots.slack import convert, intake
from bots.slack.authorize import TeamAuthorize
from bots.slack.convert import Target
from bots.slack.install import SlackInstaller
from bots.slack.interactions import SlackControls
from bots.slack.mrkdwn import to_mrkdwn
from bots.slack.reply import SlackSink, explain, make_reply, replacing_reply
from bots.slack.settings import SlackSettings
from bots.slack.workspaces import EnsuredReply, RevocationWatcher, Workspaces
from core.commands import CommandResult, split_command
from core.engine import STORE_FAILURE_MESSAGE, Engine, Submission
from core.events import (
    MAIN_THREAD,
    Attachment,
    ChannelAccess,
    ConversationKey,
    Event,
    HistoryPage,
    HistoryUnavailable,
    Platform,
    Reply,
    User,
)
from core.logging import silence
from core.store import QueueFull, StoreError
from core.store.installations import Installations

log = structlog.get_logger(__name__)

SUGGESTED_PROMPTS = [
    {"title": "Summarize", "message": "Summarize this thread for me."},
    {"title": "Draft a reply", "message": "Help me draft a reply."},
    {"title": "Explain", "message": "Explain this in simple terms."},
]
USER_CACHE_SECONDS = 600
RESPONSE_URL_TIMEOUT = 10.0  # seconds for one post to a command's response_url
COMMAND_FAILED = "Sorry, that command failed on my side; the error is logged."
# auth.test errors that mean the bot token itself is wrong (not Slack being unavailable).
REJECTED_TOKEN = {"invalid_auth", "not_authed", "account_inactive", "token_revoked"}
ANY = re.compile("")  # Bolt listener constraint that matches every id
NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)
MEMBER_PAGES = 10  # conversations.members pages read to find a user (1,000 members each)
QUEUED_NOTICE_SECONDS = 3.0  # a message still waiting in the queue this long is told so
QUEUED_NOTICES_PER_SECOND = 20  # at most, per process


def _quiet_bolt_token_warning() -> None:
    """Bolt reads SLACK_BOT_TOKEN from the environment even when given a client (whose token it
    then uses) and warns that the environment's token "will be unused" on every start, about the
    very token the client carries: only that exact message is dropped."""
    silence("slack_bolt.AsyncApp", warning_client_prioritized_and_token_skipped())


def _quiet_bolt_missing_installation_error() -> None:
    """Bolt logs an error for every event of a team without an installation; `Workspaces` logs
    that once per team, with the fix, instead."""
    silence(
        "slack_bolt.AsyncMultiTeamsAuthorization",
        "the AuthorizeResult (returned value from authorize) for it was not found",
    )


def _one_line(text: object, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


class SlackAdapter:
    """Receives Slack events and commands, hands them to the engine, renders the replies.

    It is the engine's `PlatformPort` for Slack: replies into a conversation, file downloads.
    """

    platform = Platform.SLACK

    def __init__(
        self,
        settings: SlackSettings,
        engine: Engine,
        *,
        installations: Installations | None = None,
        installer: SlackInstaller | None = None,
    ) -> None:
        """One workspace with SLACK_BOT_TOKEN; many with SLACK_CLIENT_ID, each served with its
        installation from `installations` (and installed through `installer`'s routes)."""
        multi = settings.multi_workspace
        if (installations is None) if multi else (settings.bot_token is None):
            raise ValueError("SLACK_BOT_TOKEN, or SLACK_CLIENT_ID with installations, is required")
        self._settings = settings
        self._engine = engine
        self._token = (
            None if multi or settings.bot_token is None else settings.bot_token.get_secret_value()
        )
        self.installer = installer
        # One pooled HTTP session for every Web API call and file download (keep-alive).
        self.http = aiohttp.ClientSession()
        self._watcher = RevocationWatcher(self._token_rejected)
        self.workspaces = Workspaces(
            self._new_client, self._token, installations=installations if multi else None
        )
        self.client = self.workspaces.default  # in multi mode: tokenless, for the OAuth calls
        secret = settings.signing_secret
        self._verifier = SignatureVerifier(secret.get_secret_value()) if secret else None
        _quiet_bolt_token_warning()
        auth: dict[str, Any] = {}
        if installations is not None and multi:
            rotator = AsyncTokenRotator(
                client_id=str(settings.client_id),
                client_secret=settings.client_secret.get_secret_value()
                if settings.client_secret
                else "",
                client=self.client,
            )
            owner = engine.store.processes.owner
            auth["authorize"] = TeamAuthorize(
                self.workspaces,
                installations,
                rotator,
                owner=owner,
                exchange_long_lived=settings.token_rotation,
            )
            if installer is not None:  # given, so Bolt does not build its own from the environment
                auth.update(oauth_flow=installer.flow, oauth_settings=installer.flow.settings)
        self.app = AsyncApp(
            client=self.client,
            **auth,
            signing_secret=secret.get_secret_value() if secret else None,
            request_verification_enabled=secret is not None,
            # Event listeners only store the message (a few ms) and return: the answer runs in
            # the background. A storage failure therefore becomes a 5xx and Slack redelivers.
            # Commands and interactions ack first and run in the background (`_spawn`), so
            # their HTTP answer never waits for a tool or a model.
            process_before_response=True,
            ignoring_self_events_enabled=True,
        )
        _quiet_bolt_missing_installation_error()
        self._users: dict[str, tuple[float, User]] = {}
        self._user_lookups: dict[str, asyncio.Future[User]] = {}  # users.info calls on their way
        self._team_urls: dict[str, str] = {}  # workspace -> its URL, for permalinks
        self._no_stream: set[str] = set()
        self._bot_user_id = ""
        self._bot_id = ""  # the bot's own `bot_id` (its messages come back as events)
        self._tasks: set[asyncio.Task[None]] = set()  # background commands (kept referenced)
        self._queued_told = -float("inf")  # when the last queued note was sent
        self.controls = SlackControls(engine, self.client, user_of=self._user, spawn=self._spawn)
        self._register()

    def _new_client(self, token: str | None) -> AsyncWebClient:
        return AsyncWebClient(
            token=token,
            base_url=self._settings.api_url,
            session=self.http,
            retry_handlers=[
                self._watcher,
                AsyncRateLimitErrorRetryHandler(max_retry_count=3),
                AsyncServerErrorRetryHandler(max_retry_count=2),
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
            ],
        )

    async def _token_rejected(self, token: str, error: str) -> None:
        await self.workspaces.rejected(token, error)

    # -- wiring ---------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.event("assistant_thread_started")(self._on_assistant_thread_started)
        app.event("assistant_thread_context_changed")(self._ignore)
        for command in self._settings.commands:
            app.command(command)(self._on_command)
        self.controls.register(app)  # the reply controls' clicks, modals and the App Home
        # Interactivity the bot does not use (buttons, menus, modals, shortcuts) is acknowledged
        # with a 200, so Slack neither retries nor shows the user an error.
        app.action(ANY)(self._ack_interaction)
        app.options(ANY)(self._ack_options)
        app.view(ANY)(self._ack_interaction)
        app.view_closed(ANY)(self._ack_interaction)
        app.shortcut(ANY)(self._ack_interaction)
        app.event("app_uninstalled")(self._on_uninstalled)
        app.event("tokens_revoked")(self._on_tokens_revoked)
        app.use(self._bind_workspace)
        app.error(self._on_error)

    def install(self, web_app: web.Application) -> None:
        """Serve `POST /slack/events` (events, commands and interactivity) on `web_app`."""

        async def slack_events(request: web.Request) -> web.Response:
            raw = await request.read()
            try:
                intake.verify(self._verifier, raw, request)
                direct = None if self.workspaces.multi else intake.direct_event(raw, request)
                if direct is not None:
                    return await self._answer_directly(*direct)
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
        if self.installer is not None:
            self.installer.install(web_app)

    async def _answer_directly(self, body: dict[str, Any], event: dict[str, Any]) -> web.Response:
        """A message or a mention, verified and checked by the front door, handed to its
        listener without Bolt's dispatch: its middleware chain, listener matching, argument
        injection and per-request client were a tenth of the CPU of a whole turn, and for these
        events (with one workspace's token) they decide nothing the listeners do not decide
        again themselves (the bot's own messages, other bots, subtypes). What Bolt would answer
        is kept: 200 once the message is stored; 500 when storing failed (or the queue is
        full), so Slack delivers the event again. Every other request goes through Bolt."""
        try:
            if event.get("type") == "app_mention":
                await self._on_mention(body, event)
            elif not (event.get("bot_id") and event.get("bot_id") == self._bot_id):
                await self._on_message(body, event)
        except Exception as exc:
            await self._on_error(exc, body)
            return web.json_response({"error": "the event could not be stored"}, status=500)
        return web.Response(status=200)

    async def drain(self) -> None:
        """Wait for every background command to end."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop background commands and release the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.http.close()

    async def verify_token(self) -> None:
        """Check SLACK_BOT_TOKEN with `auth.test` (and remember the bot's user id).

        Raises `StartupError` with one line when Slack rejects the token or SLACK_API_URL cannot
        be reached.
        """
        if self.workspaces.multi:
            return  # each installation's token was checked when it was installed
        url = self._settings.api_url
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            code = str(data.get("error", "")) if isinstance(data, dict) else ""
            if code in REJECTED_TOKEN:
                raise StartupError(
                    f"Slack rejected SLACK_BOT_TOKEN ({code}): copy the Bot User OAuth Token "
                    "again from the app's OAuth & Permissions page"
                ) from None
            status = getattr(exc.response, "status_code", "?")
            raise StartupError(
                f"Slack's auth.test at SLACK_API_URL={url} failed "
                f"({_one_line(code or f'HTTP {status}')}): check SLACK_API_URL and SLACK_BOT_TOKEN"
            ) from None
        except (*NETWORK_ERRORS, SlackClientError) as exc:
            raise StartupError(
                f"Slack is unreachable at SLACK_API_URL={url} "
                f"({type(exc).__name__}: {_one_line(exc)}): check the URL and the network"
            ) from None
        self._bot_user_id = str(auth.get("user_id") or "")
        self._bot_id = str(auth.get("bot_id") or "")
        log.info("slack_token_verified", team=auth.get("team_id"), bot_user=self._bot_user_id)

    async def socket_mode(self) -> None:
        """Run Slack Socket Mode until cancelled (needs SLACK_APP_TOKEN)."""
        assert self._settings.app_token is not None
        handler = _CheckedSocketModeHandler(
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

    async def bot_user_id(self, team: str = "") -> str:
        if self.workspaces.multi:
            return self.workspaces.bot_user_id(team)
        if not self._bot_user_id:
            auth = await self.client.auth_test()
            self._bot_user_id = str(auth["user_id"])
            self._bot_id = str(auth.get("bot_id") or "")
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
        bot = await self.bot_user_id(convert.team_of(body))
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
        thread = event.get("assistant_thread")
        thread = thread if isinstance(thread, dict) else {}
        channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if not (isinstance(channel, str) and channel and isinstance(thread_ts, str) and thread_ts):
            log.info("slack_assistant_thread_skipped", reason="no channel_id and thread_ts")
            return
        try:
            await self.workspaces.client(
                convert.team_of(body)
            ).assistant_threads_setSuggestedPrompts(
                channel_id=channel, thread_ts=thread_ts, prompts=SUGGESTED_PROMPTS
            )
        except SlackApiError as exc:
            log.warning(
                "slack_call_failed",
                method="assistant.threads.setSuggestedPrompts",
                error=explain(exc),
            )
        except NETWORK_ERRORS as exc:
            log.warning(
                "slack_call_failed",
                method="assistant.threads.setSuggestedPrompts",
                error=f"{type(exc).__name__}: {_one_line(exc)}",
            )

    async def _bind_workspace(
        self, body: dict[str, Any], context: dict[str, Any], next: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Middleware: the workspace the request came from is served by the installation the
        authorize step found (many workspaces; nothing to do for one token)."""
        await self.workspaces.bind(convert.team_of(body), context)
        return await next()

    async def _on_uninstalled(self, context: dict[str, Any]) -> None:
        await self.workspaces.uninstalled(
            context.get("enterprise_id"),
            context.get("team_id"),
            org_wide=bool(context.get("is_enterprise_install")),
        )

    async def _on_tokens_revoked(self, event: dict[str, Any], context: dict[str, Any]) -> None:
        tokens = event.get("tokens")
        tokens = tokens if isinstance(tokens, dict) else {}
        await self.workspaces.tokens_revoked(
            context.get("enterprise_id"),
            context.get("team_id"),
            org_wide=bool(context.get("is_enterprise_install")),
            bot=bool(tokens.get("bot")),
            users=[str(u) for u in tokens.get("oauth") or []],
        )

    async def _ack_interaction(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        log.info("slack_interaction_ignored", type=body.get("type"))

    async def _ack_options(self, ack: Any, body: dict[str, Any]) -> None:
        await ack(options=[])
        log.info("slack_interaction_ignored", type=body.get("type"))

    async def _ignore(self) -> None:
        return None

    def reply_to(
        self,
        key: ConversationKey,
        address: Mapping[str, Any] | None = None,
        *,
        replacing: str = "",
    ) -> Reply:
        """A reply into a conversation: with no message to answer (after a restart), or, with
        `address`, the reply of a queued turn as its accepting process described it; with
        `replacing`, it rewrites the message a crashed run of the turn left half-shown."""
        target = convert.target_for(key) if address is None else convert.target_from(address)

        def build(client: AsyncWebClient) -> Reply:
            if replacing:
                return replacing_reply(client, target, replacing)
            native, unsupported = self._settings.native_streaming, self._no_stream
            return make_reply(client, target, native=native, unsupported=unsupported)

        stored = None if address is None else convert.address_of(target)
        return EnsuredReply(build, key.workspace, self.workspaces, stored)

    async def _handle(
        self, body: dict[str, Any], event: dict[str, Any], *, addressed: bool
    ) -> None:
        target = convert.target_of(body, event)
        bot = await self.bot_user_id(target.team)
        user_id = event.get("user", "")
        if not user_id or user_id == bot:
            return
        user = await self._user(user_id, target.team)
        if user.is_bot and self._settings.ignore_bots:
            return
        ours = convert.to_event(body, event, user, bot_user_id=bot, addressed=addressed)
        self.workspaces.note_files((a.url for a in ours.attachments), target.team)
        reply = make_reply(
            self.workspaces.client(target.team),
            target,
            native=self._settings.native_streaming,
            unsupported=self._no_stream,
        )
        command = split_command(ours.text)
        if command is not None and command[0] in self._engine.commands:
            # `@bot /tool …`: nothing to store first, and it may run for long: ack now.
            self._spawn(self._in_message_command(ours, reply, target), command=f"/{command[0]}")
            return
        received = await self._engine.receive(ours, reply)
        self._tell_if_queued(received.submission, target)

    def _tell_if_queued(self, submission: Submission | None, target: Target) -> None:
        """A message stored to wait behind others gets a status saying so once it has waited
        QUEUED_NOTICE_SECONDS without being started (the assistant thread's status where there
        is one, else an ephemeral note to the sender), at most QUEUED_NOTICES_PER_SECOND: one
        answered soon, such as a turn queued only to keep its conversation's order, gets none,
        and an overloaded server does not spend a Web API call on every message it queues."""
        if submission is None or not submission.queued or submission.turn_id is None:
            return
        turn_id = submission.turn_id

        async def tell() -> None:
            await asyncio.sleep(QUEUED_NOTICE_SECONDS)
            if self._engine.claimed_here(turn_id):
                return
            turn = await self._engine.store.turns.get(turn_id)
            if turn is None or turn.status != "queued":
                return
            now = time.monotonic()
            if now - self._queued_told < 1 / QUEUED_NOTICES_PER_SECOND:
                return  # past capacity, a Web API call per queued message would add to the wait
            self._queued_told = now
            await SlackSink(self.workspaces.client(target.team), target).queued()

        self._spawn(tell(), method="queued status")

    async def _in_message_command(self, ours: Event, reply: Reply, target: Target) -> None:
        try:
            received = await self._engine.receive(ours, reply)
        except Exception as exc:
            log.error("slack_command_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            received = None
        result = received.command if received is not None else CommandResult(COMMAND_FAILED)
        if result is None:
            return
        sink = SlackSink(self.workspaces.client(target.team), target)
        try:
            await (sink.post(to_mrkdwn(result.text)) if result.public else sink.notice(result.text))
        except SlackApiError as exc:
            log.warning("slack_call_failed", method="command reply", error=explain(exc))
        except NETWORK_ERRORS as exc:
            log.warning("slack_call_failed", method="command reply", error=type(exc).__name__)

    async def _on_command(self, ack: Any, command: dict[str, Any]) -> None:
        """Ack at once (Slack's 3 seconds), then run the command in the background and answer
        through its response_url (or, failing that, ephemerally in the channel)."""
        await ack()
        self._spawn(self._run_command(dict(command)), command=command.get("command"))

    def _spawn(self, work: Coroutine[Any, Any, None], **context: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                exc = finished.exception()
                log.error(
                    "slack_background_failed",
                    error=f"{type(exc).__name__}: {exc}",
                    exc_info=exc,
                    **context,
                )

        task.add_done_callback(done)

    async def _run_command(self, command: dict[str, Any]) -> None:
        name = convert.command_name(command["command"], self._settings.commands) or ""
        try:
            user = await self._user(command["user_id"], command.get("team_id", ""))
            event = convert.command_event(command, user)
            if name == "ask":
                await self._ask(command, user, event.text)
                return
            result = await self._engine.command(event, name, event.text)
        except StoreError as exc:  # `/ask`'s question could not be stored: say so, ask again
            log.error("message_not_stored", command=command["command"], error=str(exc))
            await self._answer(command, STORE_FAILURE_MESSAGE, public=False)
            return
        except Exception as exc:  # the command itself failed: it did not run
            log.error(
                "slack_command_failed",
                command=command["command"],
                error=f"{type(exc).__name__}: {exc}",
                exc_info=True,
            )
            await self._answer(command, COMMAND_FAILED, public=False)
            return
        await self._answer(command, result.text, public=result.public)
        sink = SlackSink(
            self.workspaces.client(event.workspace),
            Target(event.channel, None, user.id, event.workspace),
        )
        for file in result.files:
            try:
                await sink.upload(file)
            except SlackApiError as exc:
                log.warning("slack_call_failed", method="files.upload", error=explain(exc))
            except NETWORK_ERRORS as exc:
                log.warning("slack_call_failed", method="files.upload", error=type(exc).__name__)

    async def _answer(self, command: dict[str, Any], text: str, *, public: bool) -> None:
        """Answer a slash command through its response_url; when that fails (missing, invalid,
        unreachable, expired), log why and post the answer ephemerally to the user instead."""
        reason = await self._respond(str(command.get("response_url") or ""), text, public=public)
        if reason is None:
            return
        channel, user = command.get("channel_id", ""), command.get("user_id", "")
        log.warning(
            "slack_response_url_failed",
            reason=reason,
            command=command.get("command"),
            channel=channel,
            fallback="chat.postEphemeral",
        )
        try:
            client = self.workspaces.client(command.get("team_id", ""))
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("slack_call_failed", method="chat.postEphemeral", error=explain(exc))
        except NETWORK_ERRORS as exc:
            log.warning("slack_call_failed", method="chat.postEphemeral", error=type(exc).__name__)

    async def _respond(self, url: str, text: str, *, public: bool) -> str | None:
        """Post to a response_url; None when Slack took it, else the reason it did not."""
        if not url:
            return "missing response_url"
        try:
            webhook = AsyncWebhookClient(url, session=self.http, timeout=int(RESPONSE_URL_TIMEOUT))
            async with asyncio.timeout(RESPONSE_URL_TIMEOUT):
                response = await webhook.send(
                    text=text, response_type="in_channel" if public else "ephemeral"
                )
        except (*NETWORK_ERRORS, ValueError) as exc:  # aiohttp's InvalidURL is a ValueError
            return f"{type(exc).__name__}: {_one_line(exc) or 'no detail'}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {_one_line(response.body, 100)}"
        return None

    async def _ask(self, command: dict[str, Any], user: User, text: str) -> None:
        """`/ask question`: post the question in the channel and answer in its thread."""
        if not text:
            await self._answer(command, "usage: /ask <your question>", public=False)
            return
        channel = command["channel_id"]
        client = self.workspaces.client(command.get("team_id", ""))
        try:
            posted = await client.chat_postMessage(
                channel=channel, text=f"<@{user.id}> asked: {text}"
            )
        except SlackApiError as exc:
            log.warning("slack_call_failed", method="chat.postMessage", error=explain(exc))
            await self._answer(command, f"I can't post here ({explain(exc)}).", public=False)
            return
        event = convert.ask_event(command, user, text, str(posted["ts"]))
        target = Target(channel, event.thread, user.id, event.workspace)
        reply = make_reply(
            client,
            target,
            native=self._settings.native_streaming,
            unsupported=self._no_stream,
        )
        self._tell_if_queued(await self._engine.submit(event, reply), target)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        if isinstance(error, QueueFull):  # load shedding, not a fault: Slack delivers it again
            log.warning("slack_event_refused", reason=str(error), event_id=body.get("event_id"))
            return
        detail = (
            explain(error)
            if isinstance(error, SlackApiError)
            else f"{type(error).__name__}: {error}"
        )
        # Bolt answers 500, so Slack redelivers: a message that could not be stored is not lost.
        log.error("slack_listener_failed", error=detail, event_id=body.get("event_id"))

    # -- helpers --------------------------------------------------------------------------

    async def _user(self, user_id: str, team: str = "") -> User:
        """The person behind `user_id`, from `users.info` at most every USER_CACHE_SECONDS; while
        one lookup is on its way, messages from the same person wait for it, not for their own."""
        key = f"{team}/{user_id}"
        cached = self._users.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        pending = self._user_lookups.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._look_up_user(user_id, team))
            self._user_lookups[key] = pending
            pending.add_done_callback(lambda done: self._lookup_done(key, done))
        return await asyncio.shield(pending)

    def _lookup_done(self, key: str, done: asyncio.Future[User]) -> None:
        self._user_lookups.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: its waiters may all have gone

    async def _look_up_user(self, user_id: str, team: str) -> User:
        try:
            info = await self.workspaces.client(team).users_info(user=user_id)
            user = convert.user_from_info(info.get("user") or {}, user_id)
        except SlackApiError as exc:
            log.warning("slack_call_failed", method="users.info", error=explain(exc))
            user = User(user_id, user_id)
        self._users[f"{team}/{user_id}"] = (time.monotonic() + USER_CACHE_SECONDS, user)
        return user

    async def history(
        self,
        key: ConversationKey,
        *,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> HistoryPage:
        """A channel's messages (`conversations.history`) or a thread's (`.replies`)."""
        args: dict[str, Any] = {"channel": key.channel, "limit": limit}
        if cursor:
            args["cursor"] = cursor
        if since is not None:
            args["oldest"] = f"{since.timestamp():.6f}"
        client = await self.workspaces.ensure(key.workspace)
        try:
            if key.thread != MAIN_THREAD:
                answer = await client.conversations_replies(ts=key.thread, **args)
            else:
                answer = await client.conversations_history(**args)
        except SlackApiError as exc:
            raise _history_error(exc) from None
        except NETWORK_ERRORS as exc:
            raise HistoryUnavailable(f"Slack is unreachable ({type(exc).__name__})") from None
        data = answer.data if isinstance(answer.data, dict) else {}
        team = key.workspace
        names = {uid: (await self._user(uid, team)).name for uid in convert.history_users(data)}
        team_url = await self._team_url(key.workspace)
        return convert.history_page(data, names, channel=key.channel, team_url=team_url)

    async def _team_url(self, team: str) -> str:
        """The workspace's URL (auth.test's `url`), for permalinks; "" when Slack won't say."""
        if team not in self._team_urls:
            try:
                auth = await (await self.workspaces.ensure(team)).auth_test()
            except (SlackApiError, *NETWORK_ERRORS) as exc:
                log.warning("slack_call_failed", method="auth.test", error=type(exc).__name__)
                return ""
            self._team_urls[team] = str(auth.get("url") or "")
        return self._team_urls[team]

    async def access(self, key: ConversationKey, user_id: str) -> ChannelAccess:
        """Whether the bot can read the channel, whether it is private, whether the user is in it."""
        client = await self.workspaces.ensure(key.workspace)
        try:
            info = await client.conversations_info(channel=key.channel)
        except SlackApiError as exc:
            if _slack_error(exc) in {"channel_not_found", "not_in_channel"}:
                return ChannelAccess(readable=False, private=False, member=False)
            raise _history_error(exc) from None
        except NETWORK_ERRORS as exc:
            raise HistoryUnavailable(f"Slack is unreachable ({type(exc).__name__})") from None
        channel = info.get("channel") or {}
        if channel.get("is_im"):
            return convert.channel_access(channel, member=channel.get("user") == user_id)
        if channel.get("is_member") is not True:  # the bot is not in it: nothing to read
            return convert.channel_access(channel, member=False)
        member = await self._is_member(client, key.channel, user_id)
        return convert.channel_access(channel, member=member)

    async def _is_member(self, client: AsyncWebClient, channel: str, user_id: str) -> bool:
        cursor = None
        for _ in range(MEMBER_PAGES):
            try:
                page = await client.conversations_members(
                    channel=channel, limit=1000, **({"cursor": cursor} if cursor else {})
                )
            except SlackApiError as exc:
                raise _history_error(exc) from None
            if user_id in (page.get("members") or []):
                return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return False
        return False

    async def download(self, attachment: Attachment) -> bytes:
        """Files are private: download with the bot token."""
        headers = {"Authorization": f"Bearer {self.workspaces.token_for_file(attachment.url)}"}
        async with self.http.get(
            attachment.url, headers=headers, allow_redirects=False
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"download answered {response.status}; the app needs files:read")
            return await response.read()


def _slack_error(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def _history_error(exc: SlackApiError) -> HistoryUnavailable:
    """A failed history call as what the tool tells the model (rate limits with the wait)."""
    if getattr(exc.response, "status_code", 0) == 429 or _slack_error(exc) == "ratelimited":
        headers = getattr(exc.response, "headers", None) or {}
        raw = headers.get("Retry-After") or headers.get("retry-after") or "30"
        try:
            wait = max(1, math.ceil(float(raw)))
        except ValueError:
            wait = 30
        return HistoryUnavailable(
            f"Slack is rate limiting history reads; try again in {wait} s", retry_after=wait
        )
    return HistoryUnavailable(f"Slack refused to read the channel ({explain(exc)})")


class _CheckedSocketModeHandler(AsyncSocketModeHandler):
    """Socket Mode with the HTTP front door's shape check: a malformed envelope is acknowledged
    (so Slack does not redeliver it) and logged, and never reaches Bolt's routing."""

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.time()
        reason = intake.problem(req.payload)
        if reason is None:
            try:
                bolt_response = await run_async_bolt_app(self.app, req)
            except Exception as exc:  # Bolt's own routing tripped on a payload of an odd shape
                reason = f"{type(exc).__name__}: {_one_line(exc)}"
            else:  # acks a 200; a 5xx (message not stored) is not acked, so Slack redelivers
                await send_async_response(client, req, bolt_response, started)
                return
        log.warning("slack_request_rejected", reason=reason, transport="socket_mode")
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
