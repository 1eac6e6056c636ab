"""The Discord adapter: a discord.py client wired to the engine."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
import discord
import structlog
from discord import app_commands

from bots.discord import convert
from bots.discord.commands import register_commands
from bots.discord.endpoints import Endpoints
from bots.discord.errors import DiscordCallFailed, explain
from bots.discord.interactions import DiscordControls
from bots.discord.reply import channel_reply, post_result
from bots.discord.settings import DiscordSettings
from bots.errors import StartupError
from core.conversation.serial import KeyedSerializer
from core.engine import STORE_FAILURE_MESSAGE, Engine
from core.events import (
    Attachment,
    ChannelAccess,
    ConversationKey,
    HistoryPage,
    HistoryUnavailable,
    Platform,
    Reply,
)
from core.logging import silence
from core.store import StoreError

log = structlog.get_logger(__name__)

INTENT_HELP = (
    "Discord refused the privileged Message Content intent (close code 4014). Enable it at "
    "https://discord.com/developers/applications -> your app -> Bot -> Privileged Gateway Intents "
    "-> Message Content Intent, or set DISCORD_MESSAGE_CONTENT=false to run with mentions, DMs and "
    "slash commands only."
)
TOKEN_HELP = (
    "Discord rejected DISCORD_TOKEN: copy the bot token again from "
    "https://discord.com/developers/applications -> your app -> Bot -> Reset Token"
)
IDENTIFY_INTERVAL = 5.0  # seconds between IDENTIFYs of one bucket (Discord's rule)
INVITE_PERMISSIONS = discord.Permissions(
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
    use_application_commands=True,
    attach_files=True,
    view_channel=True,
)


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot with the scopes and permissions it needs."""
    return discord.utils.oauth_url(
        application_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
    )


