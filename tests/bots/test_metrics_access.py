"""Who may read `/metrics`: the public port by default, a bearer token with METRICS_TOKEN, and a
separate loopback listener with METRICS_PORT; against the real aiohttp applications."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bots.errors import UsageError
from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from bots.web import bearer_ok, build_metrics_app, build_web_app, serve
from core.settings import ServerSettings, load_settings

TOKEN = "metrics-token-5f1c0e7a9b"


@pytest.fixture
async def make_services(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    built: list[Services] = []

    async def make(**overrides: object) -> Services:
        services = await build_services(make_settings(**overrides))
        built.append(services)
        return services

    yield make
    for services in built:
        await services.close()


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """`bots.web.serve` on 127.0.0.1, port 0, until the block ends; yields the base URL."""
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(app, "127.0.0.1", 0, stop, on_bound=bound.set_result))
    started: set[asyncio.Future[Any]] = {task, bound}
    done, _ = await asyncio.wait(started, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    assert bound in done, f"serve() did not start: {task.exception() if task.done() else done}"
    try:
        yield f"http://127.0.0.1:{bound.result()}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as response:
        return response.status, await response.text(), response.headers


async def test_metrics_stay_open_on_the_public_port_by_default(make_services) -> None:
    services = await make_services()
    async with serving(build_web_app(services)) as base:
        status, text, _ = await _get(f"{base}/metrics")
    assert status == 200 and "parley_turns_total" in text


async def test_metrics_token_requires_a_bearer_on_the_public_port(make_services) -> None:
    services = await make_services(metrics_token=TOKEN)
    async with serving(build_web_app(services)) as base:
        status, text, headers = await _get(f"{base}/metrics")
        assert status == 401, "no credentials"
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert "parley_" not in text and TOKEN not in text
        for wrong in (
            f"Bearer {TOKEN}x",
            f"Bearer {TOKEN[:-1]}",
            f"Basic {TOKEN}",
            "Bearer",
            TOKEN,
        ):
            status, text, headers = await _get(f"{base}/metrics", {"Authorization": wrong})
            assert status == 401, wrong
            assert headers["WWW-Authenticate"].startswith("Bearer")
        status, text, headers = await _get(f"{base}/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and "parley_turns_total" in text
        assert headers["Content-Type"].startswith("text/plain")
        status, _, _ = await _get(f"{base}/metrics", {"Authorization": f"bearer  {TOKEN} "})
        assert status == 200, "the scheme is case-insensitive"
        status, _, _ = await _get(f"{base}/healthz")
        assert status == 200, "the health check needs no token"


async def test_metrics_port_moves_metrics_off_the_public_port(make_services) -> None:
    services = await make_services(metrics_port=0, metrics_token=TOKEN)
    public = build_web_app(services)
    private = build_metrics_app(services.settings)
    async with serving(public) as base, serving(private) as metrics_base:
        status, _, _ = await _get(f"{base}/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 404, "the public port no longer serves /metrics"
        assert (await _get(f"{base}/healthz"))[0] == 200
        status, _, headers = await _get(f"{metrics_base}/metrics")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        status, text, _ = await _get(f"{metrics_base}/metrics", auth)
        assert status == 200 and "parley_turns_total" in text
        assert (await _get(f"{metrics_base}/healthz", auth))[0] == 404


async def test_the_metrics_listener_without_a_token_is_open(make_services) -> None:
    services = await make_services(metrics_port=0)
    async with serving(build_metrics_app(services.settings.server)) as metrics_base:
        status, text, _ = await _get(f"{metrics_base}/metrics")
    assert status == 200 and "parley_turns_total" in text


async def test_serve_stops_and_releases_the_port(make_services) -> None:
    services = await make_services(metrics_port=0)
    async with serving(build_metrics_app(services.settings)) as metrics_base:
        assert (await _get(f"{metrics_base}/metrics"))[0] == 200
    with pytest.raises(aiohttp.ClientConnectionError):
        await _get(f"{metrics_base}/metrics")


def test_metrics_settings_read_their_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ServerSettings.env_names()
    assert names["metrics_port"] == "METRICS_PORT"
    assert names["metrics_token"] == "METRICS_TOKEN"
    assert names["metrics_host"] == "METRICS_HOST"
    defaults = load_settings(Settings, _env_file=None).server
    assert (defaults.metrics_port, defaults.metrics_token) == (None, None)
    assert defaults.metrics_host == "127.0.0.1", "the metrics listener is loopback-only by default"
    monkeypatch.setenv("METRICS_PORT", "9464")
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    settings = load_settings(Settings, _env_file=None)
    assert settings.server.metrics_port == 9464
    assert TOKEN in settings.secrets(), "the token is redacted from logs like every secret"
    assert TOKEN not in repr(settings.server)


def test_metrics_port_equal_to_port_is_refused() -> None:
    server = ServerSettings(port=8080, metrics_port=8080, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(UsageError, match="METRICS_PORT"):
        build_metrics_app(server)
    with pytest.raises(UsageError, match="METRICS_PORT is not set"):
        build_metrics_app(ServerSettings(_env_file=None))  # type: ignore[call-arg]


def test_bearer_comparison() -> None:
    assert bearer_ok(f"Bearer {TOKEN}", TOKEN)
    assert not bearer_ok(None, TOKEN)
    assert not bearer_ok("", TOKEN)
    assert not bearer_ok(f"Token {TOKEN}", TOKEN)
    assert not bearer_ok("Bearer \udcff", TOKEN), "odd header bytes are a mismatch, not a crash"
