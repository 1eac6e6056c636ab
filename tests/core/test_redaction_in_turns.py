"""REDACT_ENABLED end to end: what reaches OpenAI is redacted; what the user sees is not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bots.services import build_services
from bots.settings import AppSettings as Settings
from core.governance.redaction import Placeholders
from core.governance.turn_redaction import RestoringReply, TurnRedactor
from simulator import Simulator, Text, ToolCalls
from tests.conftest import RecordingReply, make_event

EMAIL, CARD = "ada.lovelace@example.com", "4111 1111 1111 1111"


def _sent(sim: Simulator) -> str:
    return " ".join(str(r.body) for r in sim.requests)


TAIL = "I will tell you once it is done, later today or tomorrow morning."


@pytest.mark.parametrize("stored", ["original", "redacted"])
async def test_values_leave_as_placeholders_and_come_back_restored(
    sim: Simulator, make_settings: Callable[..., Settings], stored: str
) -> None:
    # Output moderation releases streamed text every 50 characters, so this reply streams
    # (a reply shorter than one step is shown whole by `finish`).
    settings = make_settings(redact_enabled=True, redact_store=stored, moderation_output_chars=50)
    services = await build_services(settings)
    try:
        sim.enqueue(Text("I will write to [EMAIL_1] and never store [CARD_1]. " + TAIL))
        first = RecordingReply()
        await services.engine.handle(
            make_event(f"Mail {EMAIL} about card {CARD}, thanks", delivery_id="d1"), first
        )
        assert first.final == f"I will write to {EMAIL} and never store {CARD}. {TAIL}"
        assert "".join(first.deltas).startswith(f"I will write to {EMAIL}")
        second = RecordingReply()
        await services.engine.handle(make_event(f"Is {EMAIL} right?", delivery_id="d2"), second)
        sent = _sent(sim)
        assert EMAIL not in sent and CARD not in sent, "neither model nor moderation saw them"
        last = sim.requests_to("chat")[-1].body["messages"]  # type: ignore[index]
        assert last[-1]["content"] == "Is [EMAIL_1] right?", "the same value, the same placeholder"
        assert "[CARD_1]" in last[1]["content"]
        rows = await services.store.db.fetchall("SELECT content FROM messages ORDER BY id")
        history = " ".join(r[0] for r in rows)
        assert (EMAIL in history) is (stored == "original")
        assert ("[EMAIL_1]" in history) is (stored == "redacted")
    finally:
        await services.close()


async def test_tools_get_the_real_values(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(redact_enabled=True))
    try:
        sim.enqueue(ToolCalls.of(("calculate", {"expression": "[PHONE_1]"})), Text("done"))
        reply = RecordingReply()
        await services.engine.handle(make_event("call +44 20 7946 0958 please"), reply)
        tool_result = sim.requests_to("chat")[-1].body["messages"][-1]  # type: ignore[index]
        assert tool_result["role"] == "tool"
        assert "+44 20 7946 0958" not in _sent(sim)
        assert reply.final == "done"
    finally:
        await services.close()


async def test_a_placeholder_split_across_deltas_is_restored_whole() -> None:
    placeholders = Placeholders({EMAIL: "[EMAIL_1]"})
    shown = RecordingReply()
    reply = RestoringReply(shown, TurnRedactor(placeholders))
    for delta in ["Write to [EM", "AIL_", "1", "] today [", "not a placeholder]"]:
        await reply.append(delta)
    await reply.finish("Write to [EMAIL_1] today [not a placeholder]")
    assert "".join(shown.deltas) == f"Write to {EMAIL} today [not a placeholder]"
    assert shown.final == f"Write to {EMAIL} today [not a placeholder]"


async def test_off_by_default(services, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    await services.engine.handle(make_event(f"mail {EMAIL}"), RecordingReply())
    assert EMAIL in _sent(sim)
