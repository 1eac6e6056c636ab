"""A local fake of Slack's Web API (and Socket Mode) that the real slack_sdk / Bolt talk to."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

JSON = dict[str, Any]


@dataclass
class Call:
    """One Web API call the fake received."""

    method: str
    args: JSON
    at: float = field(default_factory=time.monotonic)


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send with `body`: timestamp and v0 HMAC-SHA256 signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class FakeSlack:
    """Records calls, serves files, plays Socket Mode, and fails on request."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        team_id: str = "T1",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
    ) -> None:
        self.bot_token, self.app_token = bot_token, app_token
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.calls: list[Call] = []
        self.users: dict[str, JSON] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.response_posts: dict[str, list[JSON]] = {}
        self.response_refusals: dict[str, int] = {}  # response_url key -> the status it answers
        self.uploads: dict[str, bytes] = {}
        self.messages: dict[str, JSON] = {}
        self.channels: dict[str, JSON] = {}  # conversations.info objects by id
        self.members: dict[str, list[str]] = {}  # conversations.members by channel id
        self.history: dict[str, list[JSON]] = {}  # messages (ts, user, text, thread_ts) by channel
        self.stream_supported = True
        self._failures: dict[str, list[tuple[int, str, float | None]]] = {}
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._socket: web.WebSocketResponse | None = None
        self.socket_connected = asyncio.Event()
        self._acks: dict[str, asyncio.Future[JSON]] = {}
        self._runner: web.AppRunner | None = None
        self.base = ""

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files/{file_id}", self._download)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/socket", self._socket_handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            await self._socket.close()
        assert self._runner is not None
        await self._runner.cleanup()

    # -- test controls --------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """Wait until `method` was called `count` times."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.calls_to(method)) >= count)
        return self.calls_to(method)

    def fail_next(
        self,
        method: str,
        error: str,
        *,
        status: int = 200,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Make the next calls of `method` fail (429 with Retry-After, or `ok: false`)."""
        self._failures.setdefault(method, []).extend([(status, error, retry_after)] * times)

    def add_file(self, file_id: str, name: str, mimetype: str, data: bytes) -> JSON:
        """A file object as it appears in a message's `files`."""
        self.files[file_id] = (mimetype, data)
        return {
            "id": file_id,
            "name": name,
            "mimetype": mimetype,
            "size": len(data),
            "url_private": f"{self.base}/files/{file_id}",
            "url_private_download": f"{self.base}/files/{file_id}",
            "filetype": name.rsplit(".", 1)[-1],
            "subtype": "slack_audio" if "audio" in mimetype else None,
        }

    def response_url(self, key: str = "r1", *, status: int = 200) -> str:
        """A command's response_url; with a `status` other than 200 it refuses every post with
        it (404 is what Slack answers for an expired or used-up URL)."""
        self.response_posts.setdefault(key, [])
        if status != 200:
            self.response_refusals[key] = status
        return f"{self.base}/respond/{key}"

    async def socket_send(self, kind: str, payload: JSON, *, retry_attempt: int = 0) -> str:
        """Push a Socket Mode envelope to the connected client; returns its envelope id."""
        await asyncio.wait_for(self.socket_connected.wait(), 10)
        envelope_id = f"env-{next(self._ts)}"
        self._acks[envelope_id] = asyncio.get_running_loop().create_future()
        assert self._socket is not None
        await self._socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": retry_attempt,
                "retry_reason": "",
            }
        )
        return envelope_id

    async def wait_for_ack(self, envelope_id: str, timeout: float = 10) -> JSON:
        return await asyncio.wait_for(self._acks[envelope_id], timeout)

    # -- HTTP handlers --------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _args(request)
        await self._record(Call(method, args))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or args.get(
            "token", ""
        )
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        failures = self._failures.get(method)
        if failures:
            status, error, retry_after = failures.pop(0)
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        if method == "chat.startStream" and not self.stream_supported:
            return web.json_response(
                {"ok": False, "error": "method_not_supported_for_channel_type"}
            )
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result = handler(args)
        if result.get("ok") is False:
            return web.json_response(result)
        return web.json_response({"ok": True, **result})

    def _ts_now(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _m_auth_test(self, args: JSON) -> JSON:
        return {
            "url": "https://fake.slack.test/",
            "team": "Fake",
            "user": "bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, args: JSON) -> JSON:
        ts = self._ts_now()
        message = {
            "ts": ts,
            "text": args.get("text", ""),
            "thread_ts": args.get("thread_ts"),
            "channel": args.get("channel"),
            "bot_id": self.bot_id,
        }
        self.messages[ts] = message
        return {"channel": args.get("channel"), "ts": ts, "message": message}

    def _m_chat_update(self, args: JSON) -> JSON:
        ts = args.get("ts", "")
        if ts in self.messages:
            self.messages[ts]["text"] = args.get("text", "")
        return {"channel": args.get("channel"), "ts": ts, "text": args.get("text", "")}

    def _m_chat_delete(self, args: JSON) -> JSON:
        self.messages.pop(args.get("ts", ""), None)
        return {"channel": args.get("channel"), "ts": args.get("ts")}

    def _m_chat_postEphemeral(self, args: JSON) -> JSON:
        return {"message_ts": self._ts_now()}

    def _m_chat_startStream(self, args: JSON) -> JSON:
        ts = self._ts_now()
        self.messages[ts] = {
            "ts": ts,
            "text": args.get("markdown_text") or "",
            "thread_ts": args.get("thread_ts"),
            "channel": args.get("channel"),
            "streaming": True,
        }
        return {"channel": args.get("channel"), "ts": ts}

    def _m_chat_appendStream(self, args: JSON) -> JSON:
        message = self.messages[args["ts"]]
        message["text"] += args.get("markdown_text") or ""
        return {"channel": args.get("channel"), "ts": args["ts"]}

    def _m_chat_stopStream(self, args: JSON) -> JSON:
        message = self.messages[args["ts"]]
        message["text"] += args.get("markdown_text") or ""
        message["streaming"] = False
        return {"channel": args.get("channel"), "ts": args["ts"], "message": message}

    # -- conversations: channels, members and history ------------------------------------

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        private: bool = False,
        members: list[str] = (),
        bot: bool = True,
    ) -> None:
        """A channel (the bot a member unless `bot=False`), with these members."""
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name,
            "is_channel": not private,
            "is_private": private,
            "is_im": False,
            "is_member": bot,
        }
        self.members[channel_id] = list(members)

    def add_dm(self, channel_id: str, user: str) -> None:
        self.channels[channel_id] = {
            "id": channel_id,
            "is_im": True,
            "user": user,
            "is_member": True,
        }

    def post(
        self, channel: str, user: str, text: str, *, ts: str, thread_ts: str | None = None
    ) -> JSON:
        """A message already in the channel's history (before the bot was asked)."""
        message = {"type": "message", "user": user, "text": text, "ts": ts}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.history.setdefault(channel, []).append(message)
        return message

    def _channel_or_error(self, args: JSON) -> JSON | None:
        if args.get("channel") not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if not self.channels[args["channel"]].get("is_member"):
            return {"ok": False, "error": "not_in_channel"}
        return None

    def _m_conversations_info(self, args: JSON) -> JSON:
        if args.get("channel") not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return {"channel": self.channels[args["channel"]]}

    def _m_conversations_members(self, args: JSON) -> JSON:
        if error := self._channel_or_error(args):
            return error
        return {
            "members": self.members.get(args["channel"], []),
            "response_metadata": {"next_cursor": ""},
        }

    def _page(self, messages: list[JSON], args: JSON) -> JSON:
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = messages[start : start + limit]
        more = start + limit < len(messages)
        return {
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _m_conversations_history(self, args: JSON) -> JSON:
        if error := self._channel_or_error(args):
            return error
        oldest = float(args.get("oldest") or 0)
        top = [
            m
            for m in self.history.get(args["channel"], [])
            if m.get("thread_ts") in (None, m["ts"]) and float(m["ts"]) >= oldest
        ]
        return self._page(sorted(top, key=lambda m: float(m["ts"]), reverse=True), args)

    def _m_conversations_replies(self, args: JSON) -> JSON:
        if error := self._channel_or_error(args):
            return error
        thread = [
            m
            for m in self.history.get(args["channel"], [])
            if args.get("ts") in (m["ts"], m.get("thread_ts"))
        ]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(sorted(thread, key=lambda m: float(m["ts"])), args)

    def _m_users_info(self, args: JSON) -> JSON:
        user_id = args.get("user", "")
        default = {
            "id": user_id,
            "name": f"user-{user_id}",
            "real_name": f"User {user_id}",
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "profile": {"display_name": f"User {user_id}", "real_name": f"User {user_id}"},
        }
        return {"user": {**default, **self.users.get(user_id, {})}}

    def _m_files_getUploadURLExternal(self, args: JSON) -> JSON:
        file_id = f"F{next(self._ts)}"
        return {"upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: JSON) -> JSON:
        files = args.get("files")
        parsed = json.loads(files) if isinstance(files, str) else files or []
        return {
            "files": [
                {"id": f["id"], "title": f.get("title", ""), "name": f.get("title", "")}
                for f in parsed
            ]
        }

    def _m_files_info(self, args: JSON) -> JSON:
        return {"file": {"id": args.get("file"), "name": "upload"}}

    def _m_assistant_threads_setStatus(self, args: JSON) -> JSON:
        return {}

    def _m_assistant_threads_setSuggestedPrompts(self, args: JSON) -> JSON:
        return {}

    def _m_assistant_threads_setTitle(self, args: JSON) -> JSON:
        return {}

    def _m_apps_connections_open(self, args: JSON) -> JSON:
        return {"url": self.base.replace("http://", "ws://") + "/socket"}

    async def _download(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.Response(status=302, headers={"Location": f"{self.base}/login"})
        mimetype, data = self.files[request.match_info["file_id"]]
        return web.Response(body=data, content_type=mimetype)

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["file_id"]] = await request.read()
        return web.Response(text="OK")

    async def _respond(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        posts = self.response_posts.setdefault(key, [])
        if key in self.response_refusals:
            await self._record(Call("response_url", {"key": key, **(await request.json())}))
            return web.Response(status=self.response_refusals[key], text="expired_url")
        if len(posts) >= 5:
            return web.Response(status=404, text="used_url")
        posts.append(await request.json())
        async with self._changed:
            self._changed.notify_all()
        return web.Response(text="ok")

    async def wait_for_response(
        self, key: str = "r1", count: int = 1, timeout: float = 10
    ) -> list[JSON]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.response_posts.get(key, [])) >= count)
        return self.response_posts[key]

    async def _socket_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._socket = ws
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake"},
                "connection_info": {"app_id": "A1"},
            }
        )
        self.socket_connected.set()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                data = json.loads(message.data)
                future = self._acks.get(data.get("envelope_id", ""))
                if future is not None and not future.done():
                    future.set_result(data)
        self.socket_connected.clear()
        return ws


async def _args(request: web.Request) -> JSON:
    raw = await request.read()
    if request.content_type == "application/json":
        return json.loads(raw or b"{}")
    if request.content_type.startswith("multipart/"):
        return {}
    parsed = urllib.parse.parse_qs(raw.decode(), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()} | dict(request.query)
