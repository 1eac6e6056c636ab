"""A graceful stop (SIGTERM) while replies stream, with other processes on the same database (on
SQLite and on PostgreSQL).

The stopping process closes its intake, keeps its heartbeat while its turns drain and leaves only
then, so no other process takes its turns for orphans: each thread gets exactly one answer and no
"I was interrupted" notice. Turns still open at `SHUTDOWN_DRAIN_SECONDS` are closed once, by the
stopping process; a second SIGTERM stops at once. `RECOVERY_STALE_SECONDS` is low here, so a
heartbeat dropped (or left to go stale) too early would be taken within a second, and show.

Each test prints what it measured (run with -s): answers per thread, notices, drain time.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from types import TracebackType

import pytest

from core.conversation.recovery import INTERRUPTED
from core.store import connect
from simulator import Simulator, Text
from tests.fakes.slack import Call, FakeSlack
from tests.reliability.processes import BotProcess
from tests.reliability.test_crash_recovery import _env, _mention
from tests.slack.rig import event_callback, mention

STALE = 1.5  # RECOVERY_STALE_SECONDS: another process checks for orphans every 0.5 s
THREADS = 4
NOTICE = "I was interrupted"


@pytest.fixture
def db(on_both_backends: str) -> str:
    return on_both_backends


def _backend(db: str) -> str:
    return "sqlite" if db.startswith("sqlite") else "postgresql"


def _settings(slack: FakeSlack, sim: Simulator, db: str, drain: float) -> dict[str, str]:
    return {
        **_env(slack, sim, db),
        "RECOVERY_STALE_SECONDS": str(STALE),
        "SHUTDOWN_DRAIN_SECONDS": str(drain),
        # Three processes migrate one fresh SQLite file at once on a loaded machine: let them wait
        # their turn for the write lock rather than refuse to start.
        "DATABASE_BUSY_TIMEOUT_MS": "20000",
    }


def _answer(i: int) -> str:
    """A reply of ~330 characters: ~42 streamed pieces of 8 characters."""
    return f"Answer {i}: " + " ".join(f"part{k}" for k in range(48))


def _script(sim: Simulator, pace: float) -> list[str]:
    """Four slow streamed answers (`pace` seconds between pieces); returns their texts."""
    answers = [_answer(i) for i in range(THREADS)]
    sim.enqueue(*(Text(answer, pace=pace) for answer in answers))
    return answers


class Fleet:
    """The test's bot processes. Those still running at the end must stop cleanly (exit 0);
    after a failure they are killed."""

    def __init__(self) -> None:
        self.processes: list[BotProcess] = []

    async def start(self, command: str, env: dict[str, str]) -> BotProcess:
        process = await BotProcess.start(command, env)
        self.processes.append(process)
        return process

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        running = [p for p in self.processes if p.process.returncode is None]
        if kind is not None:
            for process in running:
                process.kill()
            await asyncio.gather(*(p.stop() for p in running), return_exceptions=True)
            for index, process in enumerate(self.processes):  # for the failure's report
                print(
                    f"\n--- process {index} (pid {process.process.pid}):\n" + "\n".join(process.raw)
                )
            return
        codes = await asyncio.gather(*(process.stop() for process in running))
        assert codes == [0] * len(running), "the other processes stop cleanly"


@dataclass(frozen=True)
class Stopped:
    code: int
    seconds: float  # from the first SIGTERM to the exit
    at: float  # wall-clock time of the exit (the `processes.seen_at` clock)


async def _sigterm_and_wait(process: BotProcess, timeout: float) -> Stopped:
    started = time.monotonic()
    process.send_signal()
    code = await process.wait_exit(timeout)
    return Stopped(code, time.monotonic() - started, time.time())


async def _ask_over_http(port: int, tag: str) -> list[str]:
    """Four mentions, each the root of its own thread; returns the threads' ts."""
    threads = [f"{300 + i}.000001" for i in range(THREADS)]
    for i, ts in enumerate(threads):
        await _mention(port, f"question {i}", ts, f"Ev{tag}{i}")
    return threads


async def _ask_over_socket(slack: FakeSlack, tag: str) -> list[str]:
    threads = [f"{400 + i}.000001" for i in range(THREADS)]
    for i, ts in enumerate(threads):
        envelope = await slack.socket_send(
            "events_api", event_callback(mention(f"question {i}", ts), f"Ev{tag}{i}")
        )
        await slack.wait_for_ack(envelope)
    return threads


async def _all_streaming(slack: FakeSlack) -> None:
    """Every reply has started streaming and none has finished: they are all mid-stream."""
    await slack.wait_for("chat.startStream", count=THREADS, timeout=15)
    assert slack.calls_to("chat.stopStream") == [], "the replies are still streaming"