def application_id_of(settings: DiscordSettings) -> int | None:
    """The application's id: DISCORD_APPLICATION_ID, else the one DISCORD_TOKEN names (a bot
    token starts with its bot user's id in base64, and a bot user has its application's id);
    None when neither is known."""
    if settings.application_id is not None:
        return settings.application_id
    if settings.token is None:
        return None
    head = settings.token.get_secret_value().partition(".")[0]
    try:
        decoded = base64.b64decode(head + "=" * (-len(head) % 4), validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return int(decoded) if decoded.isdigit() else None


class _HookedClient(discord.AutoShardedClient):
    """The client, with its two hooks forwarded to the adapter.

    discord.py has no registration API for `setup_hook` (called by `login`) and
    `before_identify_hook` (called before every IDENTIFY): it calls them as methods of the client
    and documents overriding them as the way in, so this subclass does only that; events are
    registered on the client with `client.event`.
    """

    def __init__(
        self,
        *,
        setup: Callable[[], Awaitable[None]],
        before_identify: Callable[[int | None, bool], Awaitable[None]],
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._setup = setup
        self._before_identify = before_identify

    async def setup_hook(self) -> None:
        await self._setup()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        await self._before_identify(shard_id, initial)


VOICE_WARNINGS = (  # the bot never joins voice: these warnings at every start mean nothing here
    "PyNaCl is not installed, voice will NOT be supported",
    "davey is not installed, voice will NOT be supported",
)


class DiscordAdapter:
    """Mentions start threads, threads continue without mentions, DMs are conversations.

    It holds the discord.py client and is the engine's `PlatformPort` for Discord (replies into
    a conversation, attachment downloads). One process runs the shards in DISCORD_SHARD_IDS of
    DISCORD_SHARD_COUNT (all of them when no ids are given; one shard when no count is). DMs
    arrive on shard 0 only.
    """

    platform = Platform.DISCORD

    def __init__(self, settings: DiscordSettings, engine: Engine, **options: Any) -> None:
        self.settings = settings
        self.engine = engine
        intents = discord.Intents.default()
        intents.message_content = settings.message_content
        silence("discord.client", *VOICE_WARNINGS)
        self.client = _HookedClient(
            setup=self._setup,
            before_identify=self._before_identify,
            intents=intents,
            shard_ids=list(settings.shard_ids) or None,
            shard_count=settings.shard_count or 1,
            **options,
        )
        self._endpoints = Endpoints(settings.api_url, settings.gateway_url)
        self._endpoints.install(self.client.http)
        self.tree: app_commands.CommandTree[Any] = app_commands.CommandTree(self.client)
        register_commands(self.tree, engine)
        self.client.event(self.on_ready)
        self.client.event(self.on_message)
        # Clicks on reply controls and approval prompts, also those posted before a restart.
        self.client.event(DiscordControls(engine).on_interaction)
        self._http_session: aiohttp.ClientSession | None = None
        self._arrivals = KeyedSerializer()
        self._max_concurrency = 1
        self._attached = False

    @property
    def application_id(self) -> int | None:
        return self.client.application_id

    # -- the client's lifecycle -----------------------------------------------------------

    async def login(self, token: str | None = None) -> None:
        """Log in with `token` (default: DISCORD_TOKEN); runs the setup hook."""
        if token is None:
            assert self.settings.token is not None
            token = self.settings.token.get_secret_value()
        await self.client.login(token)

    async def connect(self) -> None:
        """Connect the shards and dispatch events until closed (after `login`)."""
        self._endpoints.enter()  # this task's interaction webhooks, and its event tasks'
        await self.client.connect()

    async def close(self) -> None:
        if self._http_session is not None:
            await self._http_session.close()
        await self.client.close()

    async def run_until_closed(self) -> None:
        """Log in and stay connected; a refused privileged intent becomes a clear message."""
        try:
            await self.login()
            await self.connect()
        except discord.PrivilegedIntentsRequired:
            raise StartupError(INTENT_HELP) from None
        except discord.LoginFailure:
            raise StartupError(TOKEN_HELP) from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise StartupError(self._unreachable(exc)) from None
        finally:
            await self.close()

    async def sync_commands(self, guild_id: int | None = None) -> list[str]:
        """Publish the app commands (globally, or to one guild at once); returns their names."""
        try:
            try:
                await self.login()
            except discord.LoginFailure:
                raise StartupError(TOKEN_HELP) from None
            except (aiohttp.ClientConnectionError, OSError) as exc:
                raise StartupError(self._unreachable(exc)) from None
            if guild_id is None:
                synced = await self.tree.sync()
            else:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
        finally:
            await self.close()
        return [command.name for command in synced]

    def _unreachable(self, exc: BaseException) -> str:
        """One line: Discord could not be reached at the configured URL."""
        where = self.settings.api_url or "https://discord.com/api (discord.py's default)"
        reason = type(exc).__name__
        return (
            f"Discord is unreachable at {where} ({reason}): check DISCORD_API_URL and the network"
        )

    async def _setup(self) -> None:
        self._http_session = aiohttp.ClientSession()
        try:
            _, _, limits = await self.client.http.get_bot_gateway()
            self._max_concurrency = max(1, int(limits.get("max_concurrency", 1)))
        except discord.DiscordException as exc:
            log.warning("discord_gateway_info_unavailable", error=str(exc), max_concurrency=1)

    async def _before_identify(self, shard_id: int | None, initial: bool) -> None:
        """Discord allows `max_concurrency` IDENTIFYs per five seconds, counted per bucket
        (shard id modulo max_concurrency) across every process of the bot: take the bucket's
        next slot in the shared database."""
        slot = f"discord-identify-{(shard_id or 0) % self._max_concurrency}"
        while True:
            wait = await self.engine.store.spacing.claim(slot, IDENTIFY_INTERVAL)
            if not wait:
                return
            await asyncio.sleep(wait)  # until the slot another process took has passed

    # -- the engine's port ----------------------------------------------------------------

    def reply_to(
        self,
        key: ConversationKey,
        address: Mapping[str, Any] | None = None,
        *,
        replacing: str = "",
    ) -> Reply:
        """A reply into a conversation with no message to answer (after a restart). Discord's
        replies are not `Addressable`, so its turns run where they arrive: `address` and
        `replacing` never come."""
        return channel_reply(self.client.get_partial_messageable(int(key.channel)), 0)

    async def download(self, attachment: Attachment) -> bytes:
        assert self._http_session is not None
        async with self._http_session.get(attachment.url) as response:
            response.raise_for_status()
            return await response.read()

    async def history(
        self,
        key: ConversationKey,
        *,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> HistoryPage:
        """A channel's or thread's messages (threads are channels: `key.channel`)."""
        try:
            channel = await self._channel(key)
            before = discord.Object(int(cursor)) if cursor and cursor.isdigit() else None
            found = [
                m
                async for m in channel.history(limit=limit, before=before, oldest_first=False)
                if since is None or m.created_at >= since
            ]
        except discord.HTTPException as exc:
            raise HistoryUnavailable(
                f"Discord refused to read the channel ({explain(exc)})"
            ) from None
        return convert.history_page(found, limit)

    async def access(self, key: ConversationKey, user_id: str) -> ChannelAccess:
        """Whether the bot and the user may read the channel, and whether it is private."""
        try:
            channel = await self._channel(key)
        except (discord.NotFound, discord.Forbidden):
            return ChannelAccess(readable=False, private=False, member=False)
        except discord.HTTPException as exc:
            raise HistoryUnavailable(
                f"Discord refused to look the channel up ({explain(exc)})"
            ) from None
        if isinstance(channel, discord.DMChannel):
            recipient = channel.recipient
            member = recipient is not None and str(recipient.id) == user_id
            return convert.channel_access(
                bot_can_read=True,
                everyone_can_view=False,
                member_can_read=member,
                direct=True,
                name="",
            )
        guild = channel.guild
        try:
            person = guild.get_member(int(user_id)) or await guild.fetch_member(int(user_id))
        except (discord.NotFound, ValueError):
            person = None

        def can_read(who: discord.Member | discord.Role | None) -> bool:
            if who is None:
                return False
            allowed = channel.permissions_for(who)
            return allowed.view_channel and allowed.read_message_history

        private_thread = isinstance(channel, discord.Thread) and channel.is_private()
        return convert.channel_access(
            bot_can_read=can_read(guild.me),
            everyone_can_view=channel.permissions_for(guild.default_role).view_channel
            and not private_thread,
            member_can_read=can_read(person),
            direct=False,
            name=getattr(channel, "name", "") or "",
        )

    async def _channel(self, key: ConversationKey) -> Any:
        channel_id = int(key.channel)
        return self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)

    # -- events ---------------------------------------------------------------------------

    async def on_ready(self) -> None:
        client = self.client
        log.info("discord_ready", user=str(client.user), guilds=len(client.guilds))
        if not self._attached:  # once: discord.py dispatches ready again after a re-IDENTIFY
            self._attached = True
            recovers = not self.settings.shard_ids or 0 in self.settings.shard_ids
            try:  # the process with shard 0 recovers Discord turns
                await self.engine.attach(self, recovers=recovers)
            except StoreError as exc:  # the recovery loop tries again
                log.error("discord_recovery_failed", error=str(exc))
        if client.application_id:
            log.info("discord_invite_url", url=invite_url(client.application_id))

    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or message.author.id == me.id:
            return
        if message.author.bot and self.settings.ignore_bots:
            return
        # discord.py runs each event as its own task; keep one channel's messages in order
        # until the engine has them (it keeps the order from there).
        async with self._arrivals.reserve(message.channel.id):
            try:
                await self._on_message(message, me)
            except discord.HTTPException as exc:  # one conversation's failure never affects others
                log.error("discord_call_failed", error=explain(exc))
            except DiscordCallFailed as exc:
                log.error("discord_call_failed", error=str(exc))

    async def _on_message(self, message: discord.Message, me: discord.ClientUser) -> None:
        text = convert.strip_mention(message.content, me.id)
        mentioned = me.mentioned_in(message) and not message.mention_everyone
        channel = message.channel
        addressed = True
        if message.guild is None:
            key = convert.key_for(None, channel.id)
        elif isinstance(channel, discord.Thread):
            key = convert.key_for(message.guild.id, channel.parent_id or 0, channel.id)
            # Someone else's thread, no mention: the engine continues it if it has it.
            addressed = mentioned or channel.owner_id == me.id
        elif mentioned:
            if self.settings.reply_inline:
                key = convert.key_for(message.guild.id, channel.id)
            else:
                channel = await message.create_thread(
                    name=convert.thread_name(text),
                    auto_archive_duration=self.settings.thread_archive_minutes,
                )
                key = convert.key_for(message.guild.id, message.channel.id, channel.id)
        else:
            return
        event = convert.message_event(message, key, text, addressed=addressed)
        reply = channel_reply(channel, message.author.id)
        try:
            received = await self.engine.receive(event, reply)
        except StoreError as exc:
            log.error("message_not_stored", error=str(exc), conversation=str(key))
            await reply.notice(STORE_FAILURE_MESSAGE)
            return
        if received.command is not None:
            await post_result(channel, message.author.id, received.command)
