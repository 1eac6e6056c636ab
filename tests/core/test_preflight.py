"""Start-up checks: moderation endpoint present, its own endpoint, summary default, model list."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from bots.errors import StartupError
from bots.preflight import preflight
from bots.services import build_services
from bots.settings import AppSettings as Settings
from bots.settings import load_app_settings
from core.governance.moderation import UNAVAILABLE
from core.llm.connect import build_moderation_client
from core.logging import configure_logging
from simulator import Fail, Simulator
from tests.conftest import RecordingReply, make_event

KEY = "sk-test-key-0123456789"  # make_settings' key: never in a message
MODERATION_KEY = "sk-moderation-key-9876543210"

Serve = Callable[[web.Application], Awaitable[str]]


async def _preflight(settings: Settings, role: str = "web", **options: Any) -> list[str]:
    services = await build_services(settings)
    try:
        return await preflight(services, settings, role=role, **options)
    finally:
        await services.close()


def _no_moderations() -> web.Application:
    """A compatible server (vLLM, Ollama) that serves models but has no /v1/moderations."""

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "gpt-6-luna"}]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    return app


def _answers(status: int) -> web.Application:
    async def refuse(request: web.Request) -> web.Response:
        error = {"message": "Incorrect API key provided.", "code": "invalid_api_key"}
        return web.json_response({"error": error}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    return app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def slow_server(aiohttp_server_factory: Serve) -> AsyncIterator[str]:
    """A server whose moderation endpoint never answers (until the test ends)."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"results": []})

    app = web.Application()
    app.router.add_post("/v1/moderations", hang)
    url = await aiohttp_server_factory(app)
    yield url + "/v1"
    release.set()


@pytest.mark.parametrize("kind", ["404", "connection_refused", "timeout", "auth"])
async def test_an_unusable_moderation_endpoint_stops_the_start_naming_both_ways_out(
    kind: str,
    make_settings: Callable[..., Settings],
    aiohttp_server_factory: Serve,
    slow_server: str,
) -> None:
    if kind == "404":
        base_url = await aiohttp_server_factory(_no_moderations()) + "/v1"
    elif kind == "connection_refused":
        base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    elif kind == "timeout":
        base_url = slow_server
    else:
        base_url = await aiohttp_server_factory(_answers(401)) + "/v1"
    settings = make_settings(openai_base_url=base_url)
    with pytest.raises(StartupError) as caught:
        await _preflight(settings, moderation_timeout=0.3)
    message = str(caught.value)
    assert "\n" not in message, "one line"
    assert f"{base_url}/moderations" in message, "names the URL tried"
    assert "MODERATION_ENABLED=false" in message
    assert "OPENAI_MODERATION_BASE_URL" in message and "OPENAI_MODERATION_API_KEY" in message
    assert KEY not in message
    expected = {
        "404": "answered 404",
        "connection_refused": "could not be reached",
        "timeout": "did not answer within 0.3 seconds",
        "auth": "answered 401 (the key was refused)",
    }
    assert expected[kind] in message


async def test_without_the_check_every_message_is_refused(
    make_settings: Callable[..., Settings], sim: Simulator
) -> None:
    """What the start-up check prevents: a compatible server without moderations refuses all."""
    sim.fail_next("moderations", Fail(404, message="Unknown request URL"), times=10)
    services = await build_services(make_settings())
    try:
        reply = RecordingReply()
        await services.engine.handle(make_event("hello"), reply)
        assert reply.final == UNAVAILABLE or UNAVAILABLE in reply.notices
    finally:
        await services.close()


async def test_moderation_disabled_skips_the_check(
    make_settings: Callable[..., Settings], aiohttp_server_factory: Serve
) -> None:
    base_url = await aiohttp_server_factory(_no_moderations()) + "/v1"
    settings = make_settings(openai_base_url=base_url, moderation_enabled=False)
    assert await _preflight(settings) == []


async def test_fail_open_moderation_only_warns(
    make_settings: Callable[..., Settings], aiohttp_server_factory: Serve
) -> None:
    base_url = await aiohttp_server_factory(_no_moderations()) + "/v1"
    settings = make_settings(openai_base_url=base_url, moderation_fail_open=True)
    warnings = await _preflight(settings)
    assert len(warnings) == 1 and "unmoderated" in warnings[0]
    assert "MODERATION_ENABLED=false" in warnings[0]


async def test_a_working_moderation_endpoint_passes_with_one_tiny_request(
    make_settings: Callable[..., Settings], sim: Simulator
) -> None:
    assert await _preflight(make_settings()) == []
    [probe] = sim.requests_to("moderations")
    assert probe.body == {"model": "omni-moderation-latest", "input": ["ok"]}


async def test_moderation_uses_its_own_endpoint_while_the_chat_server_has_none(
    make_settings: Callable[..., Settings], sim: Simulator
) -> None:
    sim.fail_next("moderations", Fail(404, message="Unknown request URL"), times=50)
    async with Simulator(api_key=MODERATION_KEY) as moderation:
        settings = make_settings(
            openai_moderation_base_url=moderation.base_url,
            openai_moderation_api_key=MODERATION_KEY,
        )
        services = await build_services(settings)
        try:
            assert await preflight(services, settings, role="web") == []
            reply = RecordingReply()
            outcome = await services.engine.handle(make_event("hello there"), reply)
            assert outcome is not None and outcome.status == "done"
            assert reply.final and reply.final != UNAVAILABLE
            assert not sim.requests_to("moderations"), "nothing moderated on the chat server"
            # the probe, the input, and the output (the simulator checks the moderation key)
            assert len(moderation.requests_to("moderations")) >= 3
            assert not moderation.requests_to("chat")
            client = services.moderation_client
            assert client is not None and client is not services.openai
        finally:
            await services.close()
        assert client.is_closed(), "Services.close closes moderation's client too"


