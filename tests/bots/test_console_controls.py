"""The console's reply controls: /good and /bad rate the last answer, /again regenerates it, and
a tool call that needs approval asks at the prompt."""

from __future__ import annotations

import io

from bots.console.chat import chat
from bots.services import Services
from simulator import Simulator, Text, ToolCalls
from tests.slack.test_slack_approvals import add_guarded_tool


async def _session(services: Services, lines: list[str]) -> str:
    out = io.StringIO()
    await chat(services.engine, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out)
    return out.getvalue()


async def test_good_bad_and_again(services: Services, sim: Simulator) -> None:
    sim.enqueue(Text("first answer"), Text("second answer"))
    shown = await _session(services, ["hello", "/good", "/bad too short", "/again", "/quit"])
    assert "first answer" in shown and "second answer" in shown
    assert shown.count("Thanks") == 2
    rows = await services.store.db.fetchall("SELECT value, comment FROM feedback")
    assert [tuple(r) for r in rows] == [("negative", "too short")]
    attempts = await services.store.db.fetchall("SELECT attempt FROM turns")
    assert [r[0] for r in attempts] == [2]


async def test_nothing_to_rate_yet(services: Services) -> None:
    shown = await _session(services, ["/good", "/quit"])
    assert "Nothing to act on yet" in shown


async def test_a_tool_call_is_approved_at_the_prompt(services: Services, sim: Simulator) -> None:
    runs: list[str] = []
    add_guarded_tool(services, runs)
    sim.enqueue(ToolCalls.of(("delete_record", {"record": "1"})), Text("deleted"))
    shown = await _session(services, ["delete record 1", "y", "/quit"])
    assert "(approval)" in shown and "Approved." in shown and "deleted" in shown
    assert runs == ["1"]
