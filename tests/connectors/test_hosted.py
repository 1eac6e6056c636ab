"""OpenAI's hosted tools on the Responses wire (web search citations, code interpreter, hosted MCP
servers and their approval requests), switched per scope, and said to be unavailable on Chat."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import structlog

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from bots.slack.mrkdwn import to_mrkdwn
from core.connectors import ServerConfig, choose_mode
from core.render.citations import link_citations
from simulator import CodeRun, McpApproval, Simulator, Text, WebSearch
from tests.conftest import ApprovalRecordingReply, RecordingReply, answer_approval, make_event
from tests.connectors.conftest import HttpServer


async def _ask(services: Services, text: str) -> RecordingReply:
    reply = RecordingReply()
    await services.engine.handle(make_event(text), reply)
    return reply


def _hosted(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in body.get("tools", []) if t.get("type") != "function"]


async def test_web_search_citations_become_links_on_both_platforms(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(
        make_settings(openai_wire_api="responses", openai_web_search=True, moderation_enabled=False)
    )
    try:
        sim.enqueue(
            WebSearch(
                "Parley 2.0 ships on Friday, says the release page.",
                query="parley 2.0 release date",
                citations=(("https://example.com/releases", "Releases", "the release page"),),
            )
        )
        reply = await _ask(services, "when does parley 2.0 ship?")
        assert reply.final == (
            "Parley 2.0 ships on Friday, says [the release page](https://example.com/releases)."
        )
        assert _hosted(sim.requests_to("responses")[0].body or {}) == [{"type": "web_search"}]
        assert "<https://example.com/releases|the release page>" in to_mrkdwn(reply.final)
    finally:
        await services.close()


def test_citation_spans_that_are_links_already_or_empty() -> None:
    text = "See ([docs](https://d.example/x)) and more."
    already = {"url": "https://d.example/x", "start_index": 4, "end_index": 33}
    end = {
        "url": "https://e.example/",
        "title": "E",
        "start_index": len(text),
        "end_index": len(text),
    }
    assert link_citations(text, [already, end]) == text + " ([E](https://e.example/))"


async def test_code_interpreter_and_switches_per_channel(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(
        make_settings(
            openai_wire_api="responses",
            openai_web_search=True,
            openai_code_interpreter=True,
            moderation_enabled=False,
            admin_user_ids="u1",
        )
    )
    try:
        sim.enqueue(CodeRun("The mean is 4.5.", code="print(sum(range(10))/10)", output="4.5"))
        reply = await _ask(services, "mean of 0..9?")
        assert reply.final == "The mean is 4.5."
        kinds = [t["type"] for t in _hosted(sim.requests_to("responses")[0].body or {})]
        assert kinds == ["web_search", "code_interpreter"]
        listing = await services.engine.command(make_event(""), "tool", "")
        assert (
            "Hosted by OpenAI (the model runs them): web_search, code_interpreter." in listing.text
        )
        done = await services.engine.command(make_event(""), "tools", "disable web_search channel")
        assert done.text == "web_search is now disabled for this channel."
        await _ask(services, "again")
        kinds = [t["type"] for t in _hosted(sim.requests_to("responses")[-1].body or {})]
        assert kinds == ["code_interpreter"]
    finally:
        await services.close()


async def test_on_the_chat_wire_hosted_tools_are_not_offered_and_that_is_said(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    with structlog.testing.capture_logs() as logs:
        services = await build_services(
            make_settings(openai_wire_api="chat", openai_web_search=True, moderation_enabled=False)
        )
    try:
        [warning] = [e for e in logs if e["event"] == "hosted_tools_unavailable"]
        assert warning["tools"] == ["web_search"] and "Chat Completions" in warning["reason"]
        reply = await _ask(services, "search the web")
        assert reply.final == "You said: search the web", "the turn is answered, not failed"
        assert _hosted(sim.requests_to("chat")[0].body or {}) == []
        listing = await services.engine.command(make_event(""), "tool", "")
        assert (
            "unavailable on the Chat Completions wire (OPENAI_WIRE_API): web_search" in listing.text
        )
    finally:
        await services.close()


def test_which_servers_run_hosted() -> None:
    http = ServerConfig("web", url="https://mcp.example/mcp")
    stdio = ServerConfig("files", command="run")
    assert choose_mode(http, "auto", wire="responses", is_openai=True) == "hosted"
    assert choose_mode(http, "auto", wire="responses", is_openai=False) == "local"
    assert choose_mode(http, "auto", wire="chat", is_openai=True) == "local"
    assert choose_mode(http, "local", wire="responses", is_openai=True) == "local"
    assert choose_mode(stdio, "hosted", wire="responses", is_openai=True) == "local"


async def test_a_hosted_mcp_servers_approval_request_is_decided_by_the_asker(
    sim: Simulator,
    make_settings: Callable[..., Settings],
    mcp_config: Callable[..., str],
    http_server: HttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The simulator is not OpenAI's URL, so `auto` would keep the server local: choose hosted
    # for HTTP servers the way OpenAI's own URL would (the choice itself is tested above).
    monkeypatch.setattr(
        "bots.services.choose_mode", lambda c, *_a, **_k: "hosted" if c.url else "local"
    )
    config = mcp_config(
        web={"url": http_server.url, "headers": {"X-Key": "k"}, "require_approval": ["echo"]}
    )
    services = await build_services(
        make_settings(
            mcp_config=config,
            openai_wire_api="responses",
            moderation_enabled=False,
            tool_approval_minutes=1,  # a failing test ends in a minute, not ten
        )
    )
    try:
        for approve in (True, False):
            sim.enqueue(
                McpApproval("", server_label="web", name="echo", arguments='{"text": "hi"}'),
                Text("Echoed." if approve else "You declined, so I did not."),
            )
            reply = ApprovalRecordingReply()
            turn = asyncio.create_task(services.engine.handle(make_event("echo hi"), reply))
            prompt = await asyncio.wait_for(reply.prompts.get(), 30)
            assert prompt.tool == "web__echo" and prompt.arguments == '{"text": "hi"}'
            assert (await answer_approval(services.engine, prompt, approve=approve)).ok
            await asyncio.wait_for(turn, 30)
            first, second = (r.body or {} for r in sim.requests_to("responses")[-2:])
            [mcp] = _hosted(first)
            assert mcp["type"] == "mcp" and mcp["server_label"] == "web"
            assert mcp["server_url"] == http_server.url and mcp["headers"] == {"X-Key": "k"}
            assert mcp["require_approval"] == {"always": {"tool_names": ["echo"]}}
            offered = [t["name"] for t in first["tools"] if t.get("type") == "function"]
            assert not any(name.startswith("web__") for name in offered), "hosted, not local"
            request = [i for i in second["input"] if i.get("type") == "mcp_approval_request"][-1]
            response = [i for i in second["input"] if i.get("type") == "mcp_approval_response"]
            assert request["server_label"] == "web" and request["name"] == "echo"
            assert response[-1]["approval_request_id"] == request["id"]
            assert response[-1]["approve"] is approve
            assert ("reason" in response[-1]) is not approve
        await _ask(services, "and now?")  # the stored approval exchanges go back in order
        later = sim.requests_to("responses")[-1].body or {}
        kinds = [i.get("type") for i in later["input"]]
        assert kinds.index("mcp_approval_request") < kinds.index("mcp_approval_response")
        assert json.dumps(later).count("mcp_approval_response") == 2
    finally:
        await services.close()
