"""The Discord adapter: a discord.py client wired to the engine."""

from __future__ import annotations

import asyncio

import aiohttp
import discord
import structlog
import yarl
from discord import app_commands

from bots.discord import convert
from bots.discord.commands import register_commands
from bots.discord.errors import explain
from bots.discord.reply import channel_reply
from bots.errors import StartupError
from bots.settings import AppSettings
from core.conversation.serial import KeyedSerializer
from core.engine import STORE_FAILURE_MESSAGE, Engine
from core.events import Attachment, ConversationKey, Platform, Reply
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


def point_at(settings: AppSettings) -> None:
    """Use the configured REST base and gateway (proxies, tests); discord.py keeps them globally."""
    if settings.discord.api_url:
        discord.http.Route.BASE = settings.discord.api_url.rstrip("/")
    if settings.discord.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord.gateway_url)


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot with the scopes and permissions it needs."""
    return discord.utils.oauth_url(
        application_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
    )


class DiscordAdapter(discord.AutoShardedClient):
    """Mentions start threads, threads continue without mentions, DMs are conversations.

    One process runs the shards in DISCORD_SHARD_IDS of DISCORD_SHARD_COUNT (all of them when no
    ids are given; one shard when no count is). DMs arrive on shard 0 only.
    """

    def __init__(self, settings: AppSettings, engine: Engine, **options: object) -> None:
        point_at(settings)
        intents = discord.Intents.default()
        intents.message_content = settings.discord.message_content
        super().__init__(
            intents=intents,
            shard_ids=list(settings.discord.shard_ids) or None,
            shard_count=settings.discord.shard_count or 1,
            **options,  # type: ignore[arg-type]
        )
        self.settings = settings
        self.engine = engine
        self.tree = app_commands.CommandTree(self)
        self._http_session: aiohttp.ClientSession | None = None
        self._arrivals = KeyedSerializer()
        self._max_concurrency = 1
        register_commands(self.tree, engine)
        engine.media.register(Platform.DISCORD, self._download)

    async def setup_hook(self) -> None:
        self._http_session = aiohttp.ClientSession()
        try:
            _, _, limits = await self.http.get_bot_gateway()
            self._max_concurrency = max(1, int(limits.get("max_concurrency", 1)))
        except discord.DiscordException as exc:
            log.warning("discord_gateway_info_unavailable", error=str(exc), max_concurrency=1)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Discord allows `max_concurrency` IDENTIFYs per five seconds, counted per bucket
        (shard id modulo max_concurrency) across every process of the bot: take the bucket's
        next slot in the shared database."""
        slot = f"discord-identify-{(shard_id or 0) % self._max_concurrency}"
        while True:
            wait = await self.engine.store.spacing.claim(slot, IDENTIFY_INTERVAL)
            if not wait:
                return
            await asyncio.sleep(wait)  # until the slot another process took has passed

    async def close(self) -> None:
        if self._http_session is not None:
            await self._http_session.close()
        await super().close()

    def reply_to(self, key: ConversationKey) -> Reply:
        """A reply into a conversation with no message to answer (after a restart)."""
        return channel_reply(self.get_partial_messageable(int(key.channel)), 0)

    async def on_ready(self) -> None:
        log.info("discord_ready", user=str(self.user), guilds=len(self.guilds))
        if 0 in (self.shard_ids or [0]):  # the process with shard 0 recovers Discord turns
            await self.engine.recovery.attach(Platform.DISCORD, self.reply_to)
        if self.application_id:
            log.info("discord_invite_url", url=invite_url(self.application_id))

    async def on_message(self, message: discord.Message) -> None:
        if self.user is None or message.author.id == self.user.id:
            return
        if message.author.bot and self.settings.discord.ignore_bots:
            return
        # discord.py runs each event as its own task; keep one channel's messages in order
        # until the engine has them (it keeps the order from there).
        async with self._arrivals.reserve(message.channel.id):
            try:
                await self._on_message(message)
            except discord.HTTPException as exc:  # one conversation's failure never affects others
                log.error("discord_call_failed", error=explain(exc))

    async def _on_message(self, message: discord.Message) -> None:
        assert self.user is not None
        text = convert.strip_mention(message.content, self.user.id)
        mentioned = self.user.mentioned_in(message) and not message.mention_everyone
        channel = message.channel
        if message.guild is None:
            key = convert.key_for(None, channel.id)
        elif isinstance(channel, discord.Thread):
            key = convert.key_for(message.guild.id, channel.parent_id or 0, channel.id)
            ours = channel.owner_id == self.user.id
            if (
                not mentioned
                and not ours
                and await self.engine.store.conversations.get(key) is None
            ):
                return
        elif mentioned:
            if self.settings.discord.reply_inline:
                key = convert.key_for(message.guild.id, channel.id)
            else:
                channel = await message.create_thread(
                    name=convert.thread_name(text),
                    auto_archive_duration=self.settings.discord.thread_archive_minutes,  # type: ignore[arg-type]
                )
                key = convert.key_for(message.guild.id, message.channel.id, channel.id)
        else:
            return
        event = convert.message_event(message, key, text)
        reply = channel_reply(channel, message.author.id)
        try:
            await self.engine.submit(event, reply)
        except StoreError as exc:
            log.error("message_not_stored", error=str(exc), conversation=str(key))
            await reply.notice(STORE_FAILURE_MESSAGE)

    async def _download(self, attachment: Attachment) -> bytes:
        assert self._http_session is not None
        async with self._http_session.get(attachment.url) as response:
            response.raise_for_status()
            return await response.read()

    async def sync_commands(self, guild_id: int | None = None) -> list[str]:
        """Publish the app commands (globally, or to one guild at once); returns their names."""
        token = self.settings.discord.token
        assert token is not None
        async with self:
            try:
                await self.login(token.get_secret_value())
            except discord.LoginFailure:
                raise StartupError(TOKEN_HELP) from None
            if guild_id is None:
                synced = await self.tree.sync()
            else:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
        return [command.name for command in synced]

    async def run_until_closed(self) -> None:
        """Log in and stay connected; a refused privileged intent becomes a clear message."""
        token = self.settings.discord.token
        assert token is not None
        try:
            async with self:
                await self.start(token.get_secret_value())
        except discord.PrivilegedIntentsRequired:
            raise StartupError(INTENT_HELP) from None
        except discord.LoginFailure:
            raise StartupError(TOKEN_HELP) from None
