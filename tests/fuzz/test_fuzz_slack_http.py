"""Fuzzing `POST /slack/events` (events and slash commands) over real HTTP.

One server per module: the Slack adapter, the web app, the fake Slack Web API and the model
simulator all run on an event loop in a background thread, started once; the hypothesis tests are
plain synchronous functions that send requests to it. Every request has a time limit, so a hang
fails the test instead of stalling the run. After every test the server must still answer a
normal app_mention end to end (the reply appears in the fake Slack).

Malformed input must get a 4xx (or a 200 with a clear notice), never a 5xx; an unsigned, forged
or stale request gets a 401 and touches nothing. Interactivity payloads (block_actions,
block_suggestion, view_submission) and assistant_thread_started events with junk values get a 400
when malformed and a 200 otherwise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from slack_bolt.request.async_request import AsyncBoltRequest

from bots.services import Services, build_services
from bots.settings import load_app_settings
from bots.slack.app import SlackAdapter
from bots.web import build_web_app
from simulator import Simulator
from tests.fakes.slack import FakeSlack, sign
from tests.fuzz import fuzz_settings
from tests.slack.rig import mention

SECRET = "fuzz-signing-secret"
REQUEST_TIMEOUT = 20.0  # seconds; longer means the server hangs
REPLY_TIMEOUT = 20.0

# Generated cases per test (max_examples), plus each test's explicit examples.
EXAMPLES: dict[str, int] = {
    "test_signed_arbitrary_bytes": 250,
    "test_signed_malformed_json": 100,
    "test_signed_unhandled_events_with_wrong_types": 150,
    "test_signed_mentions_with_arbitrary_text": 40,
    "test_url_verification_variants": 60,
    "test_oversized_bodies": 4,
    "test_large_bodies_under_the_limit": 2,
    "test_slash_commands_with_arbitrary_text": 120,
    "test_unknown_commands": 60,
    "test_unsigned_forged_and_stale_requests": 150,
    # regressions: the crashes these found are fixed (bots/slack/intake.py)
    "test_json_that_is_not_an_object": 20,
    "test_deeply_nested_json": 5,
    "test_unknown_charset": 10,
    "test_event_that_is_not_an_object": 20,
    "test_handled_events_with_wrong_types": 30,
    "test_slash_commands_missing_fields": 10,
    "test_slash_command_text_mentioning_payload": 10,
    "test_non_numeric_timestamp_header": 10,
    "test_unsigned_bodies_that_crash_the_parser": 20,
    # interactivity and assistant payloads with junk values (bots/slack/intake.py checks them)
    "test_block_actions_with_junk": 120,
    "test_block_suggestion_with_junk": 80,
    "test_view_submission_with_junk": 100,
    "test_assistant_thread_started_with_junk": 100,
}
TOTAL_EXAMPLES = sum(EXAMPLES.values())


def fuzz(test_name: str) -> settings:
    return fuzz_settings(EXAMPLES[test_name])


HANDLED_EVENTS = {"app_mention", "message", "assistant_thread_started"}
IGNORED_EVENTS = {"assistant_thread_context_changed"}
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
OCTETS = "application/octet-stream"  # what aiohttp's client sends when no type is given
_ids = itertools.count(1)


# -- the rig --------------------------------------------------------------------------------


class Server:
    """The whole Slack stack on a private event loop in a background thread."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-slack", daemon=True)
        self.thread.start()
        self.sim: Simulator
        self.slack: FakeSlack
        self.services: Services
        self.adapter: SlackAdapter
        self.runner: web.AppRunner
        self.http: aiohttp.ClientSession
        self.url = ""
        self.commands: dict[str, str] = {}

    def run(self, coro: Any, timeout: float = REQUEST_TIMEOUT) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise AssertionError(f"no answer within {timeout:g} s: the server hangs") from None

    async def start(self) -> None:
        self.sim = Simulator()
        await self.sim.__aenter__()
        self.slack = FakeSlack()
        await self.slack.__aenter__()
        settings = load_app_settings(
            openai_api_key="sk-test-key-0123456789",
            openai_base_url=self.sim.base_url,
            openai_wire_api="chat",
            database_url=f"sqlite:///{self.tmp / 'bot.db'}",
            openai_retry_initial_wait=0.0,
            slack_bot_token=self.slack.bot_token,
            slack_signing_secret=SECRET,
            slack_api_url=self.slack.api_url,
            moderation_enabled=False,
            _env_file=None,
        )
        self.commands = dict(settings.slack.commands)
        self.services = await build_services(settings)
        self.adapter = SlackAdapter(settings.slack, self.services.engine)
        await self.services.engine.attach(self.adapter)
        app = build_web_app(self.services, [self.adapter.install])
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))

    async def stop(self) -> None:
        await self.http.close()
        await self.adapter.drain()
        await self.runner.cleanup()
        await self.services.close()
        await self.adapter.close()
        await self.slack.__aexit__(None, None, None)
        await self.sim.__aexit__(None, None, None)

    def close(self) -> None:
        try:
            if self.url:  # started
                self.run(self.stop(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    # -- requests ---------------------------------------------------------------------------

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        async with self.http.post(f"{self.url}/slack/events", data=body, headers=headers) as r:
            return r.status, await r.text(errors="replace")

    def post(
        self,
        body: bytes,
        content_type: str = JSON,
        *,
        signed: bool = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST a body (signed with the right secret unless told otherwise): (status, text)."""
        sent = dict(sign(SECRET, body)) if signed else {}
        if content_type:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        return self.run(self._post(body, sent))

    def command_form(self, command: str, text: str, **fields: str) -> tuple[bytes, str]:
        """A slash command body as Slack sends it, and the response_url key to watch."""
        key = f"k{next(_ids)}"
        form = {
            "token": "legacy",
            "team_id": "T1",
            "channel_id": "C1",
            "user_id": "U1",
            "user_name": "ada",
            "command": command,
            "text": text,
            "trigger_id": f"tr{next(_ids)}",
            "response_url": self.slack.response_url(key),
            **fields,
        }
        return urllib.parse.urlencode(form).encode(), key

    def response_posts(self, key: str) -> list[dict[str, Any]]:
        return self.run(self.slack.wait_for_response(key, timeout=REPLY_TIMEOUT))

    # -- observations ---------------------------------------------------------------------

    async def _footprint(self) -> tuple[int, int, int]:
        """(model requests, Slack Web API calls, stored messages) once the adapter's background
        commands and the engine are idle."""
        await self.adapter.drain()
        await self.services.engine.drain()
        row = await self.services.store.db.fetchone("SELECT COUNT(*) FROM messages")
        assert row is not None
        return len(self.sim.requests), len(self.slack.calls), int(row[0])

    def footprint(self) -> tuple[int, int, int]:
        return self.run(self._footprint())

    async def _ask(self, text: str) -> str:
        ts = f"{int(time.time())}.{next(_ids):06d}"
        body = json.dumps(event_callback(mention(text, ts))).encode()
        status, answer = await self._post(body, {**sign(SECRET, body), "Content-Type": JSON})
        assert status == 200, (status, answer)
        async with asyncio.timeout(REPLY_TIMEOUT):
            while True:
                for message in list(self.slack.messages.values()):
                    if message.get("thread_ts") == ts and message.get("streaming") is False:
                        return str(message["text"])
                await asyncio.sleep(0.02)

    def assert_still_answers(self) -> None:
        """A normal app_mention is still answered end to end."""
        question = f"are you still there {next(_ids)}?"
        answer = self.run(self._ask(question), timeout=REPLY_TIMEOUT + 5)
        assert answer == f"You said: {question}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    rig = Server(tmp_path_factory.mktemp("fuzz-slack"))
    try:
        rig.run(rig.start(), timeout=60)
        yield rig
    finally:
        rig.close()


@pytest.fixture
def rig(server: Server) -> Iterator[Server]:
    """The module's server; after each test it must still answer a mention."""
    yield server
    server.assert_still_answers()


# -- payload helpers --------------------------------------------------------------------------


def event_callback(event: Any, event_id: str | None = None, **envelope: Any) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": event_id or f"EvFuzz{next(_ids)}",
        "event_time": int(time.time()),
        "event": event,
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
        **envelope,
    }


def parsed_body(body: bytes, content_type: str) -> Any:
    """The body as slack_bolt parses it (None when it cannot)."""
    try:
        return AsyncBoltRequest(
            body=body.decode("utf-8"), headers={"content-type": content_type or OCTETS}
        ).body
    except Exception:
        return None


# -- strategies -------------------------------------------------------------------------------

nasty_text = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("\"'\\\x00\x01\x07\x1b\x7f\n\r\t`*_~<>&|@#/=%+;{}[]")),
        st.sampled_from(["<@UBOT>", "```", "&amp;", "\u202e", "\ufeff", "é", "🦜", "\\n"]),
    ),
    max_size=80,
).map("".join)
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(json_leaves, max_size=3),
    st.dictionaries(st.text(max_size=5), json_leaves, max_size=3),
)
content_types = st.sampled_from([JSON, FORM, "text/plain", "", "application/json; charset=utf-8"])
unhandled_event_types = st.one_of(
    st.sampled_from(
        ["emoji_changed", "reaction_added", "team_join", "app_home_opened", "channel_created"]
    ),
    st.text(max_size=20),
).filter(lambda t: t not in HANDLED_EVENTS | IGNORED_EVENTS)
envelope_fields = st.sampled_from(
    [
        "team_id",
        "api_app_id",
        "event_id",
        "event_time",
        "token",
        "enterprise_id",
        "is_ext_shared_channel",
    ]
)


