"""The Discord adapter end to end: the real discord.py client against a fake gateway and REST API."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import discord
import pytest

from bots.discord.client import INTENT_HELP, DiscordAdapter
from bots.errors import StartupError
from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from core.engine import EMPTY_MESSAGE_HINT, STORE_FAILURE_MESSAGE
from core.events import PlatformPort
from core.logging import configure_logging
from core.store import StoreError
from simulator import Simulator, Text
from tests.fakes.discord import FakeDiscord

DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = "wss://gateway.discord.gg/"


@dataclass
class Rig:
    fake: FakeDiscord
    sim: Simulator
    settings: Settings
    services: Services
    bot: DiscordAdapter


@pytest.fixture(autouse=True)
def _discord_globals_stay_untouched() -> Iterator[None]:
    """Each adapter points its own client at its server; discord.py's globals never change."""
    yield
    assert discord.http.Route.BASE == DISCORD_API
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == DISCORD_GATEWAY


async def _start(
    fake: FakeDiscord, services: Services, settings: Settings
) -> tuple[DiscordAdapter, asyncio.Task[None]]:
    bot = DiscordAdapter(settings.discord, services.engine, guild_ready_timeout=0.05)
    await bot.login(fake.token)
    task = asyncio.create_task(bot.connect())
    await asyncio.wait_for(bot.client.wait_until_ready(), 15)
    return bot, task


def _settings(
    make_settings: Callable[..., Settings], fake: FakeDiscord, **overrides: object
) -> Settings:
    return make_settings(
        discord_token=fake.token,
        discord_api_url=fake.api_base,
        discord_gateway_url=fake.gateway_url,
        **({"moderation_enabled": False} | overrides),
    )


@asynccontextmanager
async def open_rig(
    sim: Simulator, make_settings: Callable[..., Settings], fake: FakeDiscord, **overrides: object
) -> AsyncIterator[Rig]:
    """The adapter connected to `fake`; `overrides` are settings."""
    settings = _settings(make_settings, fake, **overrides)
    services = await build_services(settings)
    bot, task = await _start(fake, services, settings)
    try:
        yield Rig(fake, sim, settings, services, bot)
    finally:
        await bot.close()
        await asyncio.gather(task, return_exceptions=True)
        await services.close()


@pytest.fixture
async def rig(sim: Simulator, make_settings: Callable[..., Settings]) -> AsyncIterator[Rig]:
    async with FakeDiscord() as fake, open_rig(sim, make_settings, fake) as opened:
        yield opened


def _posted(fake: FakeDiscord, channel: int) -> list[str]:
    return [m["content"] for m in fake.messages.get(channel, [])]


async def test_a_mention_opens_a_thread_and_is_answered_there(rig: Rig) -> None:
    message = await rig.fake.push_message(
        rig.fake.channel_id, "what is the plan for today?", mention_bot=True
    )
    thread_id = int(message["id"])
    await rig.fake.wait_for("POST", rf"/channels/{thread_id}/messages$")
    await rig.services.engine.drain()
    created = (await rig.fake.wait_for("POST", r"/messages/\d+/threads"))[0]
    assert created.json["name"] == "what is the plan for today?"
    assert _posted(rig.fake, thread_id)[-1] == "You said: what is the plan for today?"


async def test_a_follow_up_in_the_thread_carries_memory(rig: Rig) -> None:
    message = await rig.fake.push_message(rig.fake.channel_id, "my name is Ada", mention_bot=True)
    thread_id = int(message["id"])
    await rig.fake.wait_for("POST", rf"/channels/{thread_id}/messages$")
    await rig.services.engine.drain()
    await rig.fake.push_message(thread_id, "what is my name?")
    await rig.fake.wait_for("POST", rf"/channels/{thread_id}/messages$", count=2)
    await rig.services.engine.drain()
    sent = rig.sim.requests_to("chat")[-1].body["messages"]  # type: ignore[index]
    assert [m["content"] for m in sent[1:]] == [
        "my name is Ada",
        "You said: my name is Ada",
        "what is my name?",
    ]


async def test_plain_channel_messages_without_a_mention_are_ignored(rig: Rig) -> None:
    await rig.fake.push_message(rig.fake.channel_id, "just chatting")
    await rig.fake.push_message(rig.fake.channel_id, "from a bot", bot=True, mention_bot=True)
    ping = await rig.fake.push_message(rig.fake.channel_id, "ping", mention_bot=True)
    await rig.fake.wait_for("POST", rf"/channels/{ping['id']}/messages$")
    await rig.services.engine.drain()
    assert len(rig.sim.requests_to("chat")) == 1


