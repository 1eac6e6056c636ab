"""What each admin page shows after real turns, and what its forms change."""

from __future__ import annotations

import csv
import io
import re

from core.store.erasure import REMOVED_TEXT
from simulator import Fail, Simulator
from tests.admin.conftest import AdminRig


def cell(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found, element_id
    return found.group(1)


async def test_the_overview_counts_the_last_30_days_and_draws_four_charts(make_admin) -> None:  # type: ignore[no-untyped-def]
    rig = await make_admin(budget_workspace_daily_usd=5, budget_user_monthly_usd=2)
    for text, user in (("one", "u1"), ("two", "u2"), ("three", "u1")):
        await rig.turn(text, user=user)
    client = await rig.signed_in()
    page = await client.get("/admin")
    assert page.status == 200
    assert cell(page.text, "total-turns") == "3" and cell(page.text, "total-people") == "2"
    assert page.text.count('<svg class="chart"') == 4
    assert page.text.count('<rect class="bar"') == 4 * 30, "a bar per day and chart"
    assert "workspace per day" in page.text and "person per month" in page.text
    assert page.text.count('<svg class="meter') == 1 + 2, "the workspace, and each person"


async def test_usage_by_dimension_filters_by_date_and_exports_csv(admin: AdminRig) -> None:
    await admin.turn("hello", user="=HYPERLINK(1)", channel="C-sales")
    client = await admin.signed_in()
    page = await client.get("/admin/usage")
    for dimension in ("workspace", "channel", "user", "model"):
        assert f'id="usage-{dimension}"' in page.text
    assert "C-sales" in page.text
    empty = await client.get("/admin/usage?from=2020-01-01&to=2020-01-31")
    assert "No usage in this range." in empty.text and "C-sales" not in empty.text
    bad = await client.get("/admin/usage?from=yesterday")
    assert "Dates are YYYY-MM-DD" in bad.text
    exported = await client.get("/admin/usage.csv?by=user")
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == [
        "platform",
        "workspace",
        "user_id",
        "calls",
        "prompt_tokens",
        "cached_tokens",
        "completion_tokens",
        "cost_usd",
    ]
    assert rows[1][2] == "'=HYPERLINK(1)", "a formula is not run by a spreadsheet"
    assert int(rows[1][3]) >= 1 and float(rows[1][7]) > 0
    assert (await client.get("/admin/usage.csv?by=secret")).status == 400


async def test_quality_shows_feedback_when_there_is_some_and_failed_turns(
    admin: AdminRig, sim: Simulator
) -> None:
    await admin.turn("a good answer please")
    sim.fail_next("chat", Fail(400, message="the request was bad"))
    await admin.turn("this fails")
    client = await admin.signed_in()
    page = await client.get("/admin/quality")
    assert "No feedback recorded yet." in page.text
    assert 'id="failed-turns"' in page.text and "the request was bad" in page.text
    [(error,)] = await admin.services.store.db.fetchall(
        "SELECT error FROM turns WHERE status = 'failed'"
    )
    kind = error.partition(":")[0]
    assert f"<tr><td>{kind}</td><td>1</td></tr>" in page.text, "failures by kind"
    done = await admin.services.store.db.fetchone("SELECT id FROM turns WHERE status = 'done'")
    assert done is not None
    await admin.services.store.interactive.rate(done[0], "u9", "positive")
    page = await client.get("/admin/quality")
    assert 'id="feedback"' in page.text and "No feedback recorded yet." not in page.text
    assert "100%" in page.text


async def test_moderation_shows_the_log_as_stored(make_admin, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    rig = await make_admin()
    sim.flag("shouting-insult", harassment=0.97)
    await rig.turn("shouting-insult at you", user="u7")
    client = await rig.signed_in()
    page = await client.get("/admin/moderation")
    assert 'id="moderation-log"' in page.text and "harassment" in page.text
    assert "u7" in page.text and "withheld" in page.text, "without MODERATION_KEEP_TEXT: sizes"
    assert "shouting-insult" not in page.text


async def test_a_conversation_page_shows_turns_tools_tokens_cost_latency_and_moderation(
    make_admin, sim: Simulator
) -> None:  # type: ignore[no-untyped-def]
    rig = await make_admin()
    await rig.turn("what is 6*7?", user="u1", thread="math")
    sim.flag("rude-word", harassment=0.99)
    await rig.turn("rude-word", user="u1", thread="math")
    [found] = await rig.services.store.browse.search(text="6*7")
    client = await rig.signed_in()
    page = await client.get(f"/admin/conversations/{found.id}")
    assert page.status == 200
    assert "call calculate(" in page.text, "the tool call and its arguments"
    assert "result of" in page.text and "42" in page.text
    assert page.text.count('class="turn card"') == 2
    assert "latency" in page.text and " in / " in page.text and "$0." in page.text
    assert "gpt-6-luna" in page.text
    assert "moderation · input · block · harassment" in page.text
    assert "input_blocked" in page.text, "the refused turn's reason"
    listing = await client.get("/admin/conversations?user=u1")
    assert f"/admin/conversations/{found.id}" in listing.text


async def test_settings_change_a_channel_the_way_config_does_and_are_audited(
    admin: AdminRig,
) -> None:
    await admin.turn("hello", channel="C1")
    client = await admin.signed_in()
    scope = "channel:console:w1:C1"
    page = await client.get(f"/admin/settings?scope={scope}")
    assert 'id="settings-form"' in page.text and "calculate" in page.text
    form = {
        "csrf_token": await client.csrf(f"/admin/settings?scope={scope}"),
        "scope": scope,
        "system_prompt": "Answer like a pirate.\r\nAlways.",
        "model": "gpt-6.1-sol",
        "temperature": "",
        "max_output_tokens": "",
        "summary": "off",
        "backend": "",
        "tool.calculate": "disable",
    }
    saved = await client.post("/admin/settings", form)
    assert saved.status == 303 and "saved=4" in saved.location
    assert await admin.services.store.scoped.in_scope(scope) == {
        "system_prompt": "Answer like a pirate.\nAlways.",
        "model": "gpt-6.1-sol",
        "summary": False,
        "tool.calculate": False,
    }
    page = await client.get(saved.location)
    assert "Saved (4 changes)" in page.text and 'id="setting-changes"' in page.text
    entries = await admin.services.store.audit.recent(action_prefix="setting.")
    assert {e.detail["name"] for e in entries} == {
        "system_prompt",
        "model",
        "summary",
        "tool.calculate",
    }
    assert {(e.actor, e.detail["via"]) for e in entries} == {("admin-token", "site")}
    again = await client.post("/admin/settings", form)
    assert "saved=0" in again.location, "unchanged values are not rewritten"
    cleared = await client.post(
        "/admin/settings", {**form, "model": "", "tool.calculate": "inherit"}
    )
    assert "saved=2" in cleared.location
    assert "model" not in await admin.services.store.scoped.in_scope(scope)


async def test_invalid_settings_change_nothing(admin: AdminRig) -> None:
    await admin.turn("hello")
    client = await admin.signed_in()
    scope = "channel:console:w1:c1"
    form = {
        "csrf_token": await client.csrf(f"/admin/settings?scope={scope}"),
        "scope": scope,
        "model": "gpt-x",
        "temperature": "7",
        "max_output_tokens": "many",
    }
    page = await client.post("/admin/settings", form)
    assert page.status == 400 and "temperature" in page.text and "max_output_tokens" in page.text
    assert await admin.services.store.scoped.in_scope(scope) == {}
    bad_scope = await client.post("/admin/settings", {**form, "scope": "thread:x"})
    assert bad_scope.status == 400
    assert (await client.get("/admin/settings?scope=nonsense")).status == 400


async def test_the_site_erases_a_person_after_they_are_named_twice(admin: AdminRig) -> None:
    await admin.turn("delete my data please", user="u5")
    await admin.turn("keep mine", user="u6", thread="t2")
    client = await admin.signed_in()
    page = await client.get("/admin/data?user=u5")
    assert 'value="u5"' in page.text
    token = await client.csrf()
    mismatch = await client.post(
        "/admin/purge", {"csrf_token": token, "user_id": "u5", "confirm": "u6"}
    )
    assert mismatch.status == 400 and "nothing was erased" in mismatch.text
    done = await client.post(
        "/admin/purge", {"csrf_token": token, "user_id": "u5", "confirm": "u5"}
    )
    assert done.status == 303 and done.location == "/admin/data?purged=u5"
    report = await client.get(done.location)
    assert 'id="purge-report"' in report.text and "Erased u5: 1 messages, 1 answers" in report.text
    contents = [
        r[0] for r in await admin.services.store.db.fetchall("SELECT content FROM messages")
    ]
    assert "delete my data please" not in contents and "keep mine" in contents
    assert contents.count(REMOVED_TEXT) == 2
    assert "purge.user" in report.text and "admin-token" in report.text, "the audit log"


async def test_health_shows_processes_the_model_endpoint_and_platforms(
    make_admin, sim: Simulator
) -> None:  # type: ignore[no-untyped-def]
    rig = await make_admin(slack_bot_token="xoxb-1", slack_signing_secret="s" * 20)
    await rig.services.store.processes.beat()
    await rig.turn("hi")
    client = await rig.signed_in()
    page = await client.get("/admin/health")
    assert rig.services.store.processes.owner in page.text and "alive" in page.text
    assert re.search(r'id="model-probe"><span class="status done">reachable', page.text)
    assert "Events API over HTTP" in page.text and "not configured" in page.text
    await sim.stop()
    down = await client.get("/admin/health")
    assert re.search(r'id="model-probe"><span class="status failed">unreachable', down.text)
