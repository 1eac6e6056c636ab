"""Events/s and ack latency through `POST /slack/events` of a real `web` process; the load
generator runs in a third process, the fake Slack and the simulator in this one."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import percentile, summarize
from core.simulator import Simulator
from tests.fakes.slack import FakeSlack, sign

SECRET = "bench-secret"


def _payload(i: int) -> bytes:
    ts = f"{1_700_000_000 + i}.000100"
    event = {
        "type": "app_mention",
        "user": f"U{i % 50}",
        "text": f"<@UBOT> question {i}",
        "ts": ts,
        "channel": f"C{i % 20}",
        "team": "T1",
        "event_ts": ts,
    }
    body = {
        "token": "t",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": f"Ev{i}-{time.time_ns()}",
        "event_time": int(time.time()),
        "event": event,
    }
    return json.dumps(body).encode()


async def _generate(url: str, total: int, rate: float | None, concurrency: int) -> list[float]:
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(i: int) -> None:
            async with semaphore:
                body = _payload(i)
                headers = {**sign(SECRET, body), "Content-Type": "application/json"}
                started = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        tasks = []
        start = time.perf_counter()
        for i in range(total):
            if rate is not None:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


def _generator(
    url: str, total: int, rate: float | None, concurrency: int, out: multiprocessing.Queue
) -> None:
    out.put(asyncio.run(_generate(url, total, rate, concurrency)))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _start_server(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    """`python -m bots web` as deployed, in its own process; returns once it answers."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))}
    full.update(env, PORT=str(port), LOG_LEVEL="warning", LOG_FORMAT="json")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", "web", env=full, stderr=asyncio.subprocess.DEVNULL
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start")


async def run_once(
    latency: float, total: int, rate: float | None
) -> tuple[float, float, float, float]:
    """(events acked per second, ack p50 ms, ack p99 ms, completed turns per second)."""
    async with FakeSlack() as slack, Simulator(latency=latency, chunk_size=64) as sim:
        sim.record = False
        with tempfile.TemporaryDirectory() as folder:
            env = {
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": sim.base_url,
                "OPENAI_WIRE_API": "chat",
                "DATABASE_URL": f"sqlite:///{Path(folder) / 'b.db'}",
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.api_url,
            }
            port = _free_port()
            server = await _start_server(env, port)
            try:
                context = multiprocessing.get_context("spawn")
                queue = context.Queue()
                url = f"http://127.0.0.1:{port}/slack/events"
                process = context.Process(target=_generator, args=(url, total, rate, 64, queue))
                started = time.perf_counter()
                process.start()
                latencies = await asyncio.to_thread(queue.get, True, 600)
                acked = time.perf_counter() - started
                await slack.wait_for("chat.stopStream", count=total, timeout=300)
                done = time.perf_counter() - started
                await asyncio.to_thread(process.join)
            finally:
                server.terminate()
                await server.wait()
    return (
        total / acked,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        total / done,
    )


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for the table."""
    rows = []
    for latency, total, rate, label in (
        (0.0, 1500, None, "0 s model, open loop"),
        (2.0, 1000, 200.0, "2 s model, 200 ev/s"),
    ):
        rates, p50s, p99s, turns = [], [], [], []
        for _ in range(repeats):
            r, p50, p99, t = await run_once(latency, total, rate)
            rates.append(r)
            p50s.append(p50)
            p99s.append(p99)
            turns.append(t)
        rows += [
            (f"Slack events acked/s ({label})", summarize(rates), ""),
            (f"Slack ack latency p50 ms ({label})", summarize(p50s), ""),
            (f"Slack ack latency p99 ms ({label})", summarize(p99s), "< 25 (2 s model)"),
            (f"Slack complete turns/s ({label})", summarize(turns), ">= 300 (0 s model)"),
        ]
    return rows
