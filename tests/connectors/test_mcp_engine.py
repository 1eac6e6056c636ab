"""MCP servers as tool sources, end to end: the fake MCP server (stdio and loopback HTTP), the
engine, the simulator scripting `<server>__<tool>` calls, on both wire APIs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from bots.web import build_web_app
from core.connectors import McpConfigError
from core.connectors.connection import State
from core.interactive.approvals import DENIED
from simulator import Simulator, Text, ToolCalls
from tests.conftest import ApprovalRecordingReply, RecordingReply, answer_approval, make_event
from tests.connectors.conftest import ROOT, HttpServer, stdio_server


def _outputs(sim: Simulator, endpoint: str) -> list[Any]:
    """The tool results of the last request, after its last user message (this turn's)."""
    body = sim.requests_to(endpoint)[-1].body or {}
    items = body["messages"] if endpoint == "chat" else body["input"]
    last_user = max(i for i, item in enumerate(items) if item.get("role") == "user")
    turn = items[last_user:]
    if endpoint == "chat":
        return [m["content"] for m in turn if m["role"] == "tool"]
    return [i["output"] for i in turn if i.get("type") == "function_call_output"]


def _offered(sim: Simulator, endpoint: str) -> dict[str, Any]:
    body = sim.requests_to(endpoint)[0].body or {}
    tools = [t.get("function", t) for t in body.get("tools", [])]
    return {t["name"]: t for t in tools if "name" in t}


async def _build(make_settings: Callable[..., Settings], config: str, **more: Any) -> Services:
    return await build_services(
        make_settings(mcp_config=config, moderation_enabled=False, mcp_mode="local", **more)
    )


async def _ask(services: Services, text: str, **kw: str) -> RecordingReply:
    reply = RecordingReply()
    await services.engine.handle(make_event(text, **kw), reply)
    return reply


@pytest.mark.parametrize("wire", ["chat", "responses"])
async def test_tools_of_a_stdio_and_an_http_server_answer_through_the_engine(
    sim: Simulator,
    make_settings: Callable[..., Settings],
    mcp_config: Callable[..., str],
    http_server: HttpServer,
    wire: str,
) -> None:
    config = mcp_config(fake=stdio_server(), web={"url": http_server.url})
    services = await _build(make_settings, config, openai_wire_api=wire)
    try:
        sim.enqueue(
            ToolCalls.of(
                ("fake__add", {"a": 40, "b": None}),  # strict: the optional b is sent as null
                ("web__echo", {"text": "over http", "shout": True}),
            ),
            Text("42, and it shouted back."),
        )
        reply = await _ask(services, "add 40 and ask the web server to shout")
        endpoint = "chat" if wire == "chat" else "responses"
        assert reply.final == "42, and it shouted back."
        assert _outputs(sim, endpoint) == ["42", "OVER HTTP"]
        offered = _offered(sim, endpoint)
        assert offered["fake__add"]["strict"] is True
        add = offered["fake__add"]["parameters"]
        assert add["required"] == ["a", "b"] and add["additionalProperties"] is False
        assert offered["web__echo"]["strict"] is True
        assert offered["fake__code"]["strict"] is False, "minLength cannot be strict: sent as is"
        assert offered["fake__code"]["parameters"]["properties"]["value"]["minLength"] == 3
        assert "calculate" in offered, "plugins and MCP tools are offered together"
    finally:
        await services.close()


async def test_a_schema_that_cannot_be_strict_is_named_in_the_start_up_log(
    make_settings: Callable[..., Settings], mcp_config: Callable[..., str]
) -> None:
    with structlog.testing.capture_logs() as logs:
        services = await _build(make_settings, mcp_config(fake=stdio_server()))
    await services.close()
    [line] = [e for e in logs if e["event"] == "mcp_tool_not_strict"]
    assert line["tool"] == "fake__code" and "minLength" in line["reason"]
    ready = [e for e in logs if e["event"] == "mcp_server_ready"]
    assert ready[0]["server"] == "fake" and ready[0]["tools"] >= 10


async def test_a_changed_tool_list_is_fetched_again(
    sim: Simulator, make_settings: Callable[..., Settings], mcp_config: Callable[..., str]
) -> None:
    services = await _build(make_settings, mcp_config(fake=stdio_server()))
    try:
        catalog = services.engine.backends.registry
        assert catalog is not None and catalog.get("fake__extra") is None
        sim.enqueue(ToolCalls.of(("fake__grow", {})), Text("grown"))
        await _ask(services, "grow")
        assert services.connectors is not None
        fake = services.connectors.connections["fake"]
        await fake.wait_until(lambda c: any(t.name == "extra" for t in c.tools), 20)
        assert catalog.get("fake__extra") is not None
        sim.enqueue(ToolCalls.of(("fake__extra", {"word": "hello"})), Text("ok"))
        await _ask(services, "use the new tool")
        assert _outputs(sim, "chat") == ["extra hello"]
    finally:
        await services.close()


async def test_a_server_that_crashes_mid_call_is_restarted_and_the_others_keep_working(
    sim: Simulator,
    make_settings: Callable[..., Settings],
    mcp_config: Callable[..., str],
    http_server: HttpServer,
) -> None:
    services = await _build(
        make_settings, mcp_config(fake=stdio_server(), web={"url": http_server.url})
    )
    try:
        assert services.connectors is not None
        fake = services.connectors.connections["fake"]
        sim.enqueue(
            ToolCalls.of(("fake__whoami", {})),
            ToolCalls.of(("fake__crash", {}), ("web__echo", {"text": "still here", "shout": None})),
            Text("The fake server crashed; the web server answered."),
        )
        reply = await _ask(services, "crash it")
        assert reply.final == "The fake server crashed; the web server answered."
        before, crashed, echoed = _outputs(sim, "chat")
        assert crashed.startswith("error: MCP server fake:") and "Connection closed" in crashed
        assert echoed == "still here"
        await fake.wait_until(lambda c: c.state is State.UP and c.restarts >= 1, 20)
        sim.enqueue(ToolCalls.of(("fake__whoami", {})), Text("back"))
        assert (await _ask(services, "who are you now")).final == "back"
        [now] = _outputs(sim, "chat")
        assert now.startswith("fake pid ") and now != before, "a new process answered"
    finally:
        await services.close()


async def test_a_call_that_never_answers_times_out_and_the_turn_still_answers(
    sim: Simulator, make_settings: Callable[..., Settings], mcp_config: Callable[..., str]
) -> None:
    services = await _build(make_settings, mcp_config(fake=stdio_server(timeout=1)))
    try:
        sim.enqueue(ToolCalls.of(("fake__hang", {})), Text("It did not answer."))
        reply = await _ask(services, "call the slow tool")
        assert reply.final == "It did not answer."
        assert _outputs(sim, "chat") == [
            "error: fake__hang did not answer within 1 s (MCP server fake)"
        ]
        assert services.connectors is not None
        assert services.connectors.connections["fake"].state is State.UP, "pings still answered"
    finally:
        await services.close()


async def test_require_approval_waits_for_the_asker_to_approve_or_deny(
    sim: Simulator, make_settings: Callable[..., Settings], mcp_config: Callable[..., str]
) -> None:
    config = mcp_config(fake=stdio_server(require_approval=["add"]))
    services = await _build(make_settings, config, tool_approval_minutes=1)
    try:
        for approve, expected in ((True, "2"), (False, DENIED)):
            sim.enqueue(ToolCalls.of(("fake__add", {"a": 1, "b": 1})), Text("done"))
            reply = ApprovalRecordingReply()
            turn = asyncio.create_task(services.engine.handle(make_event("add"), reply))
            prompt = await asyncio.wait_for(reply.prompts.get(), 30)
            assert prompt.tool == "fake__add" and prompt.requested_by == "u1"
            assert json.loads(prompt.arguments) == {"a": 1, "b": 1}
            refused = await answer_approval(services.engine, prompt, approve=True, user="u2")
            assert not refused.ok, "only the asker (or an admin) decides"
            assert (await answer_approval(services.engine, prompt, approve=approve)).ok
            await asyncio.wait_for(turn, 30)
            assert reply.final == "done" and _outputs(sim, "chat") == [expected]
        sim.enqueue(ToolCalls.of(("fake__echo", {"text": "free", "shout": None})), Text("ok"))
        await _ask(services, "echo", user="u1")
        assert _outputs(sim, "chat") == ["free"], "tools not listed need no approval"
    finally:
        await services.close()


async def test_a_huge_result_is_capped_and_says_so(
    sim: Simulator,
    make_settings: Callable[..., Settings],
    mcp_config: Callable[..., str],
    http_server: HttpServer,
) -> None:
    config = mcp_config(fake=stdio_server(), web={"url": http_server.url})
    services = await _build(make_settings, config)
    try:
        sim.enqueue(
            ToolCalls.of(
                ("fake__huge", {"megabytes": 20}),
                ("web__huge", {"megabytes": 20}),
                ("fake__huge", {"megabytes": 1}),
            ),
            Text("too big"),
        )
        reply = await _ask(services, "get everything")
        assert reply.final == "too big"
        stdio, http, small = _outputs(sim, "chat")
        assert (
            "error: MCP server fake: the result is " in stdio and "MB, over the 8 MB cap" in stdio
        )
        assert http.startswith("error: MCP server web:")
        assert small.endswith(
            "[truncated: the tool returned 1,048,576 characters; the first 20,000 are shown]"
        )
        sim.enqueue(ToolCalls.of(("fake__add", {"a": 1, "b": None})), Text("fine"))
        await _ask(services, "still working?")
        assert _outputs(sim, "chat") == ["3"]
    finally:
        await services.close()


async def test_images_and_resources_become_model_input(
    sim: Simulator, make_settings: Callable[..., Settings], mcp_config: Callable[..., str]
) -> None:
    services = await _build(
        make_settings, mcp_config(fake=stdio_server()), openai_wire_api="responses"
    )
    try:
        sim.enqueue(ToolCalls.of(("fake__picture", {})), Text("a picture"))
        await _ask(services, "show me")
        [output] = _outputs(sim, "responses")
        text, image = output
        assert text["type"] == "input_text" and "a tiny picture" in text["text"]
        assert "[image 1: image/png" in text["text"]
        assert "[resource file:///notes.txt]\nresource text" in text["text"]
        assert image["type"] == "input_image" and image["image_url"].startswith("data:image/png")
    finally:
        await services.close()


async def test_switched_off_mcp_tools_are_not_offered_nor_run(
    sim: Simulator, make_settings: Callable[..., Settings], mcp_config: Callable[..., str]
) -> None:
    services = await _build(make_settings, mcp_config(fake=stdio_server()), admin_user_ids="u1")
    try:
        result = await services.engine.command(make_event(""), "tools", "disable fake__add channel")
        assert result.text == "fake__add is now disabled for this channel."
        sim.enqueue(ToolCalls.of(("fake__add", {"a": 1, "b": None})), Text("no"))
        await _ask(services, "add one")
        assert "fake__add" not in _offered(sim, "chat")
        assert _outputs(sim, "chat") == ["error: there is no tool named 'fake__add' here"]
        listing = await services.engine.command(make_event(""), "tool", "")
        assert "fake__echo" in listing.text and "fake__add" not in listing.text
        typed = await services.engine.command(make_event(""), "tool", "fake__echo text=typed")
        assert typed.text == "typed"
    finally:
        await services.close()


async def test_a_server_that_cannot_start_is_down_in_healthz_and_others_work(
    sim: Simulator, make_settings: Callable[..., Settings], mcp_config: Callable[..., str]
) -> None:
    config = mcp_config(
        fake=stdio_server(),
        missing={"command": "/nonexistent/mcp-server"},
        broken={
            "command": sys.executable,
            "args": ["-m", "tests.fakes.mcp_broken"],
            "cwd": str(ROOT),
        },
    )
    with structlog.testing.capture_logs() as logs:
        services = await _build(make_settings, config)
    try:
        down = {e["server"]: e["error"] for e in logs if e["event"] == "mcp_server_unavailable"}
        assert set(down) == {"missing", "broken"}
        assert "cannot start the program" in down["missing"]
        assert "malformed" in down["broken"]
        async with TestClient(TestServer(build_web_app(services))) as client:
            response = await client.get("/healthz")
            body = await response.json()
        assert response.status == 200 and body["status"] == "ok"
        assert body["mcp"]["fake"]["state"] == "up" and body["mcp"]["fake"]["tools"] >= 10
        assert body["mcp"]["missing"]["state"] == "down"
        assert "cannot start" in body["mcp"]["missing"]["error"]
        sim.enqueue(ToolCalls.of(("fake__add", {"a": 1, "b": None})), Text("3"))
        assert (await _ask(services, "add")).final == "3"
    finally:
        await services.close()


async def test_an_invalid_config_stops_the_start_with_one_line(
    make_settings: Callable[..., Settings], mcp_config: Callable[..., str]
) -> None:
    config = mcp_config(bad={"command": "x", "url": "http://127.0.0.1:1/mcp"})
    with pytest.raises(McpConfigError) as raised:
        await _build(make_settings, config)
    assert str(raised.value) == (
        "MCP server 'bad': give either command (a local program) or url (Streamable HTTP), not both"
    )


async def test_the_cli_refuses_a_bad_config_with_one_line_and_exit_2(
    tmp_path: Any, sim: Simulator
) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(
        '{"mcpServers": {"gh": {"url": "https://x/mcp", "headers": {"A": "${NOPE_TOKEN}"}}}}'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots",
        "console",
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "MCP_CONFIG": str(path),
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": sim.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "MODERATION_ENABLED": "false",
        },
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert err.decode().strip().splitlines()[-1] == (
        "error: MCP server 'gh': headers.A uses ${NOPE_TOKEN}, which is not set; set NOPE_TOKEN"
    )
