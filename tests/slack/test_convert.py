"""Pure Slack conversions on recorded-shape payloads, and Markdown to mrkdwn."""

from __future__ import annotations

from datetime import UTC, datetime

from bots.slack import convert
from bots.slack.mrkdwn import to_mrkdwn
from core.commands import split_command
from core.events import Platform, User

BODY = {"team_id": "T1", "event_id": "Ev42", "event_time": 1_700_000_000}


def test_a_channel_mention_becomes_an_event_keyed_by_its_thread() -> None:
    event = {
        "type": "app_mention",
        "user": "U1",
        "text": "<@UBOT> hi there",
        "ts": "1.2",
        "channel": "C1",
    }
    ours = convert.to_event(BODY, event, User("U1"), bot_user_id="UBOT", addressed=True)
    assert (ours.key.platform, ours.key.workspace, ours.key.channel, ours.key.thread) == (
        Platform.SLACK,
        "T1",
        "C1",
        "1.2",
    )
    assert ours.text == "hi there" and ours.delivery_id == "Ev42"
    assert convert.target_of(BODY, event).thread_ts == "1.2", "channel replies go in the thread"


def test_a_reply_in_a_thread_keeps_the_thread_and_a_dm_answers_in_place() -> None:
    in_thread = {"user": "U1", "text": "more", "ts": "1.9", "thread_ts": "1.2", "channel": "C1"}
    assert convert.target_of(BODY, in_thread).thread_ts == "1.2"
    dm = {"user": "U1", "text": "hey", "ts": "2.0", "channel": "D1", "channel_type": "im"}
    assert convert.target_of(BODY, dm).thread_ts is None
    assert (
        convert.to_event(BODY, dm, User("U1"), bot_user_id="B", addressed=True).key.thread == "main"
    )


def test_files_become_attachments_and_users_carry_admin_flags() -> None:
    event = {
        "files": [
            {"id": "F1", "name": "a.png", "mimetype": "image/png", "size": 10, "url_private": "u"}
        ]
    }
    (attachment,) = convert.attachments(event)
    assert attachment.kind == "image" and attachment.url == "u"
    user = convert.user_from_info(
        {"id": "U1", "is_owner": True, "profile": {"display_name": "Ada"}}, "U1"
    )
    assert user.is_admin and user.name == "Ada"


def test_commands_typed_in_messages() -> None:
    assert split_command("/pin the deadline") == ("pin", "the deadline")
    assert split_command("what is /etc?") is None


def test_markdown_becomes_mrkdwn() -> None:
    source = (
        "# Plan\n**bold** *it* ~~old~~ [docs](https://x.io) a<b & c\n- one\n  - two\n"
        "```py\nx = 1 < 2\n```"
    )
    assert to_mrkdwn(source) == (
        "*Plan*\n*bold* _it_ ~old~ <https://x.io|docs> a&lt;b &amp; c\n• one\n  • two\n```\nx = 1 &lt; 2\n```"
    )


def test_code_spans_are_left_alone() -> None:
    assert to_mrkdwn("use `**kwargs` here") == "use `**kwargs` here"


def test_an_unusable_timestamp_falls_back_to_now() -> None:
    event = {"user": "U1", "text": "hi", "ts": "1.2", "channel": "C1"}
    for body, ts in (
        ({"event_time": 10**20}, "abc"),
        ({"event_time": -(10**12)}, "NaN"),
        ({"event_time": 10**400}, "1e400"),
        ({}, "abc"),
        ({}, "NaN"),
        ({}, "inf"),
        ({"event_time": True}, None),
        ({"event_time": [1]}, {"x": 1}),
    ):
        before = datetime.now(UTC)
        ours = convert.to_event(
            {**BODY, **body} if body else {"team_id": "T1"},
            {**event, "ts": ts},
            User("U1"),
            bot_user_id="UBOT",
            addressed=True,
        )
        assert before <= ours.received_at <= datetime.now(UTC), (body, ts)


def test_a_usable_timestamp_is_kept() -> None:
    event = {"user": "U1", "text": "hi", "ts": "1700000100.000200", "channel": "C1"}
    ours = convert.to_event(BODY, event, User("U1"), bot_user_id="UBOT", addressed=True)
    assert ours.received_at == datetime.fromtimestamp(1_700_000_000, UTC)
    no_time = convert.to_event(
        {"team_id": "T1"}, event, User("U1"), bot_user_id="UBOT", addressed=True
    )
    assert no_time.received_at == datetime.fromtimestamp(1_700_000_100.0002, UTC)
    out_of_range = convert.to_event(
        {**BODY, "event_time": 10**20}, event, User("U1"), bot_user_id="UBOT", addressed=True
    )
    assert out_of_range.received_at == no_time.received_at, "then the message's own ts"
