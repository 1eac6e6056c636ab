"""A local fake of Slack's Web API (and Socket Mode) that the real slack_sdk / Bolt talk to."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from collections.abc import Callable
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
    token: str = ""  # the bearer token it carried (which workspace's)


@dataclass
class Workspace:
    """A workspace (or an Enterprise Grid organization, org-wide) a token belongs to."""

    team_id: str | None
    bot_user_id: str = "UBOT"
    bot_id: str = "BBOT"
    enterprise_id: str | None = None
    org_wide: bool = False
    installer: str = "UADMIN"

    @property
    def name(self) -> str:
        return f"Team {self.team_id or self.enterprise_id}"


@dataclass
class Grant:
    """What an approved install gives: the workspace, and with rotation an expiring token."""

    workspace: Workspace
    rotation: bool = False
    expires_in: int = 43_200


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
        self.client_id, self.client_secret = "CLIENT1", "client-secret"
        # Every valid bot token and the workspace it serves; revoked ones are refused.
        self.tokens: dict[str, Workspace] = {
            bot_token: Workspace(team_id, bot_user_id=bot_user_id, bot_id=bot_id)
        }
        self.revoked: set[str] = set()
        self.next_install: Grant | str | None = None  # what the authorize page does next
        self._codes: dict[str, Grant] = {}
        self._refresh_tokens: dict[str, Grant] = {}  # each usable once
        self.refreshes = 0
        self.exchanges = 0
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.calls: list[Call] = []
        self.users: dict[str, JSON] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.response_posts: dict[str, list[JSON]] = {}
        self.response_refusals: dict[str, int] = {}  # response_url key -> the status it answers
        self.uploads: dict[str, bytes] = {}
        self.messages: dict[str, JSON] = {}
        self.views: dict[str, JSON] = {}  # views.open by trigger id
        self.homes: dict[str, JSON] = {}  # views.publish by user id
        self.channels: dict[str, JSON] = {}  # conversations.info objects by id
        self.members: dict[str, list[str]] = {}  # conversations.members by channel id
        self.history: dict[str, list[JSON]] = {}  # messages (ts, user, text, thread_ts) by channel
        self.stream_supported = True
        self._failures: dict[str, list[tuple[int, str, float | None]]] = {}
        self._held: dict[str, asyncio.Event] = {}  # methods whose answers wait until released
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._socket: web.WebSocketResponse | None = None
        self.socket_connected = asyncio.Event()
        self._acks: dict[str, asyncio.Future[JSON]] = {}
        self._runner: web.AppRunner | None = None
        self.base = ""
        # Sign in with Slack: the app's OAuth client, who "signs in" at the authorize page, the
        # codes and user tokens issued (OpenID Connect).
        self.signin_user = "U1"
        self.signin_refused = False
        self.signin_team: str | None = None  # the signed-in person's workspace (default: team_id)
        self.authorizations: list[JSON] = []
        self._codes: dict[str, JSON] = {}
        self._user_tokens: dict[str, JSON] = {}

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
        app.router.add_get("/oauth/v2/authorize", self._authorize_page)
        app.router.add_get("/openid/connect/authorize", self._authorize)
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

    def calls_with(self, token: str) -> list[Call]:
        """Every call made with `token` (the request log of one workspace)."""
        return [c for c in self.calls if c.token == token]

    def approve(self, grant: Grant) -> str:
        """A code the redirect would carry after someone approved the install of `grant`."""
        code = f"code-{next(self._ts)}"
        self._codes[code] = grant
        return code

    def token_of(self, team_or_enterprise: str) -> str:
        """The newest live bot token issued for a workspace or organization."""
        found = [
            t
            for t, w in self.tokens.items()
            if team_or_enterprise in (w.team_id, w.enterprise_id) and t not in self.revoked
        ]
        assert found, f"no token for {team_or_enterprise}"
        return found[-1]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """Wait until `method` was called `count` times."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.calls_to(method)) >= count)
        return self.calls_to(method)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until `predicate()` holds, rechecked after every call."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

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

    def hold(self, method: str) -> asyncio.Event:
        """Keep every answer to `method` waiting until the returned event is set."""
        return self._held.setdefault(method, asyncio.Event())

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
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        token = token or str(args.get("token", ""))
        await self._record(Call(method, args, token=token))
        if method.startswith("oauth.v2."):
            return self._oauth(method, args, header, token)
        if method.startswith("openid.connect."):
            return web.json_response(self._openid(method, request, args))
        if method == "apps.connections.open":
            valid = token == self.app_token
        else:
            valid = token in self.tokens and token not in self.revoked
        if not valid:
            error = "token_revoked" if token in self.revoked else "invalid_auth"
            return web.json_response({"ok": False, "error": error})
        if held := self._held.get(method):
            await held.wait()
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
        if method == "auth.test":
            return web.json_response({"ok": True, **self._auth_test(self.tokens[token])})
        result = handler(args)
        if result.get("ok") is False:
            return web.json_response(result)
        return web.json_response({"ok": True, **result})

    # -- OAuth ----------------------------------------------------------------------------

    async def _authorize_page(self, request: web.Request) -> web.Response:
        """Slack's authorize page after the user chose: redirect back with a code (or the
        error `next_install` names), echoing the state."""
        query = request.query
        redirect = query.get("redirect_uri") or self.redirect_uri
        choice, self.next_install = self.next_install, None
        if isinstance(choice, Grant):
            outcome = {"code": self.approve(choice), "state": query.get("state", "")}
        else:
            outcome = {"error": choice or "access_denied", "state": query.get("state", "")}
        return web.Response(
            status=302, headers={"Location": f"{redirect}?{urllib.parse.urlencode(outcome)}"}
        )

    redirect_uri = ""  # where the authorize page sends the browser back (the server's route)

    def _client_ok(self, args: JSON, header: str) -> bool:
        if header.startswith("Basic "):
            pair = base64.b64decode(header.removeprefix("Basic ")).decode()
            client_id, _, secret = pair.partition(":")
        else:
            client_id, secret = str(args.get("client_id", "")), str(args.get("client_secret", ""))
        return (client_id, secret) == (self.client_id, self.client_secret)

    def _oauth(self, method: str, args: JSON, header: str, token: str) -> web.Response:
        if not self._client_ok(args, header):
            return web.json_response({"ok": False, "error": "invalid_client_id"})
        if method == "oauth.v2.exchange":  # the token as an argument or as the Bearer header
            return self._exchange(token)
        if args.get("grant_type") == "refresh_token":
            grant = self._refresh_tokens.pop(str(args.get("refresh_token", "")), None)
            if grant is None:
                return web.json_response({"ok": False, "error": "invalid_refresh_token"})
            self.refreshes += 1
            return web.json_response({"ok": True, **self._issue(grant)})
        grant = self._codes.pop(str(args.get("code", "")), None)
        if grant is None:
            return web.json_response({"ok": False, "error": "invalid_code"})
        return web.json_response({"ok": True, **self._issue(grant)})

    def _exchange(self, token: str) -> web.Response:
        """`oauth.v2.exchange`: a long-lived token for an expiring one and a refresh token."""
        workspace = self.tokens.get(token)
        if workspace is None or token in self.revoked:
            return web.json_response({"ok": False, "error": "invalid_token"})
        self.exchanges += 1
        self.revoked.add(token)
        return web.json_response({"ok": True, **self._issue(Grant(workspace, rotation=True))})

    def _issue(self, grant: Grant) -> JSON:
        workspace = grant.workspace
        token = f"xoxb-{workspace.team_id or workspace.enterprise_id}-{next(self._ts)}"
        self.tokens[token] = workspace
        answer: JSON = {
            "access_token": token,
            "token_type": "bot",
            "scope": "app_mentions:read,chat:write,commands",
            "bot_user_id": workspace.bot_user_id,
            "app_id": "A1",
            "team": {"id": workspace.team_id, "name": workspace.name}
            if workspace.team_id
            else None,
            "enterprise": {"id": workspace.enterprise_id, "name": "Org"}
            if workspace.enterprise_id
            else None,
            "is_enterprise_install": workspace.org_wide,
            "authed_user": {"id": workspace.installer},
        }
        if grant.rotation:
            refresh = f"xoxe-1-{next(self._ts)}"
            self._refresh_tokens[refresh] = grant
            answer |= {"refresh_token": refresh, "expires_in": grant.expires_in}
        return answer

    def _auth_test(self, workspace: Workspace) -> JSON:
        return {
            "url": "https://fake.slack.test/",
            "team": workspace.name,
            "user": "bot",
            "team_id": workspace.team_id,
            "enterprise_id": workspace.enterprise_id,
            "user_id": workspace.bot_user_id,
            "bot_id": workspace.bot_id,
            "is_enterprise_install": workspace.org_wide,
        }

    def _ts_now(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _m_auth_test(self, args: JSON) -> JSON:
        return {}  # answered by `_auth_test` for the token's workspace

    def _m_chat_postMessage(self, args: JSON) -> JSON:
        ts = self._ts_now()
        message = {
            "ts": ts,
            "text": args.get("text", ""),
            "thread_ts": args.get("thread_ts"),
            "channel": args.get("channel"),
            "bot_id": self.bot_id,
        }
        if "blocks" in args:
            message["blocks"] = _blocks(args["blocks"])
        self.messages[ts] = message
        return {"channel": args.get("channel"), "ts": ts, "message": message}

    def _m_chat_update(self, args: JSON) -> JSON:
        ts = args.get("ts", "")
        if ts in self.messages:
            self.messages[ts]["text"] = args.get("text", "")
            if "blocks" in args:
                self.messages[ts]["blocks"] = _blocks(args["blocks"])
        return {"channel": args.get("channel"), "ts": ts, "text": args.get("text", "")}

    def _m_views_open(self, args: JSON) -> JSON:
        view = _blocks(args.get("view"))
        self.views[args.get("trigger_id", "")] = view
        return {"view": {"id": f"V{next(self._ts)}", **view}}

    def _m_views_publish(self, args: JSON) -> JSON:
        view = _blocks(args.get("view"))
        self.homes[args.get("user_id", "")] = view
        return {"view": {"id": f"V{next(self._ts)}", **view}}

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
        if "blocks" in args:
            message["blocks"] = _blocks(args["blocks"])
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
        messages = self.history.get(args["channel"], [])
        top = [
            m
            for m in messages
            if m.get("thread_ts") in (None, m["ts"]) and float(m["ts"]) >= oldest
        ]
        for parent in top:  # thread parents carry their reply count, as Slack's do
            replies = sum(m.get("thread_ts") == parent["ts"] != m["ts"] for m in messages)
            if replies:
                parent["reply_count"] = replies
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

    # -- Sign in with Slack (OpenID Connect) -----------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        """The consent page: `signin_user` agrees at once (or refuses, with `signin_refused`)."""
        query = dict(request.query)
        self.authorizations.append(query)
        target = query.get("redirect_uri", "")
        state = query.get("state", "")
        if self.signin_refused or query.get("client_id") != self.client_id:
            params = {"error": "access_denied", "state": state}
        else:
            code = f"code-{next(self._ts)}"
            self._codes[code] = {
                "user": self.signin_user,
                "nonce": query.get("nonce", ""),
                "redirect_uri": target,
            }
            params = {"code": code, "state": state}
        return web.Response(
            status=302, headers={"Location": f"{target}?{urllib.parse.urlencode(params)}"}
        )

    def _claims(self, user_id: str, nonce: str) -> JSON:
        info = self.users.get(user_id, {})
        return {
            "iss": self.base,
            "sub": user_id,
            "aud": self.client_id,
            "exp": int(time.time()) + 300,
            "iat": int(time.time()),
            "nonce": nonce,
            "https://slack.com/user_id": user_id,
            "https://slack.com/team_id": self.signin_team or self.team_id,
            "name": info.get("real_name", f"User {user_id}"),
        }

    def _openid(self, method: str, request: web.Request, args: JSON) -> JSON:
        if method == "openid.connect.token":
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {expected}":
                return {"ok": False, "error": "invalid_client_id"}
            grant = self._codes.pop(args.get("code", ""), None)
            if grant is None:
                return {"ok": False, "error": "invalid_code"}
            if grant["redirect_uri"] != args.get("redirect_uri"):
                return {"ok": False, "error": "bad_redirect_uri"}
            token = f"xoxp-oidc-{next(self._ts)}"
            claims = self._claims(grant["user"], grant["nonce"])
            self._user_tokens[token] = claims
            return {
                "ok": True,
                "access_token": token,
                "token_type": "Bearer",
                "id_token": _jwt(claims),
            }
        if method == "openid.connect.userInfo":
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
            claims = self._user_tokens.get(bearer)
            if claims is None:
                return {"ok": False, "error": "invalid_auth"}
            keep = ("sub", "https://slack.com/user_id", "https://slack.com/team_id", "name")
            return {"ok": True, **{k: claims[k] for k in keep}}
        return {"ok": False, "error": "unknown_method"}

    async def _download(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens or token in self.revoked:
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


def _blocks(raw: Any) -> Any:
    """Blocks (or a view) as sent: JSON in a form field, or already decoded."""
    return json.loads(raw) if isinstance(raw, str) else raw


def interaction_body(payload: JSON) -> bytes:
    """An interactivity request body as Slack sends it: form-encoded `payload=<json>`."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def block_actions(
    action_id: str,
    *,
    value: str = "",
    user: str = "U1",
    team: str = "T1",
    channel: str = "C1",
    message_ts: str = "",
    thread_ts: str = "",
    trigger_id: str = "trigger-1",
    action_type: str = "button",
) -> JSON:
    """A block_actions payload for one clicked element."""
    action: JSON = {"type": action_type, "action_id": action_id, "block_id": "b", "action_ts": "1"}
    if value:
        action["value"] = value
    container: JSON = {"type": "message", "message_ts": message_ts, "channel_id": channel}
    if thread_ts:
        container["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "ada", "team_id": team},
        "api_app_id": "A1",
        "token": "legacy",
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": team, "domain": "fake"},
        "channel": {"id": channel, "name": "general"},
        "message": {"ts": message_ts, "thread_ts": thread_ts or None, "type": "message"},
        "response_url": "https://hooks.invalid/actions/1",
        "actions": [action],
    }


def view_submission(view: JSON, comment: str, *, user: str = "U1", team: str = "T1") -> JSON:
    """A view_submission payload for a modal opened by the bot, with the comment typed."""
    submitted = dict(view)
    submitted["state"] = {
        "values": {"comment": {"comment": {"type": "plain_text_input", "value": comment}}}
    }
    submitted["id"] = "V1"
    submitted["team_id"] = team
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "fake"},
        "user": {"id": user, "username": "ada", "team_id": team},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": "trigger-2",
        "view": submitted,
    }


def _jwt(claims: JSON) -> str:
    """A JWT of these claims, as Slack's ID tokens look (the signature is not checked)."""

    def part(data: JSON) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT', 'kid': 'fake'})}.{part(claims)}.c2lnbmF0dXJl"


async def _args(request: web.Request) -> JSON:
    raw = await request.read()
    if request.content_type == "application/json":
        return json.loads(raw or b"{}")
    if request.content_type.startswith("multipart/"):
        return {}
    parsed = urllib.parse.parse_qs(raw.decode(), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()} | dict(request.query)
