"""Transport failures of model calls named for what they are: a refused connection, a failed DNS
lookup, a failed TLS handshake, and a timeout, each distinct; through the real SDK and engine."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from pydantic import SecretStr

from bots.services import build_services
from bots.settings import AppSettings as Settings
from core.llm.connect import build_openai
from core.llm.errors import Failure, _base_url, classify
from core.logging import configure_logging
from core.settings import OpenAISettings
from simulator import Simulator, Text
from tests.conftest import RecordingReply, make_event

KEY = "sk-live-REFUSEDKEY0123456789abcdef"


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def _failure(
    base_url: str, *, timeout: float = 10, default_transport: bool = False
) -> Failure:
    """One chat call through the SDK client the server builds (aiohttp transport), classified."""
    settings = OpenAISettings(  # type: ignore[call-arg]
        api_key=SecretStr(KEY), base_url=base_url, timeout=timeout, _env_file=None
    )
    client = (
        openai.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0, timeout=timeout)
        if default_transport
        else build_openai(settings)
    )
    try:
        await client.chat.completions.create(
            model="gpt-6-luna", messages=[{"role": "user", "content": "hi"}]
        )
    except Exception as exc:
        return classify(exc)
    finally:
        await client.close()
    raise AssertionError("the call succeeded")


@pytest.mark.parametrize("default_transport", [False, True], ids=["aiohttp", "httpx2"])
async def test_a_refused_connection_is_named_with_the_base_url(default_transport: bool) -> None:
    with closed_port() as port:
        base = f"http://127.0.0.1:{port}/v1"
        failure = await _failure(base, default_transport=default_transport)
    assert failure.kind == "connection_refused"
    assert failure.operator_message == (
        f"connection refused by the model server at {base}: is it running? check OPENAI_BASE_URL"
    )
    assert "timed out" not in failure.operator_message
    assert KEY not in failure.operator_message + failure.user_message
    assert (
        failure.user_message == "I can't reach the AI service right now. Please try again shortly."
    )


async def test_a_timeout_is_still_a_timeout(sim: Simulator) -> None:
    sim.enqueue(Text("too late", delay=5))
    failure = await _failure(sim.base_url, timeout=0.3)
    assert failure.kind == "timeout"
    assert "OPENAI_TIMEOUT" in failure.operator_message


async def test_a_tls_handshake_failure_is_named(sim: Simulator) -> None:
    base = sim.base_url.replace("http://", "https://")  # TLS to a plain-HTTP server
    failure = await _failure(base)
    assert failure.kind == "tls", failure
    assert f"TLS handshake with the model server at {base} failed" in failure.operator_message
    assert "http://" in failure.operator_message


async def test_a_dns_failure_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_such_host(*_args: Any, **_kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_host)
    failure = await _failure("http://models.internal.example:8000/v1")
    assert failure.kind == "dns", failure
    assert "cannot resolve the host models.internal.example" in failure.operator_message
    assert "http://models.internal.example:8000/v1" in failure.operator_message


async def test_the_engine_reports_a_refused_model_server(
    make_settings: Callable[..., Settings],
) -> None:
    stream = io.StringIO()
    with closed_port() as port:
        base = f"http://127.0.0.1:{port}/v1"
        settings = make_settings(
            openai_api_key=KEY,
            openai_base_url=base,
            openai_retry_attempts=2,
            moderation_enabled=False,
        )
        configure_logging("debug", "json", settings.secrets(), stream=stream)
        services = await build_services(settings)
        try:
            reply = RecordingReply()
            outcome = await services.engine.handle(make_event("hello?"), reply)
        finally:
            await services.close()
    assert outcome is not None and outcome.status == "failed"
    assert reply.final == "I can't reach the AI service right now. Please try again shortly."
    logs = stream.getvalue()
    failed = [line for line in logs.splitlines() if '"turn_failed"' in line]
    assert len(failed) == 1, logs
    assert '"kind": "connection_refused"' in failed[0]
    assert f"connection refused by the model server at {base}: is it running?" in failed[0]
    assert "timed out" not in failed[0]
    assert "REFUSEDKEY" not in logs


@pytest.mark.parametrize(
    ("request_url", "base"),
    [
        ("http://127.0.0.1:8000/v1/chat/completions", "http://127.0.0.1:8000/v1"),
        ("https://api.openai.com/v1/responses", "https://api.openai.com/v1"),
        ("https://api.openai.com/v1/responses/resp_1/cancel", "https://api.openai.com/v1"),
        ("http://ollama:11434/v1/embeddings", "http://ollama:11434/v1"),
        ("http://h/models/v1/chat/completions", "http://h/models/v1"),
        ("http://h/v1/conversations/conv_1/items", "http://h/v1"),
        ("http://h/v1/models/gpt-6-luna", "http://h/v1"),
        ("http://user:pw@h:1/openai/v1/moderations?api-version=1", "http://h:1/openai/v1"),
        ("http://[::1]:8000/v1/audio/transcriptions", "http://[::1]:8000/v1"),
        ("http://h:8000/chat/completions", "http://h:8000"),
    ],
)
def test_the_base_url_is_recovered_from_the_request_url(request_url: str, base: str) -> None:
    assert _base_url(request_url) == base