def _posted(slack: FakeSlack, thread: str) -> list[dict[str, object]]:
    """The bot's messages in a thread, oldest first."""
    found = [m for m in slack.messages.values() if m.get("thread_ts") == thread]
    return sorted(found, key=lambda m: str(m["ts"]))


def _notice_calls(slack: FakeSlack) -> list[Call]:
    """Every Slack call that carried the interrupted notice (post, stream or update)."""
    return [c for c in slack.calls if any(NOTICE in str(v) for v in c.args.values())]


@dataclass(frozen=True)
class Turn:
    thread: str
    status: str
    error: str
    answers: list[str]  # the turn's `assistant` messages


async def _turns(db: str) -> list[Turn]:
    async with connect(db) as store:
        turns = await store.fetchall(
            "SELECT t.id, c.thread, t.status, t.error FROM turns t "
            "JOIN conversations c ON c.id = t.conversation_id ORDER BY t.id"
        )
        answers = await store.fetchall(
            "SELECT turn_id, content FROM messages WHERE role = 'assistant' ORDER BY id"
        )
    return [
        Turn(str(thread), str(status), str(error), [str(c) for t, c in answers if t == turn_id])
        for turn_id, thread, status, error in turns
    ]


async def _wait_for_turns(db: str, count: int, timeout: float = 10) -> list[Turn]:
    """Poll until `count` turns are closed (done, failed or interrupted)."""
    async with asyncio.timeout(timeout):
        while True:
            turns = await _turns(db)
            if sum(t.status not in ("queued", "running") for t in turns) >= count:
                return turns
            await asyncio.sleep(0.05)


async def _wait_for_a_recovery_pass(db: str, process: BotProcess, after: float) -> None:
    """Wait until `process` has looked for orphans at least once since `after` (wall clock).

    Its recovery loop beats, then claims orphans, then waits: a second beat later than a first
    one after `after` means a whole claim ran after `after`.
    """
    owner = f"%/{process.process.pid}/%"
    first: float | None = None
    async with asyncio.timeout(10), connect(db) as store:
        while True:
            row = await store.fetchone("SELECT seen_at FROM processes WHERE owner LIKE ?", (owner,))
            seen = float(row[0]) if row is not None else None
            if seen is not None and seen > after:
                if first is None:
                    first = seen
                elif seen > first:
                    return
            await asyncio.sleep(0.05)


def _closed_as_orphans(*processes: BotProcess) -> int:
    """The `count` of every `turns_interrupted` log line (logged once the notices are posted)."""
    return sum(int(r["count"]) for p in processes for r in p.records("turns_interrupted"))  # type: ignore[call-overload]


def _requeued(*processes: BotProcess) -> int:
    """The `count` of every `turns_requeued` log line (turns queued to run again)."""
    return sum(int(r["count"]) for p in processes for r in p.records("turns_requeued"))  # type: ignore[call-overload]


async def _check_rerun_once(slack: FakeSlack, db: str, threads: list[str]) -> None:
    """Every turn was run again and finished once: its half-streamed message now shows the
    whole new answer (no second message, no interrupted notice)."""
    turns = await _wait_for_turns(db, THREADS, timeout=30)
    assert [(t.status, len(t.answers)) for t in turns] == [("done", 1)] * THREADS
    for turn in turns:
        [message] = _posted(slack, turn.thread)
        assert (
            message["text"] == turn.answers[0] == f"You said: question {threads.index(turn.thread)}"
        )
        assert message.get("streaming") is not True
    assert _notice_calls(slack) == []


def _draining_turns(*processes: BotProcess) -> int:
    """The `turns` of every `draining` log line (one per process that had turns to drain)."""
    return sum(int(r["turns"]) for p in processes for r in p.records("draining"))  # type: ignore[call-overload]


async def _check_answered_once(
    slack: FakeSlack, db: str, threads: list[str], answers: list[str]
) -> list[int]:
    """Each thread has exactly one bot message, the real answer, and no notice anywhere, in Slack
    and in the database; returns the answers per thread."""
    per_thread = [len(_posted(slack, thread)) for thread in threads]
    assert per_thread == [1] * THREADS, {t: _posted(slack, t) for t in threads}
    texts = {thread: str(_posted(slack, thread)[0]["text"]) for thread in threads}
    assert sorted(texts.values()) == sorted(answers), texts
    assert not any(_posted(slack, t)[0].get("streaming") for t in threads), "streams closed"
    assert _notice_calls(slack) == [], "no interrupted notice"
    assert len(slack.calls_to("chat.startStream")) == THREADS
    assert len(slack.calls_to("chat.stopStream")) == THREADS
    turns = await _turns(db)
    assert [(t.status, len(t.answers)) for t in turns] == [("done", 1)] * THREADS, turns
    assert {t.thread: t.answers[0] for t in turns} == texts, "the stored answer is the posted one"
    return per_thread


