"""A local fake of Discord (REST + gateway WebSocket) that the real discord.py client connects to."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

JSON = dict[str, Any]
ADMINISTRATOR = str(1 << 3)
DISCORD_EPOCH_MS = 1_420_070_400_000  # snowflakes count milliseconds from 2015-01-01


@dataclass
class Request:
    """One REST request the fake received."""

    method: str
    path: str
    json: Any
    at: float = field(default_factory=time.monotonic)


class FakeDiscord:
    """Plays Discord for one bot: a guild with a text channel, DMs, threads, interactions."""

    def __init__(
        self, *, token: str = "test-token", bot_id: int = 1000, application_id: int = 2000
    ) -> None:
        self.token, self.bot_id, self.application_id = token, bot_id, application_id
        self.guild_id, self.channel_id = 1, 10
        self.requests: list[Request] = []
        self.messages: dict[int, list[JSON]] = {}
        self.channels: dict[int, JSON] = {
            self.channel_id: {
                "id": str(self.channel_id),
                "type": 0,
                "name": "general",
                "guild_id": "1",
                "position": 0,
                "permission_overwrites": [],
                "parent_id": None,
            },
        }
        self.history: dict[int, list[JSON]] = {}  # messages users wrote earlier, by channel
        self.guild_members: dict[int, JSON] = {}  # members the REST API knows (GET member)
        self.interaction_callbacks: dict[str, JSON] = {}
        self.attachments: dict[str, tuple[str, bytes]] = {}
        self.commands: dict[str, list[JSON]] = {}
        self.reject_privileged_intents = False
        self.identify: JSON | None = None
        self.resumes = 0
        self.identifies: list[tuple[int, int, float]] = []  # (shard, shard count, when)
        self._ids = itertools.count(5000)
        self._seq = itertools.count(1)
        self._failures: list[tuple[str, re.Pattern[str], int, float, int]] = []
        self._changed = asyncio.Condition()
        self._ws: web.WebSocketResponse | None = None
        self.ready = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base = ""

    @property
    def api_base(self) -> str:
        return f"{self.base}/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/gateway"

    def snowflake(self) -> int:
        """A new id that, like Discord's, carries the time it was made (messages' `created_at`)."""
        millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (millis << 22) | (next(self._ids) & 0x3FFFFF)

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/cdn/{key}", self._cdn)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    # -- payloads -------------------------------------------------------------------------

    def user(self, user_id: int, name: str, *, bot: bool = False) -> JSON:
        return {
            "id": str(user_id),
            "username": name,
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
        }

    def _guild(self) -> JSON:
        bot_member = {
            "user": self.user(self.bot_id, "parley", bot=True),
            "roles": ["2"],
            "joined_at": "2026-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
        return {
            "id": str(self.guild_id),
            "name": "Test",
            "icon": None,
            "owner_id": "9",  # not the guild id, which is also the @everyone role id
            "features": [],
            "roles": [
                {
                    "id": str(self.guild_id),
                    "name": "@everyone",
                    "permissions": "1071698660928",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                },
                {
                    "id": "2",
                    "name": "bot",
                    "permissions": ADMINISTRATOR,
                    "position": 1,
                    "color": 0,
                    "hoist": False,
                    "managed": True,
                    "mentionable": False,
                    "flags": 0,
                },
            ],
            "channels": [c for c in self.channels.values() if c["type"] == 0],
            "threads": [c for c in self.channels.values() if c["type"] == 11],
            "members": [bot_member],
            "member_count": 2,
            "large": False,
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "unavailable": False,
            "premium_tier": 0,
            "system_channel_flags": 0,
            "verification_level": 0,
            "explicit_content_filter": 0,
            "default_message_notifications": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "preferred_locale": "en-US",
            "joined_at": "2026-01-01T00:00:00+00:00",
        }

    def message(
        self,
        channel_id: int,
        content: str,
        author: JSON,
        *,
        guild: bool = True,
        mentions: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        message_id: int | None = None,
        flags: int = 0,
    ) -> JSON:
        payload: JSON = {
            "id": str(message_id or self.snowflake()),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentions or [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": flags,
        }
        if guild:
            payload["guild_id"] = str(self.guild_id)
            payload["member"] = {
                "roles": [],
                "joined_at": "2026-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        return payload

    def add_attachment(
        self, filename: str, content_type: str, data: bytes, *, voice: bool = False
    ) -> JSON:
        key = str(self.snowflake())
        self.attachments[key] = (content_type, data)
        attachment = {
            "id": key,
            "filename": filename,
            "size": len(data),
            "content_type": content_type,
            "url": f"{self.base}/cdn/{key}",
            "proxy_url": f"{self.base}/cdn/{key}",
        }
        if voice:
            attachment |= {"duration_secs": 2.5, "waveform": "AAAA"}
        return attachment

    async def add_thread(self, owner_id: int, name: str = "a user's thread") -> int:
        """A public thread in the text channel that someone else started."""
        thread_id = self.snowflake()
        self.channels[thread_id] = self._thread(thread_id, self.channel_id, owner_id, name, 1440)
        await self.dispatch("THREAD_CREATE", {**self.channels[thread_id], "newly_created": True})
        return thread_id

    def _thread(
        self, thread_id: int, parent: int, owner_id: int, name: str, archive_minutes: int
    ) -> JSON:
        return {
            "id": str(thread_id),
            "type": 11,
            "guild_id": str(self.guild_id),
            "parent_id": str(parent),
            "owner_id": str(owner_id),
            "name": name,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": archive_minutes,
                "archive_timestamp": "2026-11-24T12:00:00+00:00",
                "locked": False,
            },
        }

    def add_channel(self, name: str, *, private_for: list[int] | None = None) -> int:
        """Another text channel; with `private_for`, @everyone may not view it but those users
        (and the bot, an administrator) may. Add it before the bot connects."""
        channel_id = self.snowflake()
        view = str((1 << 10) | (1 << 16))  # VIEW_CHANNEL | READ_MESSAGE_HISTORY
        overwrites = (
            [{"id": str(self.guild_id), "type": 0, "allow": "0", "deny": view}]
            + [{"id": str(u), "type": 1, "allow": view, "deny": "0"} for u in private_for]
            if private_for is not None
            else []
        )
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": 0,
            "name": name,
            "guild_id": str(self.guild_id),
            "position": len(self.channels),
            "permission_overwrites": overwrites,
            "parent_id": None,
        }
        return channel_id

    def add_member(self, user_id: int, name: str) -> None:
        """A member of the guild, as `GET /guilds/{id}/members/{user}` answers."""
        self.guild_members[user_id] = {
            "user": self.user(user_id, name),
            "roles": [],
            "joined_at": "2026-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
        }

    def post(
        self, channel_id: int, content: str, *, author_id: int = 42, name: str = "ada"
    ) -> JSON:
        """A message already in the channel (written before the bot was asked)."""
        message = self.message(channel_id, content, self.user(author_id, name))
        self.history.setdefault(channel_id, []).append(message)
        return message

    def add_dm_channel(self, user_id: int) -> int:
        channel_id = self.snowflake()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": 1,
            "recipients": [self.user(user_id, f"user{user_id}")],
            "last_message_id": None,
        }
        return channel_id

    # -- gateway --------------------------------------------------------------------------

    async def dispatch(self, event: str, data: JSON) -> None:
        await asyncio.wait_for(self.ready.wait(), 10)
        assert self._ws is not None
        await self._ws.send_json({"op": 0, "t": event, "s": next(self._seq), "d": data})

    async def push_message(
        self,
        channel_id: int,
        content: str,
        *,
        author_id: int = 42,
        author_name: str = "ada",
        bot: bool = False,
        mention_bot: bool = False,
        attachments: list[JSON] | None = None,
        flags: int = 0,
    ) -> JSON:
        """Dispatch MESSAGE_CREATE as if a user wrote `content`."""
        guild = self.channels.get(channel_id, {}).get("type") != 1
        mentions = [self.user(self.bot_id, "parley", bot=True)] if mention_bot else []
        text = f"<@{self.bot_id}> {content}" if mention_bot else content
        message = self.message(
            channel_id,
            text,
            self.user(author_id, author_name, bot=bot),
            guild=guild,
            mentions=mentions,
            attachments=attachments,
            flags=flags,
        )
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    async def push_interaction(
        self,
        name: str,
        options: list[JSON] | None = None,
        *,
        channel_id: int | None = None,
        user_id: int = 42,
        kind: int = 2,
        data: JSON | None = None,
        message: JSON | None = None,
        admin: bool = False,
    ) -> JSON:
        """Dispatch INTERACTION_CREATE for a slash command (kind 2) or its autocomplete (kind 4);
        with `data`, a component click (kind 3) or a modal submission (kind 5)."""
        channel = self.channels[channel_id or self.channel_id]
        interaction = {
            "id": str(self.snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "token": f"itoken{self.snowflake()}",
            "version": 1,
            "guild_id": str(self.guild_id),
            "channel_id": channel["id"],
            "channel": channel,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": ADMINISTRATOR,
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": 0,
            "attachment_size_limit": 8_000_000,
            "member": {
                "user": self.user(user_id, "ada"),
                "roles": [],
                "joined_at": "2026-01-01T00:00:00+00:00",
                "permissions": ADMINISTRATOR if admin else "0",
                "deaf": False,
                "mute": False,
                "flags": 0,
            },
            "data": data
            or {
                "id": str(self.snowflake()),
                "name": name,
                "type": 1,
                "options": options or [],
                "guild_id": str(self.guild_id),
            },
        }
        if message is not None:
            interaction["message"] = {
                k: v for k, v in message.items() if k not in {"edits", "at", "_data"}
            }
        interaction["_sent_at"] = time.monotonic()
        self.interaction_callbacks.setdefault(interaction["id"], {})
        sent = {k: v for k, v in interaction.items() if not k.startswith("_")}
        await self.dispatch("INTERACTION_CREATE", sent)
        return interaction

    async def push_click(
        self, custom_id: str, message: JSON, *, user_id: int = 42, admin: bool = False
    ) -> JSON:
        """A click (interaction type 3) on a button of `message`."""
        channel = int(message["channel_id"])
        return await self.push_interaction(
            "",
            channel_id=channel,
            user_id=user_id,
            kind=3,
            data={"custom_id": custom_id, "component_type": 2},
            message=message,
            admin=admin,
        )

    async def push_modal_submit(
        self, custom_id: str, values: dict[str, str], *, channel_id: int, user_id: int = 42
    ) -> JSON:
        """A modal's submission (interaction type 5) with the text typed per input."""
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
            for k, v in values.items()
        ]
        return await self.push_interaction(
            "",
            channel_id=channel_id,
            user_id=user_id,
            kind=5,
            data={"custom_id": custom_id, "components": rows},
        )

    def buttons(self, message: JSON) -> list[str]:
        """The custom ids of a message's buttons."""
        return [
            c["custom_id"]
            for row in message.get("components") or []
            for c in row.get("components", [])
            if "custom_id" in c
        ]

    def find(self, message_id: str) -> JSON:
        """A message the bot posted, by id, in any channel."""
        return next(m for ms in self.messages.values() for m in ms if m["id"] == message_id)

    async def send_reconnect(self) -> None:
        """op 7: the client should reconnect and RESUME."""
        assert self._ws is not None
        self.ready.clear()
        await self._ws.send_json({"op": 7, "d": None})

    async def invalidate_session(self) -> None:
        """op 9 (not resumable): the client should IDENTIFY again, and gets a new READY."""
        assert self._ws is not None
        self.ready.clear()
        await self._ws.send_json({"op": 9, "d": False})

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            op, data = payload.get("op"), payload.get("d")
            if op == 1:
                await ws.send_json({"op": 11})
            elif op == 2:
                self.identify = data
                shard, count = data.get("shard", [0, 1])
                async with self._changed:
                    self.identifies.append((shard, count, time.monotonic()))
                    self._changed.notify_all()
                if data.get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                if self.reject_privileged_intents and data.get("intents", 0) & (1 << 15):
                    await ws.close(code=4014, message=b"Disallowed intent(s).")
                    break
                await ws.send_json(
                    {
                        "op": 0,
                        "t": "READY",
                        "s": next(self._seq),
                        "d": {
                            "v": 10,
                            "user": self.user(self.bot_id, "parley", bot=True),
                            "guilds": [{"id": str(self.guild_id), "unavailable": True}]
                            if self._guild_shard(count) == shard
                            else [],
                            "session_id": f"session-{shard}",
                            "resume_gateway_url": self.gateway_url,
                            "shard": [shard, count],
                            "application": {"id": str(self.application_id), "flags": 0},
                            "private_channels": [],
                            "relationships": [],
                            "user_settings": {},
                        },
                    }
                )
                if self._guild_shard(count) == shard:
                    await ws.send_json(
                        {"op": 0, "t": "GUILD_CREATE", "s": next(self._seq), "d": self._guild()}
                    )
                if shard != 0:
                    continue  # DMs, and this fake's one guild, live on shard 0
                self._ws = ws
                self.ready.set()
            elif op == 6:
                if data.get("session_id") != "session-0":
                    continue
                self._ws = ws
                self.resumes += 1
                await ws.send_json({"op": 0, "t": "RESUMED", "s": next(self._seq), "d": {}})
                self.ready.set()
        return ws

    def _guild_shard(self, count: int) -> int:
        """The shard that Discord routes this fake's guild to."""
        return (self.guild_id >> 22) % count

    async def drop(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close the socket as a network failure would."""
        self.ready.clear()
        if self._ws is not None:
            await self._ws.close(code=code)

    # -- REST -----------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 429,
        retry_after: float = 0.05,
        times: int = 1,
        code: int = 0,
    ) -> None:
        for _ in range(times):
            self._failures.append((method, re.compile(path), status, retry_after, code))

    async def wait_for(
        self, method: str, path: str, count: int = 1, timeout: float = 10
    ) -> list[Request]:
        pattern = re.compile(path)

        def matching() -> list[Request]:
            return [r for r in self.requests if r.method == method and pattern.search(r.path)]

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(matching()) >= count)
        return matching()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until `predicate()` holds, rechecked after every REST request and IDENTIFY."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def _cdn(self, request: web.Request) -> web.Response:
        content_type, data = self.attachments[request.match_info["key"]]
        return web.Response(body=data, content_type=content_type)

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        body: Any = None
        if request.content_type == "application/json" and request.can_read_body:
            body = await request.json()
        elif request.content_type.startswith("multipart/"):
            body = {"files": []}
            async for part in await request.multipart():
                if part.name == "payload_json":  # type: ignore[union-attr]
                    body.update(json.loads(await part.text()))  # type: ignore[union-attr]
                else:
                    body["files"].append({"filename": part.filename, "data": await part.read()})  # type: ignore[union-attr]
        async with self._changed:
            self.requests.append(Request(request.method, path, body))
            self._changed.notify_all()
        if (
            request.headers.get("Authorization") not in (f"Bot {self.token}", None)
            and "/webhooks/" not in path
        ):
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        for index, (method, pattern, status, retry_after, code) in enumerate(self._failures):
            if method == request.method and pattern.search(path):
                del self._failures[index]
                if status == 429:
                    return _json(
                        {
                            "message": "You are being rate limited.",
                            "retry_after": retry_after,
                            "global": False,
                        },
                        429,
                        {
                            "Retry-After": f"{retry_after}",
                            "X-RateLimit-Limit": "5",
                            "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset-After": f"{retry_after}",
                            "X-RateLimit-Bucket": "fake",
                            "Via": "1.1 google",
                        },
                    )
                return _json({"message": "simulated failure", "code": code}, status)
        if request.method == "GET":
            if match := re.fullmatch(r"/channels/(\d+)/messages", path):
                return self._list_messages(int(match.group(1)), request.query)
            if match := re.fullmatch(r"/guilds/(\d+)/members/(\d+)", path):
                member = self.guild_members.get(int(match.group(2)))
                if member is None:
                    return _json({"message": "Unknown Member", "code": 10007}, 404)
                return _json(member)
        return await self._route(request.method, path, body or {})

    def _list_messages(self, channel_id: int, query: Any) -> web.Response:
        """`GET /channels/{id}/messages`: newest first, `before` and `limit` honoured."""
        if channel_id not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        stored = [
            {k: v for k, v in m.items() if k not in {"edits", "at"}}
            for m in self.history.get(channel_id, []) + self.messages.get(channel_id, [])
        ]
        before = int(query.get("before") or 0)
        found = [m for m in stored if not before or int(m["id"]) < before]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        return _json(found[: int(query.get("limit") or 50)])

    async def _route(self, method: str, path: str, body: JSON) -> web.Response:
        if path == "/users/@me":
            return _json(self.user(self.bot_id, "parley", bot=True))
        if path in ("/oauth2/applications/@me", "/applications/@me"):
            return _json(
                {
                    "id": str(self.application_id),
                    "name": "parley",
                    "description": "",
                    "icon": None,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": self.user(1, "owner"),
                    "verify_key": "0" * 64,
                    "flags": 0,
                }
            )
        if path in ("/gateway", "/gateway/bot"):
            return _json(
                {
                    "url": self.gateway_url,
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if match := re.fullmatch(r"/channels/(\d+)/messages", path):
            return self._create_message(int(match.group(1)), body)
        if match := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path):
            channel, message_id = int(match.group(1)), match.group(2)
            stored = next(
                (m for m in self.messages.get(channel, []) if m["id"] == message_id), None
            )
            if stored is None:
                return _json({"message": "Unknown Message", "code": 10008}, 404)
            if method == "PATCH":
                stored.update(
                    {k: v for k, v in body.items() if k in {"content", "embeds", "components"}}
                )
                stored.setdefault("edits", []).append(time.monotonic())
            if method == "DELETE":
                self.messages[channel].remove(stored)
                return web.Response(status=204)
            return _json({k: v for k, v in stored.items() if k not in {"edits", "at"}})
        if match := re.fullmatch(r"/channels/(\d+)/messages/(\d+)/threads", path):
            thread_id = int(match.group(2))
            parent = int(match.group(1))
            thread = self._thread(
                thread_id,
                parent,
                self.bot_id,
                body.get("name", "thread"),
                body.get("auto_archive_duration", 1440),
            )
            self.channels[thread_id] = thread
            await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
            return _json(thread, 201)
        if re.fullmatch(r"/channels/(\d+)/typing", path):
            return web.Response(status=204)
        if match := re.fullmatch(r"/channels/(\d+)", path):
            channel = self.channels.get(int(match.group(1)))
            return (
                _json(channel)
                if channel
                else _json({"message": "Unknown Channel", "code": 10003}, 404)
            )
        if path == "/users/@me/channels":
            return _json(self.channels[self.add_dm_channel(int(body["recipient_id"]))])
        if match := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path):
            self.interaction_callbacks.setdefault(match.group(1), {})["callback"] = {
                "body": body,
                "at": time.monotonic(),
            }
            response = {
                "interaction": {
                    "id": match.group(1),
                    "type": 2,
                    "response_message_loading": body.get("type") == 5,
                    "response_message_ephemeral": False,
                }
            }
            return _json(response)
        if match := re.fullmatch(r"/webhooks/(\d+)/([^/]+)(/messages/(@original|\d+))?", path):
            channel = self.channel_id
            if method == "POST" or match.group(3):
                message = self.message(
                    channel,
                    body.get("content") or "",
                    self.user(self.bot_id, "parley", bot=True),
                    message_id=None,
                )
                message["webhook_id"] = match.group(1)
                message["components"] = body.get("components") or []
                message["flags"] = body.get("flags", 0)
                self.messages.setdefault(-1, []).append(
                    {
                        **message,
                        "token": match.group(2),
                        "method": method,
                        "target": match.group(4) or "followup",
                    }
                )
                return _json(message)
        if match := re.fullmatch(r"/applications/(\d+)(/guilds/(\d+))?/commands", path):
            scope = match.group(3) or "global"
            if method == "PUT":
                self.commands[scope] = [
                    {
                        **c,
                        "id": str(self.snowflake()),
                        "application_id": str(self.application_id),
                        "version": "1",
                        "default_member_permissions": None,
                    }
                    for c in body
                ]
            return _json(self.commands.get(scope, []))
        return _json({"message": "404: Not Found", "code": 0}, 404)

    def _create_message(self, channel_id: int, body: JSON) -> web.Response:
        if channel_id not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        channel = self.channels[channel_id]
        message = self.message(
            channel_id,
            body.get("content") or "",
            self.user(self.bot_id, "parley", bot=True),
            guild=channel["type"] != 1,
        )
        message["components"] = body.get("components") or []
        message["attachments"] = [
            {
                "id": str(self.snowflake()),
                "filename": f["filename"],
                "size": len(f["data"]),
                "url": "",
                "proxy_url": "",
                "_data": f["data"],
            }
            for f in body.get("files", [])
        ]
        self.messages.setdefault(channel_id, []).append({**message, "at": time.monotonic()})
        public = dict(message)
        public["attachments"] = [
            {k: v for k, v in a.items() if k != "_data"} for a in message["attachments"]
        ]
        return _json(public)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """discord.py parses a body as JSON only when the content type is exactly application/json."""
    response = web.Response(body=json.dumps(data).encode(), status=status, headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response
