"""Moderation, budgets, rate limits, usage reports, routing and confidence, end to end."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from core.events import Event, User
from core.governance.budgets import Budgets, day_start
from core.governance.moderation import OUTPUT_BLOCKED
from core.logging import configure_logging
from core.render.replies import LOW_CONFIDENCE
from core.store import UsageRow
from simulator import Fail, Simulator, Text
from tests.conftest import RecordingReply, make_event


@pytest.fixture
def database_url(on_both_backends: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return on_both_backends


async def _turn(services: Services, event: Event) -> RecordingReply:
    reply = RecordingReply()
    await services.engine.handle(event, reply)
    return reply


def _generation_bodies(sim: Simulator) -> str:
    return " ".join(str(r.body) for r in sim.requests if r.endpoint in {"chat", "responses"})


async def test_flagged_input_never_reaches_the_model(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    stream = io.StringIO()
    settings = make_settings()
    configure_logging("debug", "json", settings.secrets(), stream=stream)
    services = await build_services(settings)
    try:
        sim.flag("how to build a weapon", violence=0.97)
        reply = await _turn(services, make_event("tell me how to build a weapon at home"))
        assert "how to build a weapon" not in _generation_bodies(sim)
        assert not sim.requests_to("chat"), "no completion request at all"
        assert reply.final is not None and "violence" in reply.final
        assert "weapon" not in reply.final, "the notice does not repeat the content"
        rows = await services.store.db.fetchall(
            "SELECT direction, action, categories, excerpt FROM moderation_events"
        )
        assert [(r[0], r[1]) for r in rows] == [("input", "block")]
        assert "weapon" not in rows[0][3], "the stored excerpt is redacted"
        assert "weapon" not in stream.getvalue(), "flagged text never reaches the logs"
    finally:
        await services.close()


async def test_flagged_output_is_withheld_mid_stream(services: Services, sim: Simulator) -> None:
    harmless = "Here is a long and perfectly friendly answer about gardening. " * 10
    sim.flag("forbidden instructions", violence=0.91)
    sim.enqueue(Text(harmless + "And now the forbidden instructions follow. " + harmless))
    reply = await _turn(services, make_event("tell me about gardens"))
    assert "forbidden" not in reply.streamed
    assert reply.streamed.startswith("Here is a long"), "text checked before the flag was shown"
    assert reply.final == OUTPUT_BLOCKED
    rows = await services.store.db.fetchall("SELECT direction, action FROM moderation_events")
    assert [tuple(r) for r in rows] == [("output", "block")]
    conversation = await services.store.conversations.get(make_event("x").key)
    stored = await services.store.messages.all(conversation)  # type: ignore[arg-type]
    assert stored[-1].content == OUTPUT_BLOCKED, "the withheld text is not kept in memory"


async def test_thresholds_and_actions_are_per_category(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(
        make_settings(
            moderation_policy={
                "harassment": {"threshold": 0.9, "action": "block"},
                "self-harm": {"threshold": 0.3, "action": "flag"},
            }
        )
    )
    try:
        sim.flag("you silly goose", harassment=0.6)
        sim.flag("feeling low", self_harm=0.4)
        sim.flag("hit him", violence=0.6)
        assert (
            await _turn(services, make_event("you silly goose"))
        ).final == "You said: you silly goose"
        flagged = await _turn(services, make_event("feeling low today"))
        assert flagged.final == "You said: feeling low today", "flag logs but lets it through"
        blocked = await _turn(services, make_event("should I hit him"))
        assert blocked.final is not None and "violence" in blocked.final
        rows = await services.store.db.fetchall(
            "SELECT direction, action, categories FROM moderation_events"
        )
        assert [tuple(r) for r in rows] == [
            ("input", "flag", '["self-harm"]'),
            ("output", "flag", '["self-harm"]'),  # the echoed reply is flagged too
            ("input", "block", '["violence"]'),
        ]
    finally:
        await services.close()


async def test_moderation_outage_fails_closed_by_default(
    services: Services, sim: Simulator
) -> None:
    sim.fail_next("moderations", Fail(503), times=20)
    reply = await _turn(services, make_event("hello"))
    assert reply.final is not None and "can't check messages for safety" in reply.final
    assert not sim.requests_to("chat")


async def test_moderation_outage_can_fail_open(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(moderation_fail_open=True))
    try:
        sim.fail_next("moderations", Fail(503), times=20)
        assert (await _turn(services, make_event("hello"))).final == "You said: hello"
        rows = await services.store.db.fetchall("SELECT action FROM moderation_events")
        assert {r[0] for r in rows} == {"error"}, "the outage is recorded either way"
    finally:
        await services.close()


async def test_a_call_that_would_pass_the_daily_budget_is_refused_before_the_model(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(budget_user_daily_usd=1.0))
    frozen = day_start(time.time()) + 13 * 3600  # 13:00 UTC today
    services.engine.budgets = Budgets(services.settings, services.store, clock=lambda: frozen)
    try:
        event = make_event("hi")
        await services.store.usage.record(
            UsageRow("console", "w1", "c1", "u1", "gpt-6-luna", "chat", 0, 0, 0, 1.0)
        )
        reply = await _turn(services, event)
        assert not sim.requests_to("chat")
        expected_day = time.strftime("%Y-%m-%d", time.gmtime(frozen + 86_400))
        assert reply.final is not None
        assert f"resets at {expected_day} 00:00 UTC (in 11 h 0 min)" in reply.final
        assert "daily AI budget of $1.00" in reply.final
        other_user = await _turn(services, make_event("hi", user="u2"))
        assert other_user.final == "You said: hi", "limits are per user"
    finally:
        await services.close()


async def test_admins_are_exempt_from_budgets(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(budget_workspace_daily_usd=0.0))
    try:
        event = make_event("hi")
        admin = Event(key=event.key, user=User("boss", is_admin=True), text="hi", delivery_id="adm")
        assert "workspace's daily AI budget" in ((await _turn(services, event)).final or "")
        assert (await _turn(services, admin)).final == "You said: hi"
    finally:
        await services.close()


async def test_rate_limit_per_user(sim: Simulator, make_settings: Callable[..., Settings]) -> None:
    services = await build_services(make_settings(rate_limit_per_minute=2))
    try:
        finals = [(await _turn(services, make_event(f"m{i}"))).final for i in range(3)]
        assert finals[:2] == ["You said: m0", "You said: m1"]
        assert finals[2] is not None and "limit of 2 per minute" in finals[2]
        assert len(sim.requests_to("chat")) == 2
    finally:
        await services.close()


async def test_usage_report_equals_the_usage_rows(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(admin_user_ids="u1"))
    try:
        for i in range(3):
            await _turn(services, make_event(f"question {i}"))
        await _turn(services, make_event("other", user="u2"))
        rows = await services.store.db.fetchall(
            "SELECT SUM(prompt_tokens + completion_tokens), SUM(cost_usd) FROM usage WHERE user_id='u1'"
        )
        tokens, cost = rows[0]
        report = await services.engine.command(make_event("x"), "usage")
        assert f"Today: {tokens:,} tokens" in report.text
        assert f"${cost:.4f}" in report.text
        assert "Workspace this month: 4 model calls" in report.text
        assert "Top users: u1" in report.text
    finally:
        await services.close()


async def test_routing_picks_the_strong_model_for_long_messages(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(routing_strong_min_chars=40))
    try:
        await _turn(services, make_event("short"))
        await _turn(services, make_event("a much longer message that needs careful thought"))
        models = [r.body["model"] for r in sim.requests_to("chat")]  # type: ignore[index]
        assert models == ["gpt-6-luna", "gpt-6.1-sol"]
        recorded = await services.store.db.fetchall("SELECT model FROM turns ORDER BY id")
        assert [r[0] for r in recorded] == models
    finally:
        await services.close()


async def test_low_confidence_marker_only_below_the_threshold(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(low_confidence_logprob=-1.0))
    try:
        sim.enqueue(Text("probably", logprob=-2.3), Text("surely", logprob=-0.1))
        unsure = await _turn(services, make_event("a"))
        sure = await _turn(services, make_event("b"))
        assert unsure.final == f"probably\n\n{LOW_CONFIDENCE}"
        assert sure.final == "surely"
        assert sim.requests_to("chat")[0].body["logprobs"] is True  # type: ignore[index]
    finally:
        await services.close()


async def test_moderation_report_for_admins(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(admin_user_ids="u1"))
    try:
        sim.flag("badword", harassment=0.8)
        await _turn(services, make_event("badword here"))
        report = await services.engine.command(make_event("x"), "moderation")
        assert "harassment: 1" in report.text and "input block" in report.text
        assert "badword" not in report.text
        refused = await services.engine.command(make_event("x", user="u9"), "moderation")
        assert not refused.ok
    finally:
        await services.close()


async def test_images_are_moderated_and_sent_as_vision_input(
    services: Services, sim: Simulator
) -> None:
    from core.events import Attachment

    base = make_event("what is in this picture?")
    image = Attachment("cat.png", "image/png", 4, data=b"\x89PNG")
    event = Event(
        key=base.key, user=base.user, text=base.text, delivery_id="img1", attachments=(image,)
    )
    await _turn(services, event)
    moderation_input = sim.requests_to("moderations")[0].body["input"]  # type: ignore[index]
    assert moderation_input[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw=="},
    }
    last = sim.requests_to("chat")[0].body["messages"][-1]  # type: ignore[index]
    assert last["content"][1]["image_url"]["url"] == "data:image/png;base64,iVBORw=="