def _report(case: str, db: str, **measured: object) -> None:
    values = ", ".join(
        f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in measured.items()
    )
    print(f"\n[shutdown] {case} on {_backend(db)}: {values}")


# -- a stop that drains ---------------------------------------------------------------------


async def test_stopping_one_of_two_web_processes_mid_stream_answers_each_thread_once(
    sim: Simulator, db: str
) -> None:
    async with FakeSlack() as slack, Fleet() as fleet:
        env = _settings(slack, sim, db, drain=15)
        stopping = await fleet.start("web", env)
        other = await fleet.start("web", env)
        port = await stopping.port()
        await other.port()
        answers = _script(sim, pace=0.06)
        threads = await _ask_over_http(port, "A")
        await _all_streaming(slack)
        stopped = await _sigterm_and_wait(stopping, timeout=15)
        assert stopped.code == 0
        assert _draining_turns(stopping) == THREADS
        await _wait_for_a_recovery_pass(db, other, after=stopped.at)
        per_thread = await _check_answered_once(slack, db, threads, answers)
        assert other.count("turns_interrupted") == 0
    _report(
        "two web processes",
        db,
        answers_per_thread=per_thread,
        notices=len(_notice_calls(slack)),
        drain_s=stopped.seconds,
        draining_turns=_draining_turns(stopping),
    )


async def test_stopping_web_concurrency_2_mid_stream_answers_each_thread_once(
    sim: Simulator, db: str
) -> None:
    """WEB_CONCURRENCY=2 (a first process and a worker on one port, both stopped by the SIGTERM
    to the first), next to a third `web` process that keeps running and looks for orphans."""
    async with FakeSlack() as slack, Fleet() as fleet:
        env = _settings(slack, sim, db, drain=15)
        stopping = await fleet.start("web", {**env, "WEB_CONCURRENCY": "2"})
        other = await fleet.start("web", env)
        port = await stopping.port()
        await stopping.wait_for_count("http_listening", 2, timeout=30)
        await other.port()
        answers = _script(sim, pace=0.06)
        threads = await _ask_over_http(port, "C")
        await _all_streaming(slack)
        stopped = await _sigterm_and_wait(stopping, timeout=15)
        assert stopped.code == 0
        assert stopping.count("web_worker_exited") == 0
        assert _draining_turns(stopping) == THREADS, "the two processes drained the four turns"
        await _wait_for_a_recovery_pass(db, other, after=stopped.at)
        per_thread = await _check_answered_once(slack, db, threads, answers)
        assert other.count("turns_interrupted") == 0
    _report(
        "WEB_CONCURRENCY=2 beside a web process",
        db,
        answers_per_thread=per_thread,
        notices=len(_notice_calls(slack)),
        drain_s=stopped.seconds,
        draining=[r["turns"] for r in stopping.records("draining")],
    )


async def test_stopping_web_beside_a_socket_mode_worker_answers_each_thread_once(
    sim: Simulator, db: str
) -> None:
    async with FakeSlack() as slack, Fleet() as fleet:
        env = _settings(slack, sim, db, drain=15)
        stopping = await fleet.start("web", env)
        worker = await fleet.start("worker", {**env, "SLACK_APP_TOKEN": slack.app_token})
        port = await stopping.port()
        await worker.wait_for_log("slack_socket_mode_connected", timeout=30)
        answers = _script(sim, pace=0.06)
        threads = await _ask_over_http(port, "W")
        await _all_streaming(slack)
        stopped = await _sigterm_and_wait(stopping, timeout=15)
        assert stopped.code == 0
        assert _draining_turns(stopping) == THREADS
        await _wait_for_a_recovery_pass(db, worker, after=stopped.at)
        per_thread = await _check_answered_once(slack, db, threads, answers)
        assert worker.count("turns_interrupted") == 0
    _report(
        "web beside a worker, web stopped",
        db,
        answers_per_thread=per_thread,
        notices=len(_notice_calls(slack)),
        drain_s=stopped.seconds,
        draining_turns=_draining_turns(stopping),
    )