@st.composite
def arbitrary_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "invalid-utf8", "text", "json-ish"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2048))
    if kind == "invalid-utf8":
        head = draw(st.binary(max_size=64))
        bad = draw(
            st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
        )
        return head + bad + draw(st.binary(max_size=64))
    if kind == "text":
        return draw(nasty_text).encode("utf-8")
    value = json.dumps(draw(json_objects)).encode()
    cut = draw(st.integers(min_value=0, max_value=len(value)))
    return value[:cut] + draw(st.binary(max_size=8)) + value[cut:]


@st.composite
def malformed_json(draw: st.DrawFn) -> bytes:
    """A JSON object's text, truncated or with junk spliced in, that no longer parses."""
    text = json.dumps(draw(json_objects | st.just({"type": "event_callback"})))
    how = draw(st.sampled_from(["truncate", "splice", "trailing"]))
    if how == "truncate":
        text = text[: draw(st.integers(min_value=1, max_value=max(1, len(text) - 1)))]
    elif how == "splice":
        at = draw(st.integers(min_value=1, max_value=len(text)))
        junk = draw(st.sampled_from(["{", "]", ",", ":", '"', "\\", "x", "\x00", "'"]))
        text = text[:at] + junk + text[at:]
    else:
        text += draw(st.sampled_from([",", "}", " x", "{}"]))
    body = text.encode()
    try:
        json.loads(body)
    except ValueError:
        return body
    return body + b"{"