async def test_a_direct_message_is_a_conversation(rig: Rig) -> None:
    dm = rig.fake.add_dm_channel(42)
    await rig.fake.push_message(dm, "hello privately")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$")
    await rig.services.engine.drain()
    assert _posted(rig.fake, dm)[-1] == "You said: hello privately"


async def test_a_long_reply_with_code_is_split_and_edits_are_throttled(rig: Rig) -> None:
    code = "```python\n" + "\n".join(f"print({i})  # line {i}" for i in range(160)) + "\n```"
    answer = "Here is the script.\n\n" + code + "\n\nRun it twice. " + "More detail. " * 120
    assert len(answer) > 4500
    rig.sim.chunk_size = 200
    rig.sim.enqueue(Text(answer, pace=0.1))  # about 2.5 s of streaming
    message = await rig.fake.push_message(rig.fake.channel_id, "write a script", mention_bot=True)
    thread_id = int(message["id"])
    await rig.fake.wait_for("POST", rf"/channels/{thread_id}/messages$")
    await rig.services.engine.drain()
    posted = _posted(rig.fake, thread_id)
    assert len(posted) >= 3 and all(len(p) <= 2000 for p in posted)
    assert all(sum(1 for line in p.split("\n") if line.startswith("```")) % 2 == 0 for p in posted)
    assert "".join(posted).count("print(") == 160
    writes = sorted(t for m in rig.fake.messages[thread_id] for t in [m["at"], *m.get("edits", [])])
    flushes = [b for a, b in itertools.pairwise([-1.0, *writes]) if b - a > 0.3]  # one per flush
    assert len(flushes) >= 3, "the reply was streamed, not posted at the end"
    streamed = flushes[:-1]  # the final flush follows the last delta immediately
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(streamed)), "about once a second"


async def test_synced_commands_are_installable_to_users_and_usable_in_dms(rig: Rig) -> None:
    await rig.bot.tree.sync()
    synced = rig.fake.commands["global"]
    assert len(synced) == 8  # ask, reset, model, usage, tool, summarize, digest, schedule
    for command in synced:  # 0 guild install, 1 user install; 0 guild, 1 bot DM, 2 private channel
        assert sorted(command["integration_types"]) == [0, 1], command["name"]
        assert sorted(command["contexts"]) == [0, 1, 2], command["name"]


async def test_a_slash_command_is_deferred_then_followed_up(rig: Rig) -> None:
    await rig.bot.tree.sync()
    assert {c["name"] for c in rig.fake.commands["global"]} >= {
        "ask",
        "reset",
        "model",
        "usage",
        "tool",
    }
    interaction = await rig.fake.push_interaction(
        "ask", [{"name": "question", "type": 3, "value": "hi there"}]
    )
    await rig.fake.wait_for("POST", rf"/interactions/{interaction['id']}/")
    callback = rig.fake.interaction_callbacks[interaction["id"]]["callback"]
    assert callback["body"]["type"] == 5, "deferred"
    assert callback["at"] - interaction["_sent_at"] < 3.0
    await rig.fake.wait_for("PATCH", r"/webhooks/\d+/[^/]+/messages/@original")
    await rig.services.engine.drain()
    originals = [m for m in rig.fake.messages[-1] if m["target"] == "@original"]
    assert originals[-1]["content"] == "You said: hi there"
    usage = await rig.fake.push_interaction("usage")
    await rig.fake.wait_for("POST", r"/webhooks/\d+/[^/]+$")
    follow = [m for m in rig.fake.messages[-1] if m["target"] == "followup"]
    assert follow and follow[-1]["content"].startswith("Today:")
    assert usage


async def test_a_rest_rate_limit_is_retried(rig: Rig) -> None:
    rig.fake.fail_next("POST", r"/channels/\d+/messages$", status=429, retry_after=0.05)
    dm = rig.fake.add_dm_channel(42)
    await rig.fake.push_message(dm, "hello")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$", count=2)
    await rig.services.engine.drain()
    assert _posted(rig.fake, dm) == ["You said: hello"]


