"""Fuzzing the pure functions: Slack and Discord converters, split_message, the slash parser.

A converter may return a value (or None where it says so) or raise an exception its docstring
names; anything else on a malformed payload is a bug when the HTTP layer does not guard it.
"""

from __future__ import annotations

import re
import string
import sys
import time
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from bots.discord import convert as discord_convert
from bots.settings import load_app_settings
from bots.slack import convert as slack_convert
from bots.slack.intake import problem
from core.commands import split_command
from core.events import Attachment, ConversationKey, Event, Platform, User
from core.plugin import tool
from core.render.text import MIN_LIMIT, split_message
from core.tools import ToolRegistry, discover
from core.tools.registry import Tool
from core.tools.slash import UsageError, parse_slash, slash_arguments, suggest
from core.unicode import clean_text
from tests.fuzz import fuzz_settings

# Generated cases per test (max_examples), plus each test's explicit examples.
EXAMPLES: dict[str, int] = {
    "test_slack_to_event_on_slack_shaped_payloads": 200,
    "test_slack_text_helpers": 200,
    "test_slack_user_from_info_on_slack_shaped_objects": 100,
    "test_slack_is_dm_and_command_name_on_arbitrary_values": 100,
    "test_discord_keys": 100,
    "test_discord_strip_mention": 100,
    "test_discord_thread_name": 200,
    "test_discord_attachment_user_and_admin": 100,
    "test_discord_message_event": 100,
    "test_split_message_invariants": 300,
    "test_split_message_rejects_tiny_limits": 20,
    "test_parse_slash": 300,
    "test_slash_arguments_for_every_tool": 300,
    "test_suggest": 50,
    # regressions of bugs found and fixed
    "test_slack_to_event_on_whatever_the_intake_lets_through": 300,
    "test_slack_attachments_on_whatever_the_intake_lets_through": 200,
    "test_slack_user_from_info_on_arbitrary_objects": 100,
    "test_slash_arguments_with_deeply_nested_json": 10,
    "test_split_message_never_cuts_before_a_mid_line_fence_run": 100,
    "test_conversation_key_round_trip": 100,
}
TOTAL_EXAMPLES = sum(EXAMPLES.values())


def fuzz(test_name: str) -> settings:
    return fuzz_settings(EXAMPLES[test_name])


def explain(exc: Exception) -> AssertionError:
    """An unexpected exception as a test failure that names it."""
    return AssertionError(f"raised {type(exc).__name__}: {exc}")


BOT = "UBOT"
SLACK_COMMANDS = load_app_settings(_env_file=None).slack.commands

# -- strategies -------------------------------------------------------------------------------

nasty_text = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("\"'\\\x00\x01\x07\x1b\x7f\n\r\t `*_~<>&|@!#/=%+;{}[]")),
        st.sampled_from(["<@UBOT>", "<@UBOT|bot>", "<@!42>", "<@42>", "```", "é", "🦜", "\u2028"]),
    ),
    max_size=60,
).map("".join)
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
slack_ts = st.builds(
    lambda seconds, micro: f"{seconds}.{micro:06d}",
    st.integers(min_value=0, max_value=4_000_000_000),
    st.integers(min_value=0, max_value=999_999),
)
ids = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=12)


@st.composite
def slack_files(draw: st.DrawFn) -> dict[str, Any]:
    file: dict[str, Any] = {"id": draw(ids)}
    for name in ("name", "title", "mimetype", "url_private", "url_private_download"):
        if draw(st.booleans()):
            file[name] = draw(st.none() | nasty_text)
    if draw(st.booleans()):
        file["size"] = draw(st.none() | st.integers(min_value=0, max_value=2**40))
    if draw(st.booleans()):
        file["mode"] = draw(st.sampled_from(["hosted", "external", "tombstone", "snippet"]))
    return file