# -- signed requests: never a 5xx ---------------------------------------------------------------


@fuzz("test_signed_arbitrary_bytes")
@given(body=arbitrary_bodies(), content_type=content_types)
def test_signed_arbitrary_bytes(rig: Server, body: bytes, content_type: str) -> None:
    status, text = rig.post(body, content_type)
    assert status < 500, (status, text)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        assert status == 400 and "malformed" in text


@fuzz("test_signed_malformed_json")
@given(body=malformed_json())
def test_signed_malformed_json(rig: Server, body: bytes) -> None:
    status, text = rig.post(body, JSON)
    assert status == 400, (status, text)
    assert "malformed request body" in text


@fuzz("test_signed_unhandled_events_with_wrong_types")
@given(
    event_type=unhandled_event_types,
    fields=st.dictionaries(
        st.sampled_from(
            ["user", "text", "ts", "channel", "thread_ts", "files", "subtype", "bot_id"]
        ),
        wrong_values,
        max_size=5,
    ),
    envelope=st.dictionaries(envelope_fields, wrong_values, max_size=3),
)
def test_signed_unhandled_events_with_wrong_types(
    rig: Server, event_type: str, fields: dict[str, Any], envelope: dict[str, Any]
) -> None:
    body = json.dumps(event_callback({"type": event_type, **fields}, **envelope)).encode()
    status, text = rig.post(body)
    assert status < 500, (status, text)


