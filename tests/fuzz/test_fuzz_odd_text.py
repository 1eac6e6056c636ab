"""Fuzzing the engine with odd Unicode: text and user names holding lone surrogates, NUL, emoji,
format marks and combining characters are answered on SQLite and on PostgreSQL, never refused.

The engine and the simulator run on one event loop owned by the test (an `asyncio.Runner`); the
hypothesis test is a plain function that hands it one event at a time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bots.services import Services, build_services
from bots.settings import load_app_settings
from core.engine import TurnOutcome
from core.events import ConversationKey, Event, Platform, User
from core.unicode import clean_text
from simulator import Simulator
from tests.conftest import RecordingReply
from tests.fuzz import fuzz_settings

# Generated cases per test (max_examples), plus each test's explicit examples.
EXAMPLES: dict[str, int] = {
    "test_odd_text_is_answered": 25,
}
TOTAL_EXAMPLES = sum(EXAMPLES.values())
TURN_TIMEOUT = 30.0


def fuzz(test_name: str) -> settings:
    return fuzz_settings(EXAMPLES[test_name])


ODD = [
    "\ud800",
    "\udfff",
    "\udbff",
    "\udc00",
    "\x00",
    "👍🏽",
    "\ud83d\udc4d",  # a surrogate pair held as two code points
    "\u200f",
    "\u202e",
    "e\u0301",
    "\x1b",
    "\ufeff",
    "\ufffd",
]
odd_text = st.lists(
    st.one_of(st.text(max_size=20), st.sampled_from(ODD), st.characters(categories=["Cs"])),
    max_size=12,
).map("".join)


class Rig:
    """The simulator and a built engine on one database, on the rig's own event loop."""

    def __init__(self, database_url: str) -> None:
        self.runner = asyncio.Runner()
        self.sim = Simulator()
        self.runner.run(self.sim.__aenter__())
        settings = load_app_settings(
            openai_api_key="sk-test-key-0123456789",
            openai_base_url=self.sim.base_url,
            openai_wire_api="chat",
            database_url=database_url,
            openai_retry_initial_wait=0.0,
            _env_file=None,
        )
        self.services: Services = self.runner.run(build_services(settings))
        self.threads = itertools.count(1)

    def answer(self, text: str, name: str) -> tuple[Event, TurnOutcome | None, RecordingReply]:
        n = next(self.threads)
        event = Event(
            ConversationKey(Platform.SLACK, "T1", "C1", f"{n}.0"), User("U1", name), text, f"E{n}"
        )
        reply = RecordingReply()
        handled = asyncio.wait_for(self.services.engine.handle(event, reply), TURN_TIMEOUT)
        try:
            outcome = self.runner.run(handled)
        except BaseException as exc:
            raise AssertionError(
                f"the engine let {type(exc).__name__} escape: {exc!s:.200}"
            ) from exc
        return event, outcome, reply

    def stored(self, event: Event) -> list[tuple[str, str, str]]:
        async def read() -> list[tuple[str, str, str]]:
            conversation = await self.services.store.conversations.get(event.key)
            assert conversation is not None, "the message was stored"
            messages = await self.services.store.messages.all(conversation)
            return [(m.role, m.content, m.user_name) for m in messages]

        return self.runner.run(read())

    def close(self) -> None:
        self.runner.run(self.services.close())
        self.runner.run(self.sim.__aexit__(None, None, None))
        self.runner.close()


@pytest.fixture
def rig(on_both_backends: str) -> Iterator[Rig]:
    built = Rig(on_both_backends)
    yield built
    try:
        _, outcome, reply = built.answer("hello", "Ada")  # a plain message still works
        assert outcome is not None and outcome.status == "done" and reply.final
    finally:
        built.close()


@fuzz("test_odd_text_is_answered")
@given(text=odd_text, name=odd_text)
@example(text="hi \ud800 \x00 there", name="Ada \udfff")
@example(text="\x00", name="\x00")
@example(text="\ud83d\udc4d\ud800", name="")
def test_odd_text_is_answered(rig: Rig, text: str, name: str) -> None:
    event, outcome, reply = rig.answer(text, name)
    assert event.text == clean_text(text) and event.user.name == clean_text(name)
    assert outcome is not None, "not taken for a redelivery"
    assert outcome.status == "done", outcome
    assert reply.final is not None
    reply.final.encode("utf-8")
    stored = rig.stored(event)
    assert stored[0] == ("user", clean_text(text), clean_text(name))
    for _, content, user_name in stored:
        content.encode("utf-8")
        user_name.encode("utf-8")
        assert "\x00" not in content + user_name