async def test_reconnect_resumes_and_the_conversation_continues(rig: Rig) -> None:
    await rig.fake.send_reconnect()
    await asyncio.wait_for(rig.fake.ready.wait(), 15)
    assert rig.fake.resumes == 1
    dm = rig.fake.add_dm_channel(42)
    await rig.fake.push_message(dm, "still there?")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$")
    await rig.services.engine.drain()
    assert _posted(rig.fake, dm)[-1] == "You said: still there?"


async def test_images_and_voice_messages(rig: Rig) -> None:
    image = rig.fake.add_attachment("photo.png", "image/png", b"\x89PNG data")
    await rig.fake.push_message(
        rig.fake.channel_id, "what is this?", mention_bot=True, attachments=[image]
    )
    await rig.fake.wait_for("POST", r"/channels/\d+/messages$")
    await rig.services.engine.drain()
    content = rig.sim.requests_to("chat")[0].body["messages"][-1]["content"]  # type: ignore[index]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    dm = rig.fake.add_dm_channel(42)
    voice = rig.fake.add_attachment(
        "voice-message.ogg", "audio/ogg", b"SIMTEXT:remind me at noon", voice=True
    )
    await rig.fake.push_message(dm, "", attachments=[voice], flags=1 << 13)
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$", count=2)
    await rig.services.engine.drain()
    posted = _posted(rig.fake, dm)
    assert any("Transcript: remind me at noon" in p for p in posted)
    assert posted[-1] == "You said: remind me at noon"