@fuzz("test_signed_mentions_with_arbitrary_text")
@given(text=nasty_text | st.text(max_size=3000))
def test_signed_mentions_with_arbitrary_text(rig: Server, text: str) -> None:
    ts = f"{int(time.time())}.{next(_ids):06d}"
    status, answer = rig.post(json.dumps(event_callback(mention(text, ts))).encode())
    assert status == 200, (status, answer)


@fuzz("test_url_verification_variants")
@given(
    challenge=st.one_of(nasty_text, json_values),
    extra=st.dictionaries(st.sampled_from(["token", "team_id", "event", "x"]), json_values),
)
def test_url_verification_variants(rig: Server, challenge: Any, extra: dict[str, Any]) -> None:
    body = json.dumps({**extra, "type": "url_verification", "challenge": challenge}).encode()
    status, text = rig.post(body)
    if "event" in extra and not isinstance(extra["event"], dict):
        assert status == 400, (status, text)  # not something Slack sends: refused, not echoed
        return
    assert status == 200, (status, text)
    assert json.loads(text) == {"challenge": challenge}


@fuzz("test_oversized_bodies")
@given(size=st.integers(min_value=2 * 1024 * 1024 + 1, max_value=5 * 1024 * 1024))
def test_oversized_bodies(rig: Server, size: int) -> None:
    body = b'{"type": "event_callback", "pad": "' + b"x" * size + b'"}'
    status, text = rig.post(body)
    assert status == 413, (status, text[:200])


@fuzz("test_large_bodies_under_the_limit")
@given(size=st.integers(min_value=1024 * 1024, max_value=2 * 1024 * 1024 - 4096))
def test_large_bodies_under_the_limit(rig: Server, size: int) -> None:
    event = {"type": "emoji_changed", "subtype": "add", "name": "x" * size}
    status, text = rig.post(json.dumps(event_callback(event)).encode())
    assert status in (200, 404), (status, text[:200])


# -- slash commands ---------------------------------------------------------------------------

tool_like_text = st.lists(
    st.one_of(
        st.sampled_from(
            ["calculate", "now", "date_add", "date_diff", "nope", "expression=", "date=", "days="]
        ),
        st.sampled_from(['"', "'", "\\", '\\"', "\x00", "\x1b", "=", " ", "2*3", "2026-01-01"]),
        nasty_text,
    ),
    max_size=6,
).map("".join)


@fuzz("test_slash_commands_with_arbitrary_text")
@given(
    command=st.sampled_from(["/tool", "/config", "/model", "/memory", "/usage", "/reset", "/ask"]),
    text=nasty_text | tool_like_text,
    user_id=st.sampled_from(["U1", "U2", "W123"]),
)
def test_slash_commands_with_arbitrary_text(
    rig: Server, command: str, text: str, user_id: str
) -> None:
    body, key = rig.command_form(command, text, user_id=user_id)
    status, answer = rig.post(body, FORM)
    assert status == 200, (status, answer)
    if command == "/ask" and text.strip():
        return  # the question is posted in the channel and answered in its thread
    posts = rig.response_posts(key)
    assert posts and str(posts[0].get("text", "")).strip(), posts


