"""Events/s and ack latency through `POST /slack/events` of a real `web` process; the load
generator and the simulator run in processes of their own, the fake Slack in this one.

Every run also checks the outcome: each event answered exactly once in the fake Slack, and no
error logged by the server (its stderr, JSON lines, is kept in a file), and measures the CPU time
the server's processes spent per answered turn (from /proc/<pid>/stat).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import IO, Any

import aiohttp

from bench.common import percentile, summarize
from bench.peers import simulator
from bots.slack.reply import QUEUED_NOTICE
from tests.fakes.slack import FakeSlack, sign

SECRET = "bench-secret"
STALL_S = 15.0  # no new reply for this long: the missing ones are not coming
SETTLE_S = 1.0  # after the last reply, time for late duplicates to show before the server stops
REDELIVERIES = 3  # Slack's retries of an event not acknowledged with a 2xx
ERROR_LEVELS = {"error", "critical", "exception"}
OVERLOAD_SECONDS = 10  # how long each offered rate of the overload rows is kept up
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Ephemeral messages that are no failure: the Stop offer beside a streamed reply, and the note
# that a message waits in the queue.
EXPECTED_NOTICES = {"Writing the answer…", QUEUED_NOTICE}


def _payload(i: int) -> bytes:
    ts = _ts(i)
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


def _ts(i: int) -> str:
    return f"{1_700_000_000 + i}.000100"


async def _generate(
    url: str, total: int, rate: float | None, concurrency: int
) -> tuple[list[float], dict[str, float], int]:
    """Send `total` signed mentions (at `rate`/s, or open loop): ack latencies (of the first
    delivery), send times, and how many deliveries were not acknowledged with a 200. Like Slack,
    an event refused is delivered again (here at once, up to REDELIVERIES times)."""
    latencies: list[float] = []
    sent: dict[str, float] = {}
    failed = 0
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(i: int) -> None:
            due = time.monotonic()  # at a fixed rate, waiting for a connection counts too
            nonlocal failed
            async with semaphore:
                started = due if rate is not None else time.monotonic()
                sent[_ts(i)] = started
                body = _payload(i)
                for attempt in range(REDELIVERIES + 1):
                    headers = {**sign(SECRET, body), "Content-Type": "application/json"}
                    if attempt:
                        headers |= {
                            "X-Slack-Retry-Num": str(attempt),
                            "X-Slack-Retry-Reason": "http_error",
                        }
                    try:
                        async with http.post(url, data=body, headers=headers) as response:
                            await response.read()
                            ok = response.status == 200
                    except aiohttp.ClientError:
                        ok = False
                    if not attempt:
                        latencies.append(time.monotonic() - started)
                    if ok:
                        break
                    failed += 1

        tasks = []
        start = time.monotonic()
        for i in range(total):
            if rate is not None:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies, sent, failed


def _generator(
    url: str, total: int, rate: float | None, concurrency: int, out: multiprocessing.Queue
) -> None:
    out.put(asyncio.run(_generate(url, total, rate, concurrency)))


def _tree(root: int) -> list[int]:
    """`root` and every process descending from it (the WEB_CONCURRENCY workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of `root` and its descendants, as the kernel counts them."""
    total = 0
    for pid in _tree(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _process_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """A server process's environment: this one without its platform and OpenAI settings, then
    `env`, JSON logs at warning level, and `extra`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))}
    full.update(env, LOG_LEVEL="warning", LOG_FORMAT="json", **extra)
    return full


async def _start_server(
    env: dict[str, str], port: int, processes: int, log: IO[bytes]
) -> asyncio.subprocess.Process:
    """`python -m bots web` as deployed, its stderr (and its workers') to `log`; returns once all
    its `processes` answer."""
    full = _process_env(env, PORT=str(port), WEB_CONCURRENCY=str(processes))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", "web", env=full, stderr=log
    )
    seen: set[str] = set()
    for _ in range(1200):
        try:  # a new connection each time: the kernel spreads them over the processes
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as response,
            ):
                if response.status == 200:
                    seen.add(response.headers["X-Process-Id"])
                    if len(seen) == processes:
                        return process
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start")


@dataclass(frozen=True)
class Result:
    """One run: acknowledgements, and replies as they reached the fake Slack."""

    acked_per_s: float
    ack_p50_ms: float
    ack_p99_ms: float
    ack_max_ms: float
    acks_over_1s: int  # first deliveries acknowledged after more than a second
    turns_per_s: float
    reply_p50_ms: float
    reply_p99_ms: float
    wall_s: float  # first send to last reply
    missing: int  # events with no reply
    duplicates: int  # replies beyond the first to an event
    failed_acks: int  # deliveries (first or redelivered) not acknowledged with a 200
    notices: int  # ephemeral notices (e.g. "something went wrong"), other than EXPECTED_NOTICES
    errors: int  # error lines the server logged
    first_error: str  # the first of them, shortened; "" if none
    cpu_ms_per_turn: float  # CPU of every server process, per answered turn

    @property
    def exactly_once(self) -> bool:
        """Every event acknowledged and answered once, nothing else said, no error logged."""
        return not any((self.missing, self.duplicates, self.failed_acks, self.notices, self.errors))