@st.composite
def slack_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(body, event) shaped like what Slack sends: strings where Slack sends strings."""
    event: dict[str, Any] = {
        "type": draw(st.sampled_from(["app_mention", "message"])),
        "user": draw(ids),
        "text": draw(nasty_text),
        "ts": draw(slack_ts),
        "channel": draw(st.builds(lambda p, i: p + i, st.sampled_from("CDG"), ids)),
    }
    if draw(st.booleans()):
        event["thread_ts"] = draw(slack_ts)
    if draw(st.booleans()):
        event["channel_type"] = draw(st.sampled_from(["im", "channel", "group", "mpim"]))
    if draw(st.booleans()):
        event["team"] = draw(ids)
    if draw(st.booleans()):
        event["files"] = draw(st.lists(slack_files(), max_size=3))
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["team_id"] = draw(ids)
    if draw(st.booleans()):
        body["event_id"] = draw(st.builds(lambda i: "Ev" + i, ids))
    if draw(st.booleans()):
        body["event_time"] = draw(st.integers(min_value=0, max_value=4_000_000_000))
    return body, event


# -- Slack converters -------------------------------------------------------------------------


@fuzz("test_slack_to_event_on_slack_shaped_payloads")
@given(payload=slack_payloads(), addressed=st.booleans())
def test_slack_to_event_on_slack_shaped_payloads(
    payload: tuple[dict[str, Any], dict[str, Any]], addressed: bool
) -> None:
    body, event = payload
    ours = slack_convert.to_event(
        body, event, User(event["user"]), bot_user_id=BOT, addressed=addressed
    )
    target = slack_convert.target_of(body, event)
    assert isinstance(ours, Event) and ours.key.platform == Platform.SLACK
    assert ours.key.channel == event["channel"] == target.channel
    dm = slack_convert.is_dm(event)
    if not dm:
        assert target.thread_ts == event.get("thread_ts") or event["ts"]
    assert ours.key.thread == (target.thread_ts or slack_convert.MAIN_THREAD)
    assert ours.delivery_id == (body.get("event_id") or f"{event['channel']}:{event['ts']}")
    assert ours.addressed is addressed and isinstance(ours.received_at, datetime)
    assert ours.text == ours.text.strip()
    if "<@" not in event["text"]:
        assert ours.text == clean_text(event["text"].strip())
    kept = [f for f in event.get("files") or [] if f.get("mode") != "tombstone"]
    assert len(ours.attachments) == len(kept)
    for attachment in ours.attachments:
        assert isinstance(attachment, Attachment) and attachment.size >= 0
        assert attachment.kind in {"image", "audio", "video", "file"}


@fuzz("test_slack_text_helpers")
@given(text=nasty_text, bot=ids | nasty_text)
def test_slack_text_helpers(text: str, bot: str) -> None:
    stripped = slack_convert.strip_mention(text, bot)
    assert isinstance(stripped, str) and stripped == stripped.strip()
    assert slack_convert.mentions(f"{text}<@{bot}>{text}", bot)
    if bot and f"<@{bot}" not in text:
        assert stripped == text.strip() and not slack_convert.mentions(text, bot)
    command = split_command(text)
    if command is not None:
        name, rest = command
        assert re.fullmatch(r"\w[\w-]*", name) and isinstance(rest, str)
        assert text.strip().startswith("/" + name)
    else:
        assert not re.match(r"/\w", text.strip())


@st.composite
def slack_user_infos(draw: st.DrawFn) -> dict[str, Any]:
    info: dict[str, Any] = {"id": draw(ids)}
    for flag in ("is_bot", "is_admin", "is_owner"):
        if draw(st.booleans()):
            info[flag] = draw(st.booleans())
    if draw(st.booleans()):
        info["name"] = draw(st.none() | nasty_text)
    if draw(st.booleans()):
        info["profile"] = draw(
            st.none()
            | st.fixed_dictionaries(
                {}, optional={"display_name": st.none() | nasty_text, "real_name": nasty_text}
            )
        )
    return info


@fuzz("test_slack_user_from_info_on_slack_shaped_objects")
@given(info=slack_user_infos())
def test_slack_user_from_info_on_slack_shaped_objects(info: dict[str, Any]) -> None:
    user = slack_convert.user_from_info(info, info["id"])
    assert user.id == info["id"] and isinstance(user.name, str) and user.name
    assert user.is_bot is bool(info.get("is_bot"))
    assert user.is_admin is bool(info.get("is_admin") or info.get("is_owner"))


@fuzz("test_slack_is_dm_and_command_name_on_arbitrary_values")
@given(
    event=st.dictionaries(st.sampled_from(["channel", "channel_type", "x"]), json_values),
    command=nasty_text,
)
def test_slack_is_dm_and_command_name_on_arbitrary_values(
    event: dict[str, Any], command: str
) -> None:
    assert isinstance(slack_convert.is_dm(event), bool)
    result = slack_convert.command_name(command, SLACK_COMMANDS)
    assert result is None or result in SLACK_COMMANDS.values()


# -- Discord converters -----------------------------------------------------------------------

snowflakes = st.integers(min_value=0, max_value=2**64 - 1)


@fuzz("test_discord_keys")
@given(guild=st.none() | snowflakes, channel=snowflakes, thread=st.none() | snowflakes)
def test_discord_keys(guild: int | None, channel: int, thread: int | None) -> None:
    key = discord_convert.key_for(guild, channel, thread)
    assert key.platform == Platform.DISCORD
    if guild is None:
        assert (key.workspace, key.channel, key.thread) == ("dm", str(channel), "main")
    elif thread is not None:
        assert (key.workspace, key.channel, key.thread) == (str(guild), str(thread), str(thread))
    else:
        assert (key.workspace, key.channel, key.thread) == (str(guild), str(channel), "main")
    assert ConversationKey.parse(str(key)) == key


@fuzz("test_discord_strip_mention")
@given(text=nasty_text, bot=st.integers())
def test_discord_strip_mention(text: str, bot: int) -> None:
    stripped = discord_convert.strip_mention(f"<@{bot}> {text}", bot)
    assert stripped == stripped.strip()
    if "<@" not in text:
        assert stripped == text.strip()
        assert discord_convert.strip_mention(f"<@!{bot}>{text}", bot) == text.strip()


@fuzz("test_discord_thread_name")
@given(text=nasty_text | st.text(max_size=400), limit=st.none() | st.integers(12, 100))
def test_discord_thread_name(text: str, limit: int | None) -> None:
    name = (
        discord_convert.thread_name(text)
        if limit is None
        else discord_convert.thread_name(text, limit)
    )
    assert 1 <= len(name) <= (90 if limit is None else limit)  # Discord: 1 to 100 characters
    words = " ".join(text.split())
    if not words:
        assert name == "Conversation"
    else:
        assert name == words or (name.endswith("…") and words.startswith(name[:-1]))


@fuzz("test_discord_attachment_user_and_admin")
@given(
    filename=nasty_text,
    content_type=st.none() | nasty_text | st.sampled_from(["image/png", "audio/ogg; codecs=opus"]),
    size=st.integers(min_value=0, max_value=2**40),
    url=nasty_text,
    voice=st.booleans(),
    user_id=snowflakes,
    flags=st.none() | st.tuples(json_values, json_values),
)
def test_discord_attachment_user_and_admin(
    filename: str,
    content_type: str | None,
    size: int,
    url: str,
    voice: bool,
    user_id: int,
    flags: tuple[Any, Any] | None,
) -> None:
    attachment = discord_convert.attachment(filename, content_type, size, url, voice=voice)
    default = "audio/ogg" if voice else "application/octet-stream"
    assert attachment.mime_type == (content_type or default).split(";")[0]
    assert attachment.kind in {"image", "audio", "video", "file"}
    assert discord_convert.user(user_id, filename, bot=voice, admin=False).id == str(user_id)
    permissions = (
        None if flags is None else SimpleNamespace(administrator=flags[0], manage_guild=flags[1])
    )
    author = SimpleNamespace(guild_permissions=permissions)
    assert isinstance(discord_convert.is_admin(author), bool)  # type: ignore[arg-type]
    assert discord_convert.is_admin(SimpleNamespace()) is False  # type: ignore[arg-type]


@st.composite
def discord_messages(draw: st.DrawFn) -> SimpleNamespace:
    attachments = [
        SimpleNamespace(
            filename=draw(nasty_text),
            content_type=draw(st.none() | nasty_text),
            size=draw(st.integers(min_value=0, max_value=2**40)),
            url=draw(nasty_text),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    author = SimpleNamespace(
        id=draw(snowflakes),
        display_name=draw(nasty_text),
        bot=draw(st.booleans()),
        guild_permissions=draw(
            st.none()
            | st.builds(SimpleNamespace, administrator=st.booleans(), manage_guild=st.booleans())
        ),
    )
    return SimpleNamespace(
        id=draw(snowflakes),
        author=author,
        attachments=attachments,
        flags=SimpleNamespace(voice=draw(st.booleans())),
    )


@fuzz("test_discord_message_event")
@given(message=discord_messages(), text=nasty_text)
def test_discord_message_event(message: SimpleNamespace, text: str) -> None:
    key = discord_convert.key_for(1, 2, None)
    event = discord_convert.message_event(message, key, text)  # type: ignore[arg-type]
    assert event.key == key and event.text == clean_text(text)
    assert event.delivery_id == str(message.id)
    assert event.user.id == str(message.author.id) and event.addressed
    assert len(event.attachments) == len(message.attachments)


# -- split_message ----------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_REOPEN = re.compile(r"(`{3,}|~{3,})[^\s`]*")
_CLOSER = re.compile(r"`{3,}|~{3,}")
_RUN = re.compile(r"`{3,}|~{3,}")


def open_fence(text: str) -> str | None:
    """The marker of the code block left open at the end of `text` (core/render/text.py's rules)."""
    marker: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if match is None:
            continue
        fence, rest = match.groups()
        if fence[0] == "`" and "`" in rest:
            continue  # ```inline``` code, not a fence
        if marker is None:
            marker = fence
        else:
            bare = line.strip()
            indent = len(line) - len(line.lstrip(" "))
            if indent <= 3 and bare == marker[0] * len(bare) and len(bare) >= len(marker):
                marker = None
    return marker


def fence_markers(text: str) -> list[str]:
    return [m.group(1) for line in text.split("\n") if (m := _FENCE.match(line))]


def content_preserved(text: str, chunks: list[str]) -> bool:
    """Every chunk, less a reopening fence line at its start and a closing fence line at its end
    (both added by the splitter), is the next piece of `text`; only whitespace lies between."""

    @cache
    def fits(i: int, pos: int) -> bool:
        if i == len(chunks):
            return not text[pos:].strip()
        lines = chunks[i].split("\n")
        heads = [0, 1] if i > 0 and len(lines) > 1 and _REOPEN.fullmatch(lines[0]) else [0]
        tails = [0, 1] if len(lines) > 1 and _CLOSER.fullmatch(lines[-1]) else [0]
        visible = pos
        while visible < len(text) and text[visible].isspace():
            visible += 1
        for head in heads:
            for tail in tails:
                core = "\n".join(lines[head : len(lines) - tail])
                if not core.strip():
                    continue
                for start in range(pos, visible + 1):
                    if text.startswith(core, start) and fits(i + 1, start + len(core)):
                        return True
        return False

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(chunks) + 200))
    try:
        return fits(0, 0)
    finally:
        sys.setrecursionlimit(limit)


