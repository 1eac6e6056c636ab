"""Stop signals as platforms send them: SIGTERM to every process of a dyno or container at once.

With `WEB_CONCURRENCY=2` the worker then hears the platform's SIGTERM and its first process's
request to drain. That is one graceful stop: each thread still gets exactly one answer and no
"interrupted" notice (on SQLite and on PostgreSQL).
"""

from __future__ import annotations

import time

from simulator import Simulator
from tests.fakes.slack import FakeSlack
from tests.reliability.processes import BotProcess
from tests.reliability.test_shutdown import (
    THREADS,
    Fleet,
    _all_streaming,
    _ask_over_http,
    _check_answered_once,
    _draining_turns,
    _script,
    _settings,
)


async def test_sigterm_to_the_whole_group_drains_web_concurrency_2_once(
    sim: Simulator, on_both_backends: str
) -> None:
    async with FakeSlack() as slack, Fleet() as fleet:
        env = _settings(slack, sim, on_both_backends, drain=15)
        server = await BotProcess.start("web", {**env, "WEB_CONCURRENCY": "2"}, group=True)
        fleet.processes.append(server)
        port = await server.port()
        await server.wait_for_count("http_listening", 2, timeout=30)
        answers = _script(sim, pace=0.06)
        threads = await _ask_over_http(port, "G")
        await _all_streaming(slack)
        started = time.monotonic()
        server.signal_group()
        assert await server.wait_exit(30) == 0
        assert server.count("stopping_now") == 0, "two signals in a worker are one stop"
        assert _draining_turns(server) == THREADS
        await _check_answered_once(slack, on_both_backends, threads, answers)
        print(f"group SIGTERM → exit {time.monotonic() - started:.1f} s")