@fuzz("test_unknown_commands")
@given(name=st.text(min_size=1, max_size=20), text=nasty_text)
def test_unknown_commands(rig: Server, name: str, text: str) -> None:
    command = name if name.startswith("/") else "/" + name
    assume(command not in rig.commands)
    body, _ = rig.command_form(command, text)
    status, answer = rig.post(body, FORM)
    assert 400 <= status < 500, (status, answer)


# -- unsigned, forged and stale requests: 401 and nothing reaches the engine ----------------------


@st.composite
def bad_signatures(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    now = int(time.time())
    kind = draw(st.sampled_from(["none", "wrong-secret", "stale", "future", "garbage", "partial"]))
    if kind == "none":
        return {}
    if kind == "wrong-secret":
        return sign(draw(st.text(min_size=1, max_size=30).filter(lambda s: s != SECRET)), body)
    if kind == "stale":
        return sign(SECRET, body, timestamp=now - draw(st.integers(min_value=301, max_value=10**8)))
    if kind == "future":
        return sign(SECRET, body, timestamp=now + draw(st.integers(min_value=301, max_value=10**8)))
    if kind == "garbage":
        return {
            "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": draw(
                st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=80)
            ),
        }
    headers = sign(SECRET, body)
    headers.pop(draw(st.sampled_from(sorted(headers))))
    return headers


@st.composite
def unsigned_requests(draw: st.DrawFn) -> tuple[bytes, str, dict[str, str]]:
    kind = draw(st.sampled_from(["mention", "command", "arbitrary"]))
    if kind == "mention":
        ts = f"{draw(st.integers(min_value=1, max_value=2**31))}.000001"
        body = json.dumps(event_callback(mention(draw(nasty_text), ts), "EvForged")).encode()
        content_type = JSON
    elif kind == "command":
        body = urllib.parse.urlencode(
            {"command": "/ask", "text": draw(nasty_text), "user_id": "U1", "channel_id": "C1"}
        ).encode()
        content_type = FORM
    else:
        body = draw(arbitrary_bodies())
        content_type = draw(content_types)
    return body, content_type, draw(bad_signatures(body))


@fuzz("test_unsigned_forged_and_stale_requests")
@given(request=unsigned_requests())
def test_unsigned_forged_and_stale_requests(
    rig: Server, request: tuple[bytes, str, dict[str, str]]
) -> None:
    body, content_type, headers = request
    before = rig.footprint()
    status, text = rig.post(body, content_type, signed=False, headers=headers)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        assert status == 400, (status, text)  # Slack never sends one; not worth a signature check
    else:
        assert status == 401, (status, text)
    assert rig.footprint() == before, "an unauthenticated request reached the engine or Slack"


# -- regressions: crashes these found, now fixed in bots/slack/intake.py ---------------------


@fuzz("test_json_that_is_not_an_object")
@example(body=b"[1, 2]", content_type=JSON)
@example(body=b"null", content_type=JSON)
@example(body=b'{"authorizations": 5}', content_type=JSON)
@example(body=b'{"type": "event_callback", "event": null}', content_type=JSON)
@example(body=b"payload=%5B1%5D", content_type=FORM)
@given(
    body=st.one_of(
        json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
        st.builds(
            lambda key, value: json.dumps({key: value}).encode(),
            st.sampled_from(["authorizations", "team", "enterprise", "event", "user", "view"]),
            st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), min_size=1)),
        ),
    ),
    content_type=st.just(JSON),
)
def test_json_that_is_not_an_object(rig: Server, body: bytes, content_type: str) -> None:
    status, text = rig.post(body, content_type)
    assert status < 500, (status, text)


def _nested(depth: int, kind: str, closed: bool) -> bytes:
    opener, closer = ("[", "]") if kind == "array" else ('{"a":', "}")
    return (
        opener * depth + ("1" if kind == "object" else "") + (closer * depth if closed else "")
    ).encode()