async def test_stopping_a_socket_mode_worker_beside_web_answers_each_thread_once(
    sim: Simulator, db: str
) -> None:
    """The events come over Socket Mode to the `worker`, which is stopped; `web` keeps running."""
    async with FakeSlack() as slack, Fleet() as fleet:
        env = _settings(slack, sim, db, drain=15)
        stopping = await fleet.start("worker", {**env, "SLACK_APP_TOKEN": slack.app_token})
        other = await fleet.start("web", env)
        await stopping.wait_for_log("slack_socket_mode_connected", timeout=30)
        await other.port()
        answers = _script(sim, pace=0.06)
        threads = await _ask_over_socket(slack, "S")
        await _all_streaming(slack)
        stopped = await _sigterm_and_wait(stopping, timeout=15)
        assert stopped.code == 0
        assert _draining_turns(stopping) == THREADS
        await _wait_for_a_recovery_pass(db, other, after=stopped.at)
        per_thread = await _check_answered_once(slack, db, threads, answers)
        assert other.count("turns_interrupted") == 0
    _report(
        "worker beside web, worker stopped",
        db,
        answers_per_thread=per_thread,
        notices=len(_notice_calls(slack)),
        drain_s=stopped.seconds,
        draining_turns=_draining_turns(stopping),
    )


async def test_a_rolling_restart_answers_each_thread_once_and_the_new_process_carries_on(
    sim: Simulator, db: str
) -> None:
    """The new process starts while the old one streams; then the old one gets SIGTERM."""
    async with FakeSlack() as slack, Fleet() as fleet:
        env = _settings(slack, sim, db, drain=15)
        old = await fleet.start("web", env)
        port = await old.port()
        answers = _script(sim, pace=0.3)  # ~12 s: outlasts the new process's start
        threads = await _ask_over_http(port, "R")
        await slack.wait_for("chat.startStream", count=THREADS, timeout=15)
        new = await fleet.start("web", env)
        new_port = await new.port()
        await _all_streaming(slack)
        stopped = await _sigterm_and_wait(old, timeout=15)
        assert stopped.code == 0
        assert _draining_turns(old) == THREADS
        await _wait_for_a_recovery_pass(db, new, after=stopped.at)
        per_thread = await _check_answered_once(slack, db, threads, answers)
        assert new.count("turns_interrupted") == 0

        sim.enqueue(Text("The follow-up answer."))
        await _mention(new_port, "and then?", "300.000002", "EvR-next", threads[0])
        turns = await _wait_for_turns(db, THREADS + 1)
        assert turns[-1].answers == ["The follow-up answer."]
        said = [str(m["content"]) for m in sim.requests_to("chat")[-1].body["messages"]]  # type: ignore[index]
        assert said[-1].endswith("and then?")
        assert said[-2] == str(_posted(slack, threads[0])[0]["text"]), "it sees the real answer"
        assert not any(NOTICE in text for text in said)
    _report(
        "rolling restart",
        db,
        answers_per_thread=per_thread,
        notices=len(_notice_calls(slack)),
        drain_s=stopped.seconds,
        draining_turns=_draining_turns(old),
    )


# -- the deadline, and a second signal ------------------------------------------------------


async def test_turns_open_at_the_drain_deadline_get_one_notice_from_the_stopping_process(
    sim: Simulator, db: str
) -> None:
    async with FakeSlack() as slack, Fleet() as fleet:
        env = _settings(slack, sim, db, drain=1)
        stopping = await fleet.start("web", env)
        other = await fleet.start("web", env)
        port = await stopping.port()
        await other.port()
        _script(sim, pace=0.25)  # ~10 s per answer: far past the 1 s deadline
        threads = await _ask_over_http(port, "D")
        await _all_streaming(slack)
        stopped = await _sigterm_and_wait(stopping, timeout=10)
        assert stopped.code == 0
        assert 1 <= stopped.seconds < 5, stopped
        assert _draining_turns(stopping) == THREADS
        [passed] = stopping.records("drain_deadline_passed")
        assert passed["interrupted"] == THREADS
        notices_at_exit = len(_notice_calls(slack))
        await _wait_for_a_recovery_pass(db, other, after=stopped.at)  # it had its chance

        for thread in threads:  # the half-streamed reply became the notice: one message
            posted = _posted(slack, thread)
            assert [m["text"] for m in posted] == [INTERRUPTED], posted
            assert not posted[0].get("streaming")
        notices = _notice_calls(slack)
        assert len(notices) == notices_at_exit == THREADS, notices
        assert {c.method for c in notices} == {"chat.update"}, "from the stopping process"
        assert other.count("turns_interrupted") == 0, "the other process posted nothing"
        assert not any(
            "Answer" in str(c.args.get("markdown_text") or c.args.get("text"))
            for c in slack.calls_to("chat.stopStream") + slack.calls_to("chat.update")
        ), "no answer was finished after the notice"
        turns = await _turns(db)
        assert [(t.status, t.error, t.answers) for t in turns] == [
            ("interrupted", "shutdown deadline passed", [INTERRUPTED])
        ] * THREADS
        per_thread = [sum(NOTICE in str(m["text"]) for m in _posted(slack, t)) for t in threads]
    _report(
        "drain deadline (SHUTDOWN_DRAIN_SECONDS=1)",
        db,
        notices_per_thread=per_thread,
        answers=0,
        drain_s=stopped.seconds,
        draining_turns=_draining_turns(stopping),
    )


