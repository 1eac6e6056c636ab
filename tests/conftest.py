"""Shared fixtures: the simulator on loopback, settings pointing at it, and a built engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from bots.settings import load_app_settings
from core.engine import Engine
from core.events import ConversationKey, Event, OutboundFile, Platform, User
from core.interactive.clicks import Click, ClickResult
from core.interactive.controls import Action, ApprovalPrompt, ControlId, Controls
from tests.postgres import PostgresServer

if TYPE_CHECKING:
    from simulator import Simulator


class RecordingReply:
    """A Reply that remembers everything the engine did with it."""

    def __init__(self) -> None:
        self.begun = 0
        self.deltas: list[str] = []
        self.final: str | None = None
        self.notices: list[str] = []
        self.files: list[OutboundFile] = []

    async def begin(self) -> None:
        self.begun += 1

    async def append(self, delta: str) -> None:
        self.deltas.append(delta)

    async def finish(self, text: str) -> None:
        assert self.final is None, "finish called twice"
        self.final = text

    async def notice(self, text: str) -> None:
        self.notices.append(text)

    async def upload(self, file: OutboundFile) -> None:
        self.files.append(file)

    @property
    def streamed(self) -> str:
        return "".join(self.deltas)


class ApprovalRecordingReply(RecordingReply):
    """A RecordingReply that also shows approval prompts (as a platform with buttons does)."""

    def __init__(self) -> None:
        super().__init__()
        self.prompts: asyncio.Queue[ApprovalPrompt] = asyncio.Queue()

    async def live(self, controls: Controls) -> None:
        pass

    async def finish_with(self, text: str, controls: Controls | None) -> None:
        await self.finish(text)

    async def ask_approval(self, prompt: ApprovalPrompt) -> None:
        self.prompts.put_nowait(prompt)


async def answer_approval(
    engine: Engine, prompt: ApprovalPrompt, *, approve: bool, user: str = "u1"
) -> ClickResult:
    """Click Approve or Deny on a prompt, in the console conversation `make_event` uses."""
    action = Action.APPROVE if approve else Action.DENY
    click = Click(
        ControlId(action, prompt.approval_id, 1), User(user), Platform.CONSOLE, "w1", "c1"
    )
    return await engine.interactions.click(click)


def make_event(
    text: str,
    *,
    delivery_id: str | None = None,
    thread: str = "t1",
    channel: str = "c1",
    user: str = "u1",
    platform: Platform = Platform.CONSOLE,
    workspace: str = "w1",
) -> Event:
    """An event with sensible defaults; the delivery id defaults to a fresh one."""
    make_event.counter += 1  # type: ignore[attr-defined]
    return Event(
        key=ConversationKey(platform, workspace, channel, thread),
        user=User(user, f"name-{user}"),
        text=text,
        delivery_id=delivery_id or f"d{make_event.counter}",  # type: ignore[attr-defined]
    )


make_event.counter = 0  # type: ignore[attr-defined]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    from simulator import Simulator

    async with Simulator() as simulator:
        yield simulator


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The test's database: a SQLite file, or with PARLEY_TEST_BACKEND=postgresql a fresh
    PostgreSQL database (a module may run on both with `on_both_backends`)."""
    if os.environ.get("PARLEY_TEST_BACKEND") == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def on_both_backends(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL, once for a SQLite file and once for a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def make_settings(tmp_path: Path, sim: Simulator, database_url: str) -> Callable[..., Settings]:
    """Settings isolated from the environment, pointing at the simulator and a temp database."""

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "openai_api_key": "sk-test-key-0123456789",
            "openai_base_url": sim.base_url,
            "openai_wire_api": "chat",
            "database_url": database_url,
            "openai_retry_initial_wait": 0.0,
            "_env_file": None,
        }
        values.update(overrides)
        return load_app_settings(**values)

    return build


@pytest.fixture
async def services(make_settings: Callable[..., Settings]) -> AsyncIterator[Services]:
    built = await build_services(make_settings())
    yield built
    await built.close()


@pytest.fixture
async def aiohttp_server_factory() -> AsyncIterator[Callable[..., Any]]:
    """Serve aiohttp applications on 127.0.0.1, port 0; returns their base URLs."""
    from aiohttp import web

    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    yield serve
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server on loopback for the session (tests/postgres.py).

    With PARLEY_TEST_POSTGRES_URL set, that existing server is used instead (its URL must be
    allowed to create and drop databases); it is left running.
    """
    if url := os.environ.get("PARLEY_TEST_POSTGRES_URL"):
        yield PostgresServer.existing(url)
        return
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database for this test, dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