fragments = st.one_of(
    st.sampled_from(
        [
            "a",
            "word",
            " ",
            "  ",
            "\t",
            "\n",
            "\n\n",
            ". ",
            "! ",
            "?",
            "…",
            "`",
            "`code`",
            "<https://x.test/a>",
            "<",
            ">",
            "\r",
            "\n```\n",
            "\n```python\n",
            "\n~~~\n",
            "\n````\n",
            "\n   ```js\n",
            "\n```\n\n",
            "```inline```",
            "x" * 40,
            "    indented\n",
        ]
    ),
    st.characters(codec="utf-8"),
    st.text(max_size=30),
)
texts = st.lists(fragments, min_size=1, max_size=300).map("".join)
long_texts = st.lists(fragments, min_size=30, max_size=300).map("".join)


@fuzz("test_split_message_invariants")
@given(
    text=st.one_of(texts, long_texts),
    limit=st.one_of(
        st.integers(MIN_LIMIT, 60), st.integers(61, 400), st.sampled_from([2000, 4000])
    ),
)
def test_split_message_invariants(text: str, limit: int) -> None:
    started = time.perf_counter()
    chunks = split_message(text, limit)
    assert time.perf_counter() - started < 10, "split_message took more than 10 s"
    assert all(0 < len(chunk) <= limit for chunk in chunks)
    assert all(chunk.strip() for chunk in chunks)
    assert bool(chunks) == bool(text.strip())
    assert content_preserved(text, chunks), chunks
    repairable = all(2 * (len(marker) + 1) <= limit // 2 for marker in fence_markers(text))
    if repairable:
        for chunk in chunks[:-1]:
            assert open_fence(chunk) is None, ("a code block left open", chunk)
        if chunks:
            assert (open_fence(chunks[-1]) is None) == (open_fence(text) is None), chunks[-1]


@fuzz("test_split_message_rejects_tiny_limits")
@given(text=texts, limit=st.integers(max_value=MIN_LIMIT - 1))
def test_split_message_rejects_tiny_limits(text: str, limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be at least"):
        split_message(text, limit)


# -- the slash-argument parser ----------------------------------------------------------------


class Point(BaseModel):
    x: int
    y: int


@tool
def plot(points: list[int], origin: Point, label: str = "") -> str:
    """Plot points (a test tool with array and object parameters).

    Args:
        points: the values
        origin: where the axes cross
        label: a caption
    """
    return label


REGISTRY = discover(ToolRegistry())
TEST_TOOLS = ToolRegistry()
TEST_TOOLS.add(plot, plugin="tests.fuzz")
ALL_TOOLS: list[Tool] = [*REGISTRY, *TEST_TOOLS]

slash_words = st.one_of(
    st.sampled_from(
        [
            "calculate",
            "now",
            "date_add",
            "expression=",
            "date=",
            "days=",
            "timezone=",
            "points=",
            "origin=",
            "=",
            '"',
            "'",
            "\\",
            '\\"',
            "[1,2]",
            '{"x":1,"y":2}',
            "{",
            "[",
            "2+2",
            "2026-01-01",
            " ",
            "\t",
            "\n",
        ]
    ),
    nasty_text,
)
slash_texts = st.lists(slash_words, max_size=10).map("".join)


@fuzz("test_parse_slash")
@given(text=slash_texts)
def test_parse_slash(text: str) -> None:
    try:
        name, words = parse_slash(text)
    except UsageError as exc:
        assert str(exc)
        return
    except Exception as exc:
        raise explain(exc) from exc
    assert not any(ord(ch) < 32 and ch not in "\t\n" for ch in text)
    assert isinstance(name, str) and all(isinstance(w, str) for w in words)
    assert name or not words


@fuzz("test_slash_arguments_for_every_tool")
@given(
    chosen=st.sampled_from(ALL_TOOLS),
    words=st.lists(
        st.one_of(
            slash_words,
            st.builds(
                lambda key, value: f"{key}={value}",
                st.sampled_from(
                    ["expression", "date", "days", "timezone", "points", "origin", "label", "x"]
                ),
                slash_words,
            ),
        ),
        max_size=5,
    ),
)
def test_slash_arguments_for_every_tool(chosen: Tool, words: list[str]) -> None:
    try:
        arguments = slash_arguments(chosen, words)
    except UsageError as exc:
        assert "usage: /tool" in str(exc) or "could not read" in str(exc)
        return
    except Exception as exc:
        raise explain(exc) from exc
    properties = chosen.schema["properties"]
    assert set(arguments) <= set(properties)
    assert {name for name in properties if name not in chosen.defaults} <= set(arguments)


@fuzz("test_suggest")
@given(name=nasty_text, names=st.lists(nasty_text, max_size=5))
def test_suggest(name: str, names: list[str]) -> None:
    assert "Unknown tool" in suggest(name, names)


# -- converters behind the HTTP intake -------------------------------------------------------


def _envelope(body: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    return {**body, "type": "event_callback", "event": {"type": "app_mention", **event}}


@fuzz("test_slack_to_event_on_whatever_the_intake_lets_through")
@example(body={}, event={})
@example(body={"team_id": "T1"}, event={"user": "U1", "channel": "C1", "ts": "1.000001"})
@given(
    body=st.dictionaries(st.sampled_from(["team_id", "event_id", "event_time"]), json_values),
    event=st.dictionaries(
        st.sampled_from(["user", "text", "ts", "channel", "thread_ts", "channel_type", "files"]),
        json_values,
    ),
)
def test_slack_to_event_on_whatever_the_intake_lets_through(
    body: dict[str, Any], event: dict[str, Any]
) -> None:
    """The converters trust Slack's shapes; bots/slack/intake.py refuses every payload that
    would break them (a 400), so a payload that passes it always converts."""
    envelope = _envelope(body, event)
    if problem(envelope) is not None:
        return
    try:
        ours = slack_convert.to_event(
            envelope, envelope["event"], User("U1"), bot_user_id=BOT, addressed=True
        )
    except Exception as exc:
        raise explain(exc) from exc
    assert isinstance(ours, Event)


@fuzz("test_slack_attachments_on_whatever_the_intake_lets_through")
@example(files=[{"id": "F1", "size": "abc"}])
@example(files=[{"id": "F1", "size": 3, "name": "a.png", "mimetype": "image/png"}])
@given(files=st.lists(json_values, max_size=3))
def test_slack_attachments_on_whatever_the_intake_lets_through(files: list[Any]) -> None:
    envelope = _envelope({}, {"user": "U1", "channel": "C1", "ts": "1.1", "files": files})
    if problem(envelope) is not None:
        return
    try:
        found = slack_convert.attachments(envelope["event"])
    except Exception as exc:
        raise explain(exc) from exc
    assert isinstance(found, tuple)


@fuzz("test_slack_user_from_info_on_arbitrary_objects")
@example(info={"name": "ada"})
@given(info=st.dictionaries(st.sampled_from(["id", "name", "profile", "is_bot"]), json_values))
def test_slack_user_from_info_on_arbitrary_objects(info: dict[str, Any]) -> None:
    try:
        user = slack_convert.user_from_info(info, "U1")
    except Exception as exc:
        raise explain(exc) from exc
    assert isinstance(user, User) and user.id == "U1" and isinstance(user.name, str)


# -- regressions ---------------------------------------------------------------------------------


@fuzz("test_split_message_never_cuts_before_a_mid_line_fence_run")
@example(text="aaaaaaaaaaaaaaaaaaaaaaaaaaa`code``code````inline```word\n```python\n", limit=16)
@given(
    text=st.lists(
        st.sampled_from(["a", "word", " ", "`code`", "```inline```", "x ```y", "\n"]), max_size=60
    ).map("".join),
    limit=st.integers(MIN_LIMIT, 40),
)
def test_split_message_never_cuts_before_a_mid_line_fence_run(text: str, limit: int) -> None:
    chunks = split_message(text, limit)
    for chunk in chunks[:-1]:
        assert open_fence(chunk) is None, ("a code block left open", chunk)
    if chunks:
        assert (open_fence(chunks[-1]) is None) == (open_fence(text) is None), chunks[-1]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@fuzz("test_slash_arguments_with_deeply_nested_json")
@example(depth=5000)
@given(depth=st.integers(min_value=2000, max_value=100_000))
def test_slash_arguments_with_deeply_nested_json(depth: int) -> None:
    (chosen,) = TEST_TOOLS
    try:
        slash_arguments(chosen, [f"points={_deep(depth)}", 'origin={"x": 1, "y": 2}'])
    except UsageError:
        return
    except Exception as exc:
        raise explain(exc) from exc


@fuzz("test_conversation_key_round_trip")
@example(workspace="T:1", channel="C1", thread="1.2")
@given(workspace=nasty_text, channel=nasty_text, thread=nasty_text)
def test_conversation_key_round_trip(workspace: str, channel: str, thread: str) -> None:
    key = ConversationKey(Platform.SLACK, workspace, channel, thread)
    try:
        parsed = ConversationKey.parse(str(key))
    except Exception as exc:
        raise explain(exc) from exc
    assert parsed == key