@fuzz("test_deeply_nested_json")
@example(body=_nested(1000, "array", True), signed=True)
@example(body=_nested(5000, "object", False), signed=False)
@given(
    body=st.builds(
        _nested,
        st.integers(min_value=1000, max_value=50_000),
        st.sampled_from(["array", "object"]),
        st.booleans(),
    ),
    signed=st.booleans(),
)
def test_deeply_nested_json(rig: Server, body: bytes, signed: bool) -> None:
    status, text = rig.post(body, JSON, signed=signed)
    assert status < 500, (status, text)


@fuzz("test_unknown_charset")
@example(charset="foo")
@given(charset=st.sampled_from(["foo", "utf-99", "rot13", "hex", "base64", "x-unknown", "zzz"]))
def test_unknown_charset(rig: Server, charset: str) -> None:
    status, text = rig.post(b'{"type": "event_callback"}', f"{JSON}; charset={charset}")
    assert status < 500, (status, text)


@fuzz("test_event_that_is_not_an_object")
@example(envelope_type="url_verification", event=None)
@example(envelope_type="block_actions", event=[1])
@given(
    envelope_type=st.sampled_from(["url_verification", "block_actions", "app_rate_limited", "x"]),
    event=wrong_values.filter(lambda v: not isinstance(v, dict)),
)
def test_event_that_is_not_an_object(rig: Server, envelope_type: str, event: Any) -> None:
    body = json.dumps({"type": envelope_type, "challenge": "c", "event": event}).encode()
    status, text = rig.post(body)
    assert status < 500, (status, text)


@fuzz("test_handled_events_with_wrong_types")
@example(event_type="app_mention", field="channel", value=None)
@example(event_type="app_mention", field="text", value=5)
@example(event_type="app_mention", field="files", value=[5])
@example(event_type="app_mention", field="user", value=["U1"])
@example(event_type="message", field="subtype", value=[])
@given(
    event_type=st.sampled_from(["app_mention", "message"]),
    field=st.sampled_from(["user", "text", "ts", "channel", "thread_ts", "files", "subtype"]),
    value=wrong_values,
)
def test_handled_events_with_wrong_types(
    rig: Server, event_type: str, field: str, value: Any
) -> None:
    ts = f"{int(time.time())}.{next(_ids):06d}"
    event = mention("hello", ts)
    event["type"] = event_type
    if event_type == "message":
        event.update(channel="D1", channel_type="im", text="hello")
    if value is None and field == "channel":
        del event["channel"]
    else:
        event[field] = value
    status, text = rig.post(json.dumps(event_callback(event)).encode())
    assert status < 500, (status, text)


@fuzz("test_slash_commands_missing_fields")
@example(missing="user_id", command="/usage")
@example(missing="channel_id", command="/usage")
@given(
    missing=st.sampled_from(["user_id", "channel_id"]),
    command=st.sampled_from(["/tool", "/usage", "/reset", "/ask"]),
)
def test_slash_commands_missing_fields(rig: Server, missing: str, command: str) -> None:
    body, _ = rig.command_form(command, "hello")
    form = dict(urllib.parse.parse_qsl(body.decode()))
    del form[missing]
    status, text = rig.post(urllib.parse.urlencode(form).encode(), FORM)
    assert status < 500, (status, text)


@fuzz("test_slash_command_text_mentioning_payload")
@example(command="/usage", text="what is a payload?")
@given(
    command=st.sampled_from(["/usage", "/tool", "/memory"]),
    text=st.builds(lambda a, b: f"{a}payload{b}", nasty_text, nasty_text),
)
def test_slash_command_text_mentioning_payload(rig: Server, command: str, text: str) -> None:
    body, key = rig.command_form(command, text)
    status, answer = rig.post(body, FORM)
    assert status == 200, (status, answer)
    assert rig.response_posts(key)