def test_a_moderation_key_alone_goes_to_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")  # read by the SDK if None
    settings = load_app_settings(
        openai_base_url="http://localhost:11434/v1",
        openai_api_key=None,
        openai_moderation_api_key=MODERATION_KEY,
        _env_file=None,
    )
    client = build_moderation_client(settings.openai)
    assert client is not None
    assert str(client.base_url) == "https://api.openai.com/v1/"
    assert client.api_key == MODERATION_KEY
    assert MODERATION_KEY in settings.secrets(), "redacted from logs like the other keys"
    assert build_moderation_client(load_app_settings(_env_file=None).openai) is None


@pytest.fixture
def clean_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_SUMMARY_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_model_env")
def test_the_summary_model_follows_the_chat_model_off_openai(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = {"openai_base_url": "http://localhost:11434/v1", "_env_file": None}
    assert load_app_settings(openai_model="llama3.1:8b", **local).models.summary == "llama3.1:8b"
    explicit = load_app_settings(
        openai_model="llama3.1:8b", openai_summary_model="qwen2.5:3b", **local
    )
    assert explicit.models.summary == "qwen2.5:3b", "an explicit choice stays"
    monkeypatch.setenv("OPENAI_SUMMARY_MODEL", "qwen2.5:3b")
    from_env = load_app_settings(openai_model="llama3.1:8b", **local)
    assert from_env.models.summary == "qwen2.5:3b", "set in the environment counts as explicit"
    monkeypatch.delenv("OPENAI_SUMMARY_MODEL")
    on_openai = load_app_settings(openai_model="gpt-6.1-sol", _env_file=None)
    assert on_openai.models.summary == "gpt-6-luna", "OpenAI keeps its own default"
    named = load_app_settings(
        openai_base_url="https://api.openai.com/v1", openai_model="gpt-6.1-sol", _env_file=None
    )
    assert named.models.summary == "gpt-6-luna"


async def test_a_model_the_server_does_not_list_is_warned_about(
    make_settings: Callable[..., Settings], sim: Simulator
) -> None:
    warnings = await _preflight(make_settings(openai_model="llama3.1:8b"))
    assert len(warnings) == 1, "the summary model follows the chat model: one warning"
    [warning] = warnings
    assert "\n" not in warning
    assert "model llama3.1:8b is not among the models" in warning
    assert f"{sim.base_url}/models" in warning
    assert "gpt-6-astra, gpt-6.2-astra" in warning, "the first models available"
    assert f"and {len(sim.models) - 5} more" in warning
    assert "OPENAI_MODEL" in warning


async def test_a_summary_model_the_server_does_not_list_is_warned_about(
    make_settings: Callable[..., Settings],
) -> None:
    warnings = await _preflight(make_settings(openai_summary_model="tiny-summarizer"))
    assert len(warnings) == 1 and "model tiny-summarizer is not among" in warnings[0]


async def test_a_server_without_a_model_list_is_skipped_quietly(
    make_settings: Callable[..., Settings], aiohttp_server_factory: Serve
) -> None:
    async def moderations(request: web.Request) -> web.Response:
        return web.json_response({"results": [{"category_scores": {"violence": 0.0}}]})

    app = web.Application()
    app.router.add_post("/v1/moderations", moderations)
    base_url = await aiohttp_server_factory(app) + "/v1"
    settings = make_settings(openai_base_url=base_url, openai_model="llama3.1:8b")
    stream = io.StringIO()
    configure_logging("info", "json", settings.secrets(), stream=stream)
    assert await _preflight(settings) == []
    events = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    skipped = [e for e in events if e.get("event") == "model_list_skipped"]
    assert skipped and skipped[0]["level"] == "info"
    assert not [e for e in events if e.get("level") == "warning"]


@pytest.mark.parametrize("role", ["run", "web", "worker"])
async def test_no_key_and_no_base_url_warns_the_server(
    role: str, make_settings: Callable[..., Settings]
) -> None:
    """A warning, not a stop: no moderation request is tried against OpenAI without a key."""
    settings = make_settings(openai_api_key=None, openai_base_url=None)
    stream = io.StringIO()
    configure_logging("info", "json", settings.secrets(), stream=stream)
    warnings = await _preflight(settings, role)
    assert len(warnings) == 1
    assert warnings[0].startswith("no model is configured: set OPENAI_API_KEY")
    assert "OPENAI_BASE_URL" in warnings[0] and "--offline" not in warnings[0]
    assert "preflight_warning" in stream.getvalue(), "logged as well as returned"


async def test_no_key_and_no_base_url_tells_the_console_to_go_offline(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(openai_api_key=None, openai_base_url=None)
    [warning] = await _preflight(settings, "console")
    assert "no model is configured" in warning and "add --offline" in warning


async def test_an_unknown_role_is_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        await _preflight(make_settings(), "daemon")