async def test_a_second_sigterm_during_the_drain_stops_at_once(sim: Simulator, db: str) -> None:
    """SHUTDOWN_DRAIN_SECONDS=30 and answers that take ~20 s: the second SIGTERM ends the process
    within a few seconds. Its turns are left open, as after a crash, and the other process closes
    each once with the notice."""
    async with FakeSlack() as slack, Fleet() as fleet:
        env = _settings(slack, sim, db, drain=30)
        stopping = await fleet.start("web", env)
        other = await fleet.start("web", env)
        port = await stopping.port()
        await other.port()
        _script(sim, pace=0.5)
        threads = await _ask_over_http(port, "X")
        await _all_streaming(slack)
        started = time.monotonic()
        stopping.send_signal()
        draining = await stopping.wait_for_log("draining", timeout=10)
        assert draining["turns"] == THREADS
        second = time.monotonic()
        stopping.send_signal()
        code = await stopping.wait_exit(timeout=10)
        ended = time.monotonic()
        assert ended - second < 5, f"{ended - second:.2f} s after the second SIGTERM"
        assert stopping.count("stopping_now") == 1
        assert stopping.count("drain_deadline_passed") == 0

        # Its pid is gone: the other process queues the turns again at its next look (in one or
        # more) and runs each once, replacing the half-streamed reply.
        await other.wait_until(lambda: _requeued(other) >= THREADS, timeout=10)
        assert _requeued(other) == THREADS
        assert _closed_as_orphans(other) == 0
        await _check_rerun_once(slack, db, threads)
    _report(
        "second SIGTERM (SHUTDOWN_DRAIN_SECONDS=30)",
        db,
        exit_code=code,
        after_second_s=ended - second,
        total_s=ended - started,
        rerun=THREADS,
        draining_turns=draining["turns"],
    )


async def test_a_second_sigterm_stops_web_concurrency_2_at_once(sim: Simulator, db: str) -> None:
    """With WEB_CONCURRENCY=2 the first process drains alongside its worker, so a second SIGTERM
    to it ends both at once (it passes the signal on) rather than after the worker's drain."""
    async with FakeSlack() as slack, Fleet() as fleet:
        env = _settings(slack, sim, db, drain=30)
        stopping = await fleet.start("web", {**env, "WEB_CONCURRENCY": "2"})
        other = await fleet.start("web", env)
        port = await stopping.port()
        await stopping.wait_for_count("http_listening", 2, timeout=30)
        await other.port()
        [started_worker] = stopping.records("web_worker_started")
        _script(sim, pace=0.5)
        threads = await _ask_over_http(port, "Y")
        await _all_streaming(slack)
        started = time.monotonic()
        stopping.send_signal()
        await stopping.wait_until(lambda: _draining_turns(stopping) == THREADS, timeout=10)
        second = time.monotonic()
        stopping.send_signal()
        code = await stopping.wait_exit(timeout=10)
        ended = time.monotonic()
        assert ended - second < 5, f"{ended - second:.2f} s after the second SIGTERM"
        assert stopping.count("stopping_now") == 2, "the worker got the second signal too"
        with pytest.raises(ProcessLookupError):
            os.kill(int(started_worker["pid"]), 0)  # type: ignore[call-overload]

        # Once the first process is gone, its worker (for the moment it still runs) may queue
        # some of them again: whoever takes a turn takes it alone. The other process runs them.
        await other.wait_until(lambda: _requeued(stopping, other) >= THREADS, timeout=10)
        assert _requeued(stopping, other) == THREADS
        assert _closed_as_orphans(stopping, other) == 0
        await _check_rerun_once(slack, db, threads)
    _report(
        "second SIGTERM, WEB_CONCURRENCY=2 (SHUTDOWN_DRAIN_SECONDS=30)",
        db,
        exit_code=code,
        after_second_s=ended - second,
        total_s=ended - started,
        rerun=THREADS,
        draining=[r["turns"] for r in stopping.records("draining")],
    )