@fuzz("test_non_numeric_timestamp_header")
@example(timestamp="abc")
@example(timestamp="")
@given(
    timestamp=st.one_of(
        st.text(max_size=20).filter(lambda s: not s.strip().lstrip("+-").isdigit()),
        st.just("9" * 5000),
    )
)
def test_non_numeric_timestamp_header(rig: Server, timestamp: str) -> None:
    assume(all(32 <= ord(c) < 127 for c in timestamp))  # a valid header value
    body = json.dumps(event_callback(mention("sneaky", "1.000001"))).encode()
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=" + "0" * 64}
    before = rig.footprint()
    status, text = rig.post(body, signed=False, headers=headers)
    assert rig.footprint() == before
    assert status == 401, (status, text)


@fuzz("test_unsigned_bodies_that_crash_the_parser")
@example(body=b"[1]")
@example(body=b'{"team": 5}')
@given(
    body=json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode())
)
def test_unsigned_bodies_that_crash_the_parser(rig: Server, body: bytes) -> None:
    before = rig.footprint()
    status, text = rig.post(body, JSON, signed=False)
    assert rig.footprint() == before
    assert status == 401, (status, text)


# -- interactivity and assistant payloads with junk values ------------------------------------

junk_ids = st.one_of(st.text(max_size=12), wrong_values)
junk_objects = st.one_of(wrong_values, json_objects)
interaction_envelope = st.fixed_dictionaries(
    {},
    optional={
        "user": st.one_of(wrong_values, st.fixed_dictionaries({"id": junk_ids})),
        "team": st.one_of(wrong_values, st.fixed_dictionaries({"id": junk_ids})),
        "enterprise": wrong_values,
        "is_enterprise_install": wrong_values,
        "api_app_id": junk_ids,
        "token": junk_ids,
        "trigger_id": junk_ids,
        "response_url": junk_ids,
        "response_urls": st.one_of(
            wrong_values,
            st.lists(
                st.one_of(wrong_values, st.fixed_dictionaries({"response_url": junk_ids})),
                max_size=3,
            ),
        ),
        "container": junk_objects,
        "channel": st.one_of(wrong_values, st.fixed_dictionaries({"id": junk_ids})),
        "message": junk_objects,
        "state": junk_objects,
        "authorizations": st.one_of(wrong_values, st.lists(junk_objects, max_size=2)),
    },
)
junk_actions = st.one_of(
    wrong_values,
    st.lists(
        st.one_of(
            wrong_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "action_id": junk_ids,
                    "block_id": junk_ids,
                    "type": junk_ids,
                    "value": junk_ids,
                    "action_ts": junk_ids,
                    "selected_option": junk_objects,
                },
            ),
        ),
        max_size=3,
    ),
)
junk_views = st.one_of(
    wrong_values,
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(junk_ids, st.sampled_from(["modal", "home", "workflow_step"])),
            "callback_id": junk_ids,
            "id": junk_ids,
            "team_id": junk_ids,
            "app_installed_team_id": junk_ids,
            "private_metadata": junk_ids,
            "state": st.one_of(wrong_values, st.fixed_dictionaries({"values": junk_objects})),
        },
    ),
)
junk_assistant_threads = st.one_of(
    wrong_values,
    st.fixed_dictionaries(
        {},
        optional={
            "channel_id": junk_ids,
            "thread_ts": junk_ids,
            "user_id": junk_ids,
            "context": junk_objects,
        },
    ),
)
encodings = st.sampled_from(["form", "json"])


def _post_interaction(rig: Server, payload: dict[str, Any], encoding: str) -> tuple[int, str]:
    """Send an interactivity payload as Slack does (form `payload=<json>`), or as a JSON body."""
    if encoding == "form":
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return rig.post(body, FORM)
    return rig.post(json.dumps(payload).encode(), JSON)


