"""Tool approval on Slack: a tool declared `@tool(approval=True)` waits for the asker (or an
admin) to click Approve; denial and expiry go back to the model; a restart between the prompt
and the click resumes the turn on the new process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bots.services import Services
from bots.settings import AppSettings as Settings
from core.plugin import tool
from simulator import Simulator, Text, ToolCalls
from tests.fakes.slack import FakeSlack, block_actions
from tests.slack.rig import mention, open_rig
from tests.slack.test_slack_controls import _ephemeral, _told


def add_guarded_tool(services: Services, runs: list[str]) -> None:
    @tool(approval=True)
    async def delete_record(record: str) -> str:
        """Delete a record for good.

        Args:
            record: the record's id
        """
        runs.append(record)
        return f"record {record} deleted"

    services.engine.backends.registry.add(delete_record, plugin="tests")  # type: ignore[union-attr]


async def _prompt(slack: FakeSlack) -> tuple[str, str, str]:
    """The approval prompt's message ts and its Approve and Deny ids."""
    await slack.wait_until(
        lambda: any("Approve" in str(m.get("blocks")) for m in slack.messages.values())
    )
    ts, message = next(
        (t, m) for t, m in slack.messages.items() if "Approve" in str(m.get("blocks"))
    )
    ids = [e["action_id"] for b in message["blocks"] for e in b.get("elements", [])]
    return ts, ids[0], ids[1]


def _tool_output(sim: Simulator) -> str:
    body = sim.requests_to("chat")[-1].body or {}
    return next(str(m["content"]) for m in body["messages"] if m["role"] == "tool")


async def test_approve_runs_the_tool_once_and_the_model_answers(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> None:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as rig:
        runs: list[str] = []
        add_guarded_tool(rig.services, runs)
        sim.enqueue(ToolCalls.of(("delete_record", {"record": "42"})), Text("Deleted it."))
        await rig.event(mention("delete record 42"))
        ts, approve, _ = await _prompt(rig.slack)
        assert "delete_record" in rig.slack.messages[ts]["text"] and runs == []
        await rig.interact(block_actions(approve, user="U2", message_ts=ts))  # not the asker
        assert "or an admin can decide this" in await _ephemeral(rig.slack)
        await rig.interact(block_actions(approve, message_ts=ts))
        await rig.slack.wait_for("chat.stopStream")
        await rig.services.engine.drain()
        assert runs == ["42"]
        assert _tool_output(sim) == "record 42 deleted"
        assert rig.slack.messages[ts]["text"] == "Approved by <@U1>: `delete_record`."
        assert "button" not in str(rig.slack.messages[ts]["blocks"])
        await rig.interact(block_actions(approve, message_ts=ts))  # a second click
        assert await _ephemeral(rig.slack, 3) == "That was already approved."
        assert runs == ["42"]


async def test_a_denial_is_the_tools_result_and_the_model_answers(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> None:
    async with open_rig(sim, make_settings, aiohttp_server_factory) as rig:
        runs: list[str] = []
        add_guarded_tool(rig.services, runs)
        sim.enqueue(ToolCalls.of(("delete_record", {"record": "7"})), Text("Left it alone."))
        await rig.event(mention("delete record 7"))
        ts, _, deny = await _prompt(rig.slack)
        await rig.interact(block_actions(deny, message_ts=ts))
        await rig.slack.wait_for("chat.stopStream")
        await rig.services.engine.drain()
        assert runs == []
        assert "denied" in _tool_output(sim)


async def test_an_unanswered_approval_expires(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> None:
    async with open_rig(
        sim, make_settings, aiohttp_server_factory, tool_approval_minutes=0.01
    ) as rig:
        runs: list[str] = []
        add_guarded_tool(rig.services, runs)
        sim.enqueue(ToolCalls.of(("delete_record", {"record": "9"})), Text("Nobody answered."))
        await rig.event(mention("delete record 9"))
        ts, approve, _ = await _prompt(rig.slack)
        await rig.slack.wait_for("chat.stopStream", timeout=10)
        await rig.services.engine.drain()
        assert "in time" in _tool_output(sim) and runs == []
        await rig.interact(block_actions(approve, message_ts=ts))  # too late
        assert await _ephemeral(rig.slack) == "That request expired; the tool did not run."
        assert runs == []


async def test_an_approval_after_a_restart_resumes_the_turn_on_the_new_process(
    sim: Simulator, make_settings: Callable[..., Settings], aiohttp_server_factory: Any
) -> None:
    runs: list[str] = []
    sim.enqueue(ToolCalls.of(("delete_record", {"record": "5"})), Text("Done after the restart."))
    async with open_rig(sim, make_settings, aiohttp_server_factory) as first:
        add_guarded_tool(first.services, runs)
        await first.event(mention("delete record 5"))
        ts, approve, _ = await _prompt(first.slack)
        # The process dies while it waits: its work is abandoned, its heartbeat is gone.
        for task in list(first.services.engine._tasks):
            task.cancel()
        await first.services.engine.drain()
        await first.services.store.processes.leave()
    async with open_rig(sim, make_settings, aiohttp_server_factory) as second:
        add_guarded_tool(second.services, runs)
        await second.interact(block_actions(approve, message_ts=ts, thread_ts="100.000001"))
        assert await _ephemeral(second.slack) == "Approved."
        await second.slack.wait_until(
            lambda: any(
                "Done after the restart." in str(m.get("text"))
                for m in second.slack.messages.values()
            )
        )
        await second.services.engine.drain()
        assert runs == ["5"]
        assert _tool_output(sim) == "record 5 deleted"
        rows = await second.services.store.db.fetchall(
            "SELECT role, content, superseded FROM messages WHERE role != 'user' ORDER BY id"
        )
        current = [(r[0], r[1]) for r in rows if not r[2]]
        assert current[-1] == ("assistant", "Done after the restart.")
        assert ("tool", "record 5 deleted") in current
        assert len(_told(second.slack)) == 1
