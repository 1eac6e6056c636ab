"""Two `web` processes on one database receive the same Approve click at once: the decision is
made once (a conditional UPDATE), the tool runs once, the turn answers once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from simulator import Simulator, Text, ToolCalls
from tests.fakes.slack import FakeSlack, block_actions, interaction_body, sign
from tests.reliability.processes import ROOT, BotProcess
from tests.reliability.test_crash_recovery import SECRET, _env
from tests.reliability.test_two_processes import _deliver
from tests.slack.rig import event_callback, mention

PLUGIN = '''
from pathlib import Path
from core.plugin import tool

RUNS = Path(__file__).with_name("runs.txt")


@tool(approval=True)
async def delete_record(record: str) -> str:
    """Delete a record for good.

    Args:
        record: the record's id
    """
    with RUNS.open("a") as runs:
        runs.write(record + "\\n")
    return f"record {record} deleted"
'''


def _plugins(tmp_path: Path) -> Path:
    """A `plugins` package with one tool that needs approval (first on the processes' path)."""
    package = tmp_path / "guarded" / "plugins"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "guarded.py").write_text(PLUGIN)
    return package


async def _click(http: aiohttp.ClientSession, port: int, body: bytes) -> int:
    headers = {**sign(SECRET, body), "Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as r:
        return r.status


async def test_the_same_approve_on_two_processes_runs_the_tool_once(
    sim: Simulator, on_both_backends: str, tmp_path: Path
) -> None:
    package = _plugins(tmp_path)
    async with FakeSlack() as slack:
        env = {**_env(slack, sim, on_both_backends), "PYTHONPATH": f"{package.parent}:{ROOT}"}
        # Started outside the checkout, so that `plugins` is the package above, not the repo's.
        a = await BotProcess.start("web", env, cwd=package.parent)
        b = await BotProcess.start("web", env, cwd=package.parent)
        try:
            ports = [await a.port(), await b.port()]
            sim.enqueue(ToolCalls.of(("delete_record", {"record": "42"})), Text("Deleted it."))
            body = json.dumps(event_callback(mention("delete record 42"), "EvA1")).encode()
            async with aiohttp.ClientSession() as http:
                assert await _deliver(http, ports[0], body) == 200
                await slack.wait_until(
                    lambda: any("Approve" in str(m.get("blocks")) for m in slack.messages.values()),
                    timeout=30,
                )
                ts, prompt = next(
                    (t, m) for t, m in slack.messages.items() if "Approve" in str(m.get("blocks"))
                )
                approve = prompt["blocks"][1]["elements"][0]["action_id"]
                click = interaction_body(block_actions(approve, message_ts=ts))
                statuses = await asyncio.gather(*(_click(http, port, click) for port in ports))
            assert statuses == [200, 200]
            await slack.wait_for("chat.stopStream", timeout=30)
            await slack.wait_for("chat.postEphemeral", count=3, timeout=30)  # with the Stop offer
            told = sorted(
                c.args["text"]
                for c in slack.calls_to("chat.postEphemeral")
                if c.args["text"] != "Writing the answer…"  # the Stop offer of the stream
            )
            assert told == ["Approved.", "That was already approved."]
        finally:
            assert await a.stop() == 0
            assert await b.stop() == 0
        assert (package / "runs.txt").read_text() == "42\n"
        assert len(slack.calls_to("chat.stopStream")) == 1
        assert a.count("tool_call_decided") + b.count("tool_call_decided") == 1