@fuzz("test_block_actions_with_junk")
@example(envelope={}, actions="junk", encoding="form")
@example(envelope={}, actions=[1, 2], encoding="form")
@example(envelope={}, actions=[{"action_id": 5}], encoding="form")
@example(envelope={"response_urls": [5]}, actions=[{"action_id": "a"}], encoding="form")
@example(envelope={"user": {"id": "U1"}}, actions=[{"action_id": "a"}], encoding="form")
@given(envelope=interaction_envelope, actions=junk_actions | st.just(None), encoding=encodings)
def test_block_actions_with_junk(
    rig: Server, envelope: dict[str, Any], actions: Any, encoding: str
) -> None:
    payload = {**envelope, "type": "block_actions"}
    if actions is not None:
        payload["actions"] = actions
    status, text = _post_interaction(rig, payload, encoding)
    assert status in (200, 400), (status, text)


@fuzz("test_block_suggestion_with_junk")
@example(envelope={}, fields={"action_id": 5, "value": "x"}, encoding="form")
@example(envelope={}, fields={"action_id": "a", "value": "ab"}, encoding="form")
@given(
    envelope=interaction_envelope,
    fields=st.fixed_dictionaries(
        {}, optional={"action_id": junk_ids, "block_id": junk_ids, "value": junk_ids}
    ),
    encoding=encodings,
)
def test_block_suggestion_with_junk(
    rig: Server, envelope: dict[str, Any], fields: dict[str, Any], encoding: str
) -> None:
    payload = {**envelope, **fields, "type": "block_suggestion"}
    status, text = _post_interaction(rig, payload, encoding)
    assert status in (200, 400), (status, text)
    if status == 200 and isinstance(fields.get("action_id"), str):
        assert json.loads(text) == {"options": []}


@fuzz("test_view_submission_with_junk")
@example(envelope={}, kind="view_submission", view={"callback_id": "cb"}, encoding="form")
@example(envelope={}, kind="view_submission", view="junk", encoding="form")
@example(
    envelope={},
    kind="view_submission",
    view={"type": "workflow_step", "callback_id": "c"},
    encoding="form",
)
@example(envelope={}, kind="view_closed", view={"type": "modal", "callback_id": 5}, encoding="json")
@given(
    envelope=interaction_envelope,
    kind=st.sampled_from(["view_submission", "view_closed"]),
    view=junk_views | st.just(None),
    encoding=encodings,
)
def test_view_submission_with_junk(
    rig: Server, envelope: dict[str, Any], kind: str, view: Any, encoding: str
) -> None:
    payload = {**envelope, "type": kind}
    if view is not None:
        payload["view"] = view
    status, text = _post_interaction(rig, payload, encoding)
    assert status in (200, 400), (status, text)


@fuzz("test_assistant_thread_started_with_junk")
@example(thread="junk", kind="assistant_thread_started")
@example(thread=["a"], kind="assistant_thread_started")
@example(thread={"channel_id": "D1"}, kind="assistant_thread_started")
@example(thread={"channel_id": 5, "thread_ts": []}, kind="assistant_thread_context_changed")
@example(thread="junk", kind="message")
@given(
    thread=junk_assistant_threads | st.just(None),
    kind=st.sampled_from(
        ["assistant_thread_started", "assistant_thread_context_changed", "message"]
    ),
)
def test_assistant_thread_started_with_junk(rig: Server, thread: Any, kind: str) -> None:
    event: dict[str, Any] = {"type": kind, "event_ts": f"{int(time.time())}.{next(_ids):06d}"}
    if kind == "message":  # a DM in an assistant thread that carries an assistant_thread
        event.update(
            user="U1",
            text="hi",
            ts=event["event_ts"],
            channel="D1",
            channel_type="im",
            thread_ts="1.000001",
        )
    if thread is not None:
        event["assistant_thread"] = thread
    status, text = rig.post(json.dumps(event_callback(event)).encode())
    assert status in (200, 400), (status, text)