async def _start_worker(env: dict[str, str], log: IO[bytes]) -> asyncio.subprocess.Process:
    """`python -m bots worker`, which runs the turns the `web` process stored (TURN_RUNNERS)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", "worker", env=_process_env(env), stderr=log
    )


async def run_once(
    latency: float,
    total: int,
    rate: float | None,
    concurrency: int = 64,
    processes: int = 1,
    database_url: str | None = None,
    *,
    workers: int = 0,
) -> Result:
    """`total` mentions at `rate`/s (None: open loop, `concurrency` in flight) to a `web`
    server of `processes` processes (WEB_CONCURRENCY) on `database_url` (None: a new SQLite
    file). With `workers`, the web process only stores events (`TURN_RUNNERS=worker`) and that
    many `worker` processes run the turns."""
    async with FakeSlack() as slack, simulator(latency, chunk_size=64) as sim:
        with tempfile.TemporaryDirectory() as folder:
            env = {
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": sim.base_url,
                "OPENAI_WIRE_API": "chat",
                "DATABASE_URL": database_url or f"sqlite:///{Path(folder) / 'b.db'}",
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.api_url,
            }
            if workers:
                env["TURN_RUNNERS"] = "worker"
            port = _free_port()
            log_path = Path(folder) / "server.log"
            with log_path.open("wb") as log:
                # The workers first: they start while the web process does.
                runners = [await _start_worker(env, log) for _ in range(workers)]
                server = await _start_server(env, port, processes, log)
            try:
                context = multiprocessing.get_context("spawn")
                queue = context.Queue()
                url = f"http://127.0.0.1:{port}/slack/events"
                args = (url, total, rate, concurrency, queue)
                process = context.Process(target=_generator, args=args)
                pids = [server.pid, *(runner.pid for runner in runners)]
                cpu_before = sum(map(cpu_seconds, pids))
                started = time.monotonic()
                process.start()
                latencies, sent, failed = await _outcome(process, queue)
                acked = time.monotonic() - started
                await _wait_for_replies(slack, set(sent))
                done = time.monotonic() - started
                cpu = sum(map(cpu_seconds, pids)) - cpu_before
                await asyncio.to_thread(process.join)
                await asyncio.sleep(SETTLE_S)
            finally:
                for process in (server, *runners):
                    process.terminate()
                for process in (server, *runners):
                    await process.wait()
            errors = _logged_errors(log_path.read_text(errors="replace"))
    finished = _finished(slack)
    replies = [at - sent[ts] for ts, at in finished if ts in sent]
    answers = _answers(slack)
    answered = sum(1 for ts in sent if answers[ts])
    if answered < total:  # the stall that ended the wait is no part of the run
        done = max((at for _, at in finished), default=math.nan) - started
    return Result(
        total / acked,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        max(latencies) * 1000,
        sum(1 for latency in latencies if latency > 1.0),
        answered / done,
        percentile(replies or [math.nan], 50) * 1000,
        percentile(replies or [math.nan], 99) * 1000,
        max((at for _, at in finished), default=math.nan) - min(sent.values()),
        missing=total - answered,
        duplicates=sum(count - 1 for ts, count in answers.items() if ts in sent and count > 1),
        failed_acks=failed,
        notices=sum(
            1
            for call in slack.calls_to("chat.postEphemeral")
            if call.args.get("text") not in EXPECTED_NOTICES
        ),
        errors=len(errors),
        first_error=errors[0] if errors else "",
        cpu_ms_per_turn=cpu * 1000 / max(answered, 1),
    )


async def _outcome(process: Any, results: Any) -> tuple[list[float], dict[str, float], int]:
    """What the generator `process` put in `results`; fails as soon as it died without."""
    for _ in range(900):
        try:
            return await asyncio.to_thread(results.get, True, 1)
        except Empty:
            if not process.is_alive() and results.empty():
                raise RuntimeError(
                    f"the load generator died (exit code {process.exitcode})"
                ) from None
    raise TimeoutError("the load generator took over 900 s")


async def _wait_for_replies(slack: FakeSlack, events: set[str]) -> None:
    """Until every one of `events` (their ts) has a reply, or none came for STALL_S (looked at
    every 50 ms: a check after every call would cost this process, which serves the fake Slack,
    time that grows with the square of the calls)."""
    seen, quiet_since = -1, time.monotonic()
    while True:
        answers = _answers(slack)
        if events <= set(answers):
            return
        count = sum(answers.values())
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since > STALL_S:
            return
        await asyncio.sleep(0.05)


def _finished(slack: FakeSlack) -> list[tuple[str, float]]:
    """(thread ts, when) of every finished reply: a stopped stream or a message posted whole."""
    streamed = [
        (slack.messages.get(call.args["ts"], {}).get("thread_ts"), call.at)
        for call in slack.calls_to("chat.stopStream")
    ]
    posted = [(call.args.get("thread_ts"), call.at) for call in slack.calls_to("chat.postMessage")]
    return [(ts, at) for ts, at in (*streamed, *posted) if ts]


def _answers(slack: FakeSlack) -> Counter[str]:
    """Finished replies per thread (the ts of the event they answer): streamed or posted."""
    return Counter(ts for ts, _ in _finished(slack))


def _logged_errors(log: str) -> list[str]:
    """The server's error lines: JSON events at level error or above, and bare tracebacks."""
    errors = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if line.startswith("Traceback"):
                errors.append(line)
            continue
        if isinstance(entry, dict) and str(entry.get("level", "")).lower() in ERROR_LEVELS:
            trace = str(entry.get("exception") or "").strip().splitlines()
            detail = str(entry.get("error") or (trace[-1] if trace else ""))
            errors.append(f"{entry.get('event')}: {detail[:300]}".rstrip(": "))
    return errors


