"""Two `web` processes on one database (a SQLite file, or PostgreSQL): the same Slack event
delivered to both is answered once, and interleaved turns of one thread stay in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from simulator import Simulator, Text
from tests.fakes.slack import FakeSlack, sign
from tests.reliability.processes import BotProcess
from tests.reliability.test_crash_recovery import SECRET, _env
from tests.slack.rig import event_callback, mention


def _body(event_id: str, ts: str, text: str) -> bytes:
    return json.dumps(event_callback(mention(text, ts), event_id)).encode()


@pytest.fixture
def shared_db(on_both_backends: str) -> str:
    """The database both processes use: a SQLite file, or PostgreSQL."""
    return on_both_backends


async def _deliver(http: aiohttp.ClientSession, port: int, body: bytes, retry: int = 0) -> int:
    headers = {**sign(SECRET, body), "Content-Type": "application/json"}
    if retry:
        headers["X-Slack-Retry-Num"] = str(retry)
    url = f"http://127.0.0.1:{port}/slack/events"
    async with http.post(url, data=body, headers=headers) as response:
        return response.status


@contextlib.asynccontextmanager
async def _two_web_processes(env: dict[str, str]) -> AsyncIterator[tuple[BotProcess, BotProcess]]:
    """Two `web` processes with one environment (one database); both must stop cleanly."""
    a = await BotProcess.start("web", env)
    b = await BotProcess.start("web", env)
    try:
        yield a, b
    finally:
        assert await a.stop() == 0
        assert await b.stop() == 0


async def test_one_event_delivered_to_two_processes_at_once_is_answered_once(
    sim: Simulator, shared_db: str
) -> None:
    async with FakeSlack() as slack:
        async with _two_web_processes(_env(slack, sim, shared_db)) as (a, b):
            ports = [await a.port(), await b.port()]
            events = [_body(f"Ev{i}", f"50{i}.000001", f"question {i}") for i in range(10)]
            for i in range(10):
                sim.enqueue(Text(f"answer {i}"))
            async with aiohttp.ClientSession() as http:
                statuses = await asyncio.gather(
                    *(
                        _deliver(http, port, body, retry)
                        for body in events
                        for retry, port in enumerate(ports)
                    )
                )
            assert set(statuses) == {200}
            # Every copy was acknowledged only after its process decided new or duplicate,
            # so by now no further reply can start.
            await slack.wait_for("chat.stopStream", count=10, timeout=30)
            assert len(slack.calls_to("chat.startStream")) == 10
            assert len(sim.requests_to("chat")) == 10
            threads = sorted(m["thread_ts"] for m in slack.messages.values())
            assert threads == sorted(f"50{i}.000001" for i in range(10)), "one reply per event"
        assert a.count("duplicate_delivery") + b.count("duplicate_delivery") == 10


async def test_interleaved_turns_of_one_thread_across_two_processes_stay_in_order(
    sim: Simulator, shared_db: str
) -> None:
    """Messages of one thread alternate between the processes while answers take a while:
    each turn starts only after the one before it answered, so each sees every earlier answer."""
    async with FakeSlack() as slack:
        async with _two_web_processes(_env(slack, sim, shared_db)) as (a, b):
            ports = [await a.port(), await b.port()]
            root = "700.000001"
            for i in range(6):
                sim.enqueue(Text(f"answer {i}", delay=0.2))
            async with aiohttp.ClientSession() as http:
                for i in range(6):  # sent back to back: later turns arrive while earlier run
                    ts = root if i == 0 else f"70{i}.000002"
                    thread = None if i == 0 else root
                    body = json.dumps(
                        event_callback(mention(f"question {i}", ts, thread), f"EvO{i}")
                    ).encode()
                    assert await _deliver(http, ports[i % 2], body) == 200
            await slack.wait_for("chat.stopStream", count=6, timeout=60)
        requests = sim.requests_to("chat")
        assert len(requests) == 6
        for i, request in enumerate(requests):
            assert request.body is not None
            said = [str(m.get("content")) for m in request.body["messages"]]
            asked = [text for text in said if "question" in text]
            answered = [text for text in said if text.startswith("answer")]
            assert len(asked) == i + 1 and asked[-1].endswith(f"question {i}"), said
            assert answered == [f"answer {k}" for k in range(i)], said
        assert a.count("http_listening") == b.count("http_listening") == 1


async def test_web_concurrency_serves_one_port_from_several_processes(
    sim: Simulator, tmp_path: Path
) -> None:
    async with FakeSlack() as slack:
        env = {**_env(slack, sim, tmp_path / "bot.db"), "WEB_CONCURRENCY": "2"}
        web = await BotProcess.start("web", env)
        try:
            port = await web.port()
            await web.wait_for_count("http_listening", 2)  # the worker shares the port
            listening = [r for r in web.logs if r.get("event") == "http_listening"]
            assert {r["port"] for r in listening} == {port}
            async with aiohttp.ClientSession() as http:
                for i in range(20):
                    body = _body(f"EvW{i}", f"60{i:02d}.000001", f"question {i}")
                    headers = {**sign(SECRET, body), "Content-Type": "application/json"}
                    async with http.post(
                        f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
                    ) as response:
                        assert response.status == 200
            await slack.wait_for("chat.stopStream", count=20, timeout=30)
            seen: set[str] = set()
            async with asyncio.timeout(30):  # new connections land on either process
                while len(seen) < 2:
                    async with (
                        aiohttp.ClientSession() as http,
                        http.get(f"http://127.0.0.1:{port}/healthz") as health,
                        http.get(f"http://127.0.0.1:{port}/metrics") as metrics,
                    ):
                        seen.add(health.headers["X-Process-Id"])
                        text = await metrics.text()
                        done = 'parley_turns_total{outcome="done",platform="slack"} 20.0'
                        assert done in text, "every process reports the turns of all"
        finally:
            assert await web.stop() == 0
        assert web.count("web_worker_exited") == 0, "the worker stopped with the first process"
        [started] = [r for r in web.logs if r.get("event") == "web_worker_started"]
        with pytest.raises(ProcessLookupError):
            os.kill(int(started["pid"]), 0)  # type: ignore[arg-type]


async def test_workers_end_when_the_first_process_is_killed(sim: Simulator, tmp_path: Path) -> None:
    async with FakeSlack() as slack:
        env = {**_env(slack, sim, tmp_path / "bot.db"), "WEB_CONCURRENCY": "2"}
        web = await BotProcess.start("web", env)
        try:
            await web.wait_for_count("http_listening", 2)
            [started] = [r for r in web.logs if r.get("event") == "web_worker_started"]
            worker = os.pidfd_open(int(started["pid"]))  # type: ignore[arg-type]
        finally:
            web.kill()
            await web.stop()
        ended = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(worker, ended.set_result, None)
        try:
            await asyncio.wait_for(ended, 30)  # readable once the worker has exited
        finally:
            asyncio.get_running_loop().remove_reader(worker)
            os.close(worker)
