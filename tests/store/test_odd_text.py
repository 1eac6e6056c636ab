"""Odd Unicode is stored the same way on SQLite and PostgreSQL and answered, never refused.

SQLite (through Python's sqlite3) cannot take a lone surrogate, PostgreSQL's `text` cannot take
NUL. The rule (core/unicode.py, `core.store.text.storable`): a lone surrogate or a NUL becomes
U+FFFD, a surrogate pair held as two code points becomes its character, the rest is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bots.services import build_services
from bots.settings import AppSettings as Settings
from core.events import ConversationKey, Event, Platform, User
from core.llm.types import ToolCall
from core.store import Step, Store
from core.store import messages as message_rows
from core.store.knowledge import KnowledgeChunk
from core.store.memory import Summary
from core.store.text import storable
from core.unicode import clean_text
from simulator import Simulator, Text
from tests.conftest import RecordingReply, make_event

R = "\ufffd"
# (what arrives, what is stored and read back)
CASES: list[tuple[str, str]] = [
    ("\ud800", R),
    ("\udfff", R),
    ("\x00", R),
    ("a\x00b", f"a{R}b"),
    ("👍🏽", "👍🏽"),
    ("ok \ud800 👍🏽 \x00 \udfff end", f"ok {R} 👍🏽 {R} {R} end"),
    ("\ud83d\udc4d", "👍"),  # a pair held as two code points is the character it encodes
    ("\udfff\ud800", R + R),  # the wrong order is no pair
    ("\u200fשלום\u200e e\u0301 \x01\x1b\x7f\t", "\u200fשלום\u200e e\u0301 \x01\x1b\x7f\t"),
    ("plain text", "plain text"),
    ("", ""),
]
KEY = ConversationKey(Platform.SLACK, "T1", "C1", "1.2")


@pytest.fixture
def database_url(on_both_backends: str) -> str:
    """The engine tests here run on SQLite and on PostgreSQL."""
    return on_both_backends


@pytest.mark.parametrize(("raw", "stored"), CASES)
def test_the_rule(raw: str, stored: str) -> None:
    assert storable(raw) == clean_text(raw) == stored
    assert storable(stored) == stored, "cleaning is idempotent"
    stored.encode("utf-8")
    assert "\x00" not in stored


def test_clean_text_is_handed_back_as_it_is() -> None:
    for text in ["hello", "héllo wörld 👍🏽", "x" * 1_000_000]:
        assert clean_text(text) is text


async def _write_and_read(location: str | Path) -> dict[str, Any]:
    """Every store write of free text, each with every case; what reads give back."""
    store = await Store.open(location)
    try:
        conversation = await store.conversations.ensure(KEY)
        turn_ids: list[int] = []
        for i, (raw, _) in enumerate(CASES):
            event = Event(KEY, User(f"U{i}", "Ada"), "placeholder", f"E{i}")
            accepted = await store.accept(event, text=raw, tokens=1, delivery_ttl=60)
            assert accepted is not None
            turn_ids.append(accepted.turn_id)
            call = ToolCall(f"call_{i}", "lookup", f'{{"q": "{raw}"}}')
            await store.finish_turn(
                accepted.turn_id,
                conversation,
                steps=[
                    Step("assistant", raw, (call,)),
                    Step("tool", raw, tool_call_id=call.id),
                ],
            )

            async def insert(tx: Any, raw: str = raw) -> int:
                return await message_rows.insert(
                    tx, conversation, role="user", content="to replace", tokens=1, user_name=raw
                )

            inserted = await store.db.write(insert)
            await store.messages.update_text(inserted, raw, 1)
            await store.pins.add(conversation, raw, 1, by=raw)
            await store.moderation.record(
                KEY,
                "U1",
                direction="input",
                action="flag",
                scores={"harassment": 0.9},
                categories=["harassment"],
                excerpt=raw,
            )
            await store.turns.mark_failed(accepted.turn_id, raw)
        facts = tuple(raw for raw, _ in CASES)
        summary = Summary(text=" | ".join(facts), facts=facts, open_questions=facts, covers_until=1)
        await store.summaries.save(conversation, summary, "gpt-test")
        chunks = [KnowledgeChunk(i, raw, raw, b"\0\0\0\0") for i, (raw, _) in enumerate(CASES)]
        await store.knowledge.replace_file("notes.md", "digest", "embed", chunks)
        stored = await store.messages.all(conversation)
        turns = [await store.turns.get(turn) for turn in turn_ids]
        got_summary = await store.summaries.get(conversation)
        return {
            "messages": [
                (m.role, m.content, m.user_name, m.tool_calls, m.tool_call_id) for m in stored
            ],
            "pins": [(pin.text, pin.pinned_by) for pin in await store.pins.list(conversation)],
            "moderation": [
                e.excerpt for e in reversed(await store.moderation.recent("slack", "T1", 100))
            ],
            "turn_errors": [turn.error if turn else None for turn in turns],
            "summary": (got_summary.text, got_summary.facts, got_summary.open_questions),
            "knowledge": [(c.heading, c.text) for c in await store.knowledge.chunks("embed")],
        }
    finally:
        await store.close()


def _expected() -> dict[str, Any]:
    rows: list[tuple[str, str, str, tuple[ToolCall, ...], str]] = []
    for i, (_, clean) in enumerate(CASES):
        call = ToolCall(f"call_{i}", "lookup", f'{{"q": "{clean}"}}')
        rows += [
            ("user", clean, "Ada", (), ""),
            ("assistant", clean, "", (call,), ""),
            ("tool", clean, "", (), call.id),
        ]
    rows += [("user", clean, clean, (), "") for _, clean in CASES]
    cleaned = tuple(clean for _, clean in CASES)
    return {
        "messages": rows,
        "pins": [(clean, clean) for clean in cleaned],
        "moderation": list(cleaned),
        "turn_errors": list(cleaned),
        "summary": (" | ".join(cleaned), cleaned, cleaned),
        "knowledge": [(clean, clean) for clean in cleaned],
    }


def _by_turn(read: dict[str, Any]) -> dict[str, Any]:
    """Messages in a fixed order (turn messages, then the ones inserted without a turn)."""
    messages = read["messages"]
    with_turn = [m for m in messages if not (m[0] == "user" and m[2] != "Ada")]
    without = [m for m in messages if m[0] == "user" and m[2] != "Ada"]
    return {**read, "messages": with_turn + without}


async def test_odd_text_is_stored_cleaned(location: str) -> None:
    read = _by_turn(await _write_and_read(location))
    expected = _expected()
    for part, value in expected.items():
        assert read[part] == value, part


async def test_both_backends_read_back_the_same(tmp_path: Path, postgres_url: str) -> None:
    lite = _by_turn(await _write_and_read(f"sqlite:///{tmp_path / 'same.db'}"))
    pg = _by_turn(await _write_and_read(postgres_url))
    assert lite == pg == _expected()


async def test_the_engine_answers_odd_text(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings())
    try:
        sim.enqueue(Text("Got it."))
        reply = RecordingReply()
        event = Event(KEY, User("U1", "Ada \ud800\x00"), "hi \ud800 \x00 there", "E-odd")
        assert event.text == f"hi {R} {R} there" and event.user.name == f"Ada {R}{R}"
        outcome = await services.engine.handle(event, reply)
        assert outcome is not None and outcome.status == "done", outcome
        assert reply.final == "Got it."
        conversation = await services.store.conversations.get(KEY)
        assert conversation is not None
        stored = await services.store.messages.all(conversation)
        assert [(m.role, m.content, m.user_name) for m in stored] == [
            ("user", f"hi {R} {R} there", f"Ada {R}{R}"),
            ("assistant", "Got it.", ""),
        ]
        body = sim.requests_to("chat")[-1].body
        assert body is not None and body["messages"][-1]["content"] == f"hi {R} {R} there"
    finally:
        await services.close()


async def test_a_second_turn_reads_the_cleaned_history(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings())
    try:
        for text in ["first \x00", "second \udfff"]:
            outcome = await services.engine.handle(make_event(text), RecordingReply())
            assert outcome is not None and outcome.status == "done", outcome
        body = sim.requests_to("chat")[-1].body
        assert body is not None
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        assert users == [f"first {R}", f"second {R}"]
    finally:
        await services.close()