async def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for the table."""
    rows: list[tuple[str, str, str]] = []

    async def repeat(*args: Any) -> list[Result]:
        return [await run_once(*args) for _ in range(repeats)]

    one = await repeat(0.0, 2000, None, 64, 1)
    two = await repeat(0.0, 3000, None, 64, 2)
    rows += [
        ("Slack complete turns/s (0 s model, 1 web process)", _s(one, "turns_per_s"), ">= 300"),
        ("Slack complete turns/s (0 s model, WEB_CONCURRENCY=2)", _s(two, "turns_per_s"), ">= 300"),
    ]
    storm = await repeat(2.0, 6000, 200.0, 512, 2)
    rows += [
        ("Slack ack p50 ms (2 s model, 200 ev/s for 30 s, 2 procs)", _s(storm, "ack_p50_ms"), ""),
        (
            "Slack ack p99 ms (2 s model, 200 ev/s for 30 s, 2 procs)",
            _s(storm, "ack_p99_ms"),
            "< 25",
        ),
        ("Slack events acked/s (2 s model, 200 ev/s offered)", _s(storm, "acked_per_s"), ""),
    ]
    steady = await repeat(2.0, 600, 20.0, 512, 1)
    rows += [
        ("Slack send → reply p50 ms (2 s model, 20 ev/s for 30 s)", _s(steady, "reply_p50_ms"), ""),
        (
            "Slack send → reply p99 ms (2 s model, 20 ev/s for 30 s)",
            _s(steady, "reply_p99_ms"),
            "<= 2100",
        ),
        ("Slack ack p99 ms (2 s model, 20 ev/s for 30 s)", _s(steady, "ack_p99_ms"), ""),
    ]
    burst = await repeat(2.0, 1000, None, 512, 2)
    rows.append(
        ("Slack 1,000 conversations at once, 2 s model: wall s", _s(burst, "wall_s"), "<= 3")
    )
    return rows


async def overload(repeats: int) -> list[tuple[str, str, str]]:
    """Rows at 200 and 300 events/s offered (0 s model): to one and two `web` processes that
    also run the turns, and to one `web` process that only stores them for a `worker`
    (`TURN_RUNNERS=worker`): acks, replies/s, exactly-once and the CPU the server's processes
    spent per answered turn."""
    rows: list[tuple[str, str, str]] = []
    for processes, workers in ((1, 0), (2, 0), (1, 1)):
        for rate in (200, 300):
            setup = f"{processes} proc" if not workers else "web stores, 1 worker runs turns"
            where = f"0 s model, {rate} ev/s for {OVERLOAD_SECONDS} s, {setup}"
            runs = []
            for _ in range(repeats):
                runs.append(
                    await run_once(
                        0.0, rate * OVERLOAD_SECONDS, float(rate), 1024, processes, workers=workers
                    )
                )
                print(f"{where}: {runs[-1]}", file=sys.stderr, flush=True)
            clean = sum(r.exactly_once for r in runs)
            outcome = (
                f"{clean}/{len(runs)} runs; missing {sum(r.missing for r in runs)}, "
                f"dup {sum(r.duplicates for r in runs)}, non-200 {sum(r.failed_acks for r in runs)}"
                f", errors {sum(r.errors for r in runs)}"
            )
            for r in runs:
                if r.first_error:
                    print(f"{where}: {r.errors} errors, first: {r.first_error}", file=sys.stderr)
            rows += [
                (f"Slack ack p50 ms ({where})", _s(runs, "ack_p50_ms"), ""),
                (f"Slack ack p99 ms ({where})", _s(runs, "ack_p99_ms"), "< 25"),
                (f"Slack ack max ms ({where})", _s(runs, "ack_max_ms"), "< 1000"),
                (f"Slack acks over 1 s ({where})", _s(runs, "acks_over_1s"), "0"),
                (
                    f"Slack replies/s ({where})",
                    _s(runs, "turns_per_s"),
                    ">= 295" if processes == 2 and rate == 300 else "",
                ),
                (f"  answered exactly once ({where})", outcome, "all runs"),
                (
                    f"Slack CPU ms per turn, all processes ({where})",
                    _s(runs, "cpu_ms_per_turn"),
                    "<= 3.5",
                ),
            ]
    return rows


def _s(results: list[Result], field: str) -> str:
    return summarize([getattr(r, field) for r in results])