async def test_a_refused_message_content_intent_gives_the_fix(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    async with FakeDiscord() as fake:
        fake.reject_privileged_intents = True
        settings = _settings(make_settings, fake)
        services = await build_services(settings)
        bot = DiscordAdapter(settings.discord, services.engine)
        started = time.perf_counter()
        with pytest.raises(StartupError) as stopped:
            await asyncio.wait_for(bot.run_until_closed(), 30)
        assert str(stopped.value) == INTENT_HELP
        assert time.perf_counter() - started < 30
        await services.close()


async def test_a_thread_the_bot_joined_is_recognised_after_a_restart(
    rig: Rig, make_settings: Callable[..., Settings]
) -> None:
    thread = await rig.fake.add_thread(owner_id=42)
    await rig.fake.push_message(thread, "help me plan", mention_bot=True)
    await rig.fake.wait_for("POST", rf"/channels/{thread}/messages$")
    await rig.services.engine.drain()
    await rig.bot.close()
    restarted, task = await _start(rig.fake, rig.services, rig.settings)
    try:
        await rig.fake.push_message(thread, "and tomorrow?")  # no mention: known from the store
        await rig.fake.wait_for("POST", rf"/channels/{thread}/messages$", count=2)
        await rig.services.engine.drain()
        assert _posted(rig.fake, thread) == ["You said: help me plan", "You said: and tomorrow?"]
    finally:
        await restarted.close()
        await asyncio.gather(task, return_exceptions=True)


async def test_someone_elses_thread_without_a_mention_is_ignored(rig: Rig) -> None:
    thread = await rig.fake.add_thread(owner_id=42)
    await rig.fake.push_message(thread, "talking among ourselves")
    dm = rig.fake.add_dm_channel(42)
    await rig.fake.push_message(dm, "marker")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$")
    await rig.services.engine.drain()
    assert [r.body["messages"][-1]["content"] for r in rig.sim.requests_to("chat")] == ["marker"]  # type: ignore[index]


async def test_a_typing_indicator_shows_while_waiting(rig: Rig) -> None:
    dm = rig.fake.add_dm_channel(42)
    await rig.fake.push_message(dm, "are you typing?")
    typing = await rig.fake.wait_for("POST", rf"/channels/{dm}/typing$")
    reply = await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$")
    assert typing[0].at <= reply[0].at


async def test_reply_inline_answers_in_the_channel(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    async with (
        FakeDiscord() as fake,
        open_rig(sim, make_settings, fake, discord_reply_inline=True) as rig,
    ):
        await fake.push_message(fake.channel_id, "inline please", mention_bot=True)
        await fake.wait_for("POST", rf"/channels/{fake.channel_id}/messages$")
        await rig.services.engine.drain()
        assert _posted(fake, fake.channel_id) == ["You said: inline please"]
        assert not [r for r in fake.requests if r.path.endswith("/threads")]


async def test_without_the_message_content_intent_mentions_and_dms_still_work(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    async with FakeDiscord() as fake:
        fake.reject_privileged_intents = True
        async with open_rig(sim, make_settings, fake, discord_message_content=False) as rig:
            assert fake.identify is not None
            assert not fake.identify["intents"] & discord.Intents(message_content=True).value
            dm = fake.add_dm_channel(42)
            await fake.push_message(dm, "no intent needed")
            await fake.wait_for("POST", rf"/channels/{dm}/messages$")
            await rig.services.engine.drain()
            assert _posted(fake, dm) == ["You said: no intent needed"]


async def test_a_dropped_socket_resumes_and_the_conversation_continues(rig: Rig) -> None:
    dm = rig.fake.add_dm_channel(42)
    await rig.fake.push_message(dm, "before")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$")
    await rig.services.engine.drain()
    await rig.fake.drop()
    await asyncio.wait_for(rig.fake.ready.wait(), 30)
    assert rig.fake.resumes == 1
    await rig.fake.push_message(dm, "after")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$", count=2)
    await rig.services.engine.drain()
    sent = rig.sim.requests_to("chat")[-1].body["messages"]  # type: ignore[index]
    assert [m["content"] for m in sent[1:]] == ["before", "You said: before", "after"]


async def test_tool_names_are_autocompleted_from_the_registry(rig: Rig) -> None:
    interaction = await rig.fake.push_interaction(
        "tool",
        [{"name": "name", "type": 3, "value": "calc", "focused": True}],
        kind=4,
    )
    await rig.fake.wait_for("POST", rf"/interactions/{interaction['id']}/")
    callback = rig.fake.interaction_callbacks[interaction["id"]]["callback"]["body"]
    assert callback["type"] == 8
    assert [c["value"] for c in callback["data"]["choices"]] == ["calculate"]


async def test_a_slash_tool_call_runs_the_tool(rig: Rig) -> None:
    interaction = await rig.fake.push_interaction(
        "tool",
        [
            {"name": "name", "type": 3, "value": "calculate"},
            {"name": "arguments", "type": 3, "value": 'expression="6*7"'},
        ],
    )
    await rig.fake.wait_for("POST", rf"/interactions/{interaction['id']}/")
    assert rig.fake.interaction_callbacks[interaction["id"]]["callback"]["body"]["type"] == 5
    await rig.fake.wait_for("POST", r"/webhooks/\d+/[^/]+$")
    follow = [m for m in rig.fake.messages[-1] if m["target"] == "followup"]
    assert "42" in follow[-1]["content"]


async def test_discord_api_faults_are_logged_with_the_fix_and_others_carry_on(rig: Rig) -> None:
    stream = io.StringIO()
    configure_logging("info", "json", rig.settings.secrets(), stream=stream)
    # Missing permission: the thread cannot be created.
    rig.fake.fail_next("POST", r"/messages/\d+/threads$", status=403, code=50013)
    await rig.fake.push_message(rig.fake.channel_id, "open a thread", mention_bot=True)
    # A deleted thread: posting the answer fails.
    thread = await rig.fake.add_thread(owner_id=rig.fake.bot_id)
    rig.fake.fail_next("POST", rf"/channels/{thread}/messages$", status=404, code=10003, times=5)
    await rig.fake.push_message(thread, "anyone there?")
    # An expired interaction token: the deferred answer cannot be delivered.
    rig.fake.fail_next("PATCH", r"/webhooks/.*@original", status=401, code=50027, times=5)
    interaction = await rig.fake.push_interaction(
        "ask", [{"name": "question", "type": 3, "value": "late"}]
    )
    await rig.fake.wait_for("PATCH", r"/webhooks/.*@original")
    dm = rig.fake.add_dm_channel(42)
    await rig.fake.push_message(dm, "still fine?")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$")
    await rig.services.engine.drain()
    assert _posted(rig.fake, dm) == ["You said: still fine?"]
    logs = stream.getvalue()
    assert "code 50013" in logs and "re-invite it" in logs
    assert "code 10003" in logs and "deleted" in logs
    assert "code 50027" in logs and "expired" in logs
    assert interaction
    assert rig.fake.token not in logs


async def test_two_adapters_in_one_process_each_use_their_own_discord(
    sim: Simulator, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with (
        FakeDiscord(token="token-a") as first,
        FakeDiscord(token="token-b") as second,
        open_rig(sim, make_settings, first) as a,
        open_rig(
            sim, make_settings, second, database_url=f"sqlite:///{tmp_path / 'other.db'}"
        ) as b,
    ):
        assert first.identify and first.identify["token"] == "token-a"  # the gateway
        assert second.identify and second.identify["token"] == "token-b"
        for rig, name in ((a, "first"), (b, "second")):
            dm = rig.fake.add_dm_channel(42)
            await rig.fake.push_message(dm, f"hello {name}")  # REST: the reply
            interaction = await rig.fake.push_interaction(  # webhooks: defer, then the answer
                "ask", [{"name": "question", "type": 3, "value": f"ask {name}"}]
            )
            await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$")
            await rig.fake.wait_for("POST", rf"/interactions/{interaction['id']}/")
            await rig.fake.wait_for("PATCH", r"/webhooks/\d+/[^/]+/messages/@original")
            await rig.services.engine.drain()
            assert set(rig.fake.messages) == {dm, -1}, "nothing of the other bot's"
            assert _posted(rig.fake, dm) == [f"You said: hello {name}"]
            answer = [m["content"] for m in rig.fake.messages[-1] if m["target"] == "@original"]
            assert answer[-1] == f"You said: ask {name}"


async def test_ready_again_after_a_new_session_attaches_the_port_once(
    sim: Simulator, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeDiscord() as fake:
        settings = _settings(make_settings, fake)
        services = await build_services(settings)
        engine = services.engine
        attached: list[tuple[object, bool]] = []
        attach = engine.attach

        async def spy(port: PlatformPort, *, recovers: bool = True) -> int:
            attached.append((port, recovers))
            return await attach(port, recovers=recovers)

        monkeypatch.setattr(engine, "attach", spy)
        bot, task = await _start(fake, services, settings)
        try:
            again = asyncio.ensure_future(bot.client.wait_for("ready", timeout=30))
            await fake.invalidate_session()  # a new session: IDENTIFY, READY, on_ready again
            await again
            assert len(fake.identifies) == 2
            dm = fake.add_dm_channel(42)
            await fake.push_message(dm, "after the new session")
            await fake.wait_for("POST", rf"/channels/{dm}/messages$")
            await engine.drain()
            assert _posted(fake, dm) == ["You said: after the new session"]
            assert attached == [(bot, True)]
        finally:
            await bot.close()
            await asyncio.gather(task, return_exceptions=True)
            await services.close()


async def test_only_the_process_with_shard_0_recovers(
    sim: Simulator, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeDiscord() as fake:
        settings = _settings(make_settings, fake, discord_shard_ids="1", discord_shard_count=2)
        services = await build_services(settings)
        attached: list[bool] = []
        attach = services.engine.attach

        async def spy(port: PlatformPort, *, recovers: bool = True) -> int:
            attached.append(recovers)
            return await attach(port, recovers=recovers)

        monkeypatch.setattr(services.engine, "attach", spy)
        bot, task = await _start(fake, services, settings)
        try:
            assert fake.identifies[0][:2] == (1, 2)
            await fake.wait_until(lambda: bool(attached))
            assert attached == [False]
        finally:
            await bot.close()
            await asyncio.gather(task, return_exceptions=True)
            await services.close()


async def test_a_message_that_cannot_be_stored_is_refused_with_a_notice(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(*_args: object, **_kwargs: object) -> None:
        raise StoreError("the database is locked")

    monkeypatch.setattr(rig.services.engine.store, "accept", unavailable)
    dm = rig.fake.add_dm_channel(42)
    await rig.fake.push_message(dm, "please remember this")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$")
    assert _posted(rig.fake, dm) == [f"<@42> {STORE_FAILURE_MESSAGE}"]
    assert not rig.sim.requests_to("chat")


async def test_a_command_typed_in_a_message_is_run_by_the_engine(rig: Rig) -> None:
    dm = rig.fake.add_dm_channel(42)
    await rig.fake.push_message(dm, "remember: blue")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$")
    await rig.services.engine.drain()
    await rig.fake.push_message(dm, "/reset")
    await rig.fake.wait_for("POST", rf"/channels/{dm}/messages$", count=2)
    assert _posted(rig.fake, dm)[-1].startswith("Conversation reset")
    assert len(rig.sim.requests_to("chat")) == 1, "a command is not a question for the model"
    await rig.fake.push_message(rig.fake.channel_id, "", mention_bot=True)  # a bare mention
    created = await rig.fake.wait_for("POST", r"/messages/\d+/threads$")
    thread = int(created[0].path.split("/")[-2])
    await rig.fake.wait_for("POST", rf"/channels/{thread}/messages$")
    assert _posted(rig.fake, thread) == [f"<@42> {EMPTY_MESSAGE_HINT}"]
