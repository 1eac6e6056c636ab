"""Offered far more turns than it may run at once, a `web` process acknowledges every event before
the turns are done; the rest wait in the database and are answered once each, in order per
conversation. Past TURN_QUEUE_LIMIT an event is refused and, delivered again, answered. With
TURN_RUNNERS=worker, `web` only stores events and a `worker` answers them (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import aiohttp

from bots.slack.reply import QUEUED_NOTICE
from core.store import connect
from simulator import Simulator
from tests.fakes.slack import FakeSlack, sign
from tests.reliability.processes import BotProcess
from tests.reliability.test_crash_recovery import SECRET, _env
from tests.slack.rig import event_callback, mention

CONVERSATIONS = 4
MESSAGES = 5  # per conversation


async def _deliver(
    http: aiohttp.ClientSession, port: int, event: dict[str, object], event_id: str, retry: int = 0
) -> int:
    body = json.dumps(event_callback(event, event_id)).encode()
    headers = {**sign(SECRET, body), "Content-Type": "application/json"}
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
    url = f"http://127.0.0.1:{port}/slack/events"
    async with http.post(url, data=body, headers=headers) as response:
        return response.status


def _answers(slack: FakeSlack) -> dict[str, list[str]]:
    """The bot's finished answers per thread, oldest first (ephemeral notices are not messages)."""
    found: dict[str, list[str]] = {}
    for message in sorted(slack.messages.values(), key=lambda m: str(m["ts"])):
        if message.get("thread_ts") and not message.get("streaming"):
            found.setdefault(str(message["thread_ts"]), []).append(str(message["text"]))
    return found


def _answered(slack: FakeSlack) -> int:
    return sum(len(texts) for texts in _answers(slack).values())


async def _turn_states(db: str) -> Counter[str]:
    async with connect(db) as store:
        rows = await store.fetchall("SELECT status FROM turns")
    return Counter(str(r[0]) for r in rows)


async def test_acks_come_before_the_turns_and_every_message_is_answered_once_in_order(
    on_both_backends: str,
) -> None:
    db = on_both_backends
    async with FakeSlack() as slack, Simulator(latency=0.5) as sim:
        env = {**_env(slack, sim, db), "MAX_CONCURRENT_TURNS": "2"}
        web = await BotProcess.start("web", env)
        try:
            port = await web.port()
            threads = [f"{500 + c}.000001" for c in range(CONVERSATIONS)]
            statuses = []
            async with aiohttp.ClientSession() as http:
                for m in range(MESSAGES):  # message m of every conversation, then m + 1
                    for c, thread in enumerate(threads):
                        ts = thread if m == 0 else f"{500 + c}.{m + 1:06d}"
                        event = mention(f"c{c} m{m}", ts, None if m == 0 else thread)
                        statuses.append(await _deliver(http, port, event, f"Ev{c}-{m}"))
            answered_when_acked = _answered(slack)
            total = CONVERSATIONS * MESSAGES
            assert statuses == [200] * total
            # Two turns at a time, half a second each: the acknowledgements did not wait.
            assert answered_when_acked < total // 2, answered_when_acked
            assert web.count("turn_queued") > 0
            await slack.wait_until(lambda: _answered(slack) >= total, timeout=60)
            await asyncio.sleep(0.5)  # time for a duplicate to show
        finally:
            assert await web.stop() == 0
        answers = _answers(slack)
        for c, thread in enumerate(threads):
            expected = [f"You said: c{c} m{m}" for m in range(MESSAGES)]
            assert answers[thread] == expected, "once each, in arrival order"
        queued_notices = [
            c for c in slack.calls_to("chat.postEphemeral") if c.args.get("text") == QUEUED_NOTICE
        ]
        assert queued_notices, "the senders of queued messages were told"
    assert await _turn_states(db) == {"done": total}


async def test_the_queue_limit_refuses_an_event_and_its_redelivery_is_answered(
    on_both_backends: str,
) -> None:
    db = on_both_backends
    async with FakeSlack() as slack, Simulator(latency=1.0) as sim:
        env = {**_env(slack, sim, db), "MAX_CONCURRENT_TURNS": "1", "TURN_QUEUE_LIMIT": "2"}
        web = await BotProcess.start("web", env)
        try:
            port = await web.port()
            events = {f"Ev{i}": mention(f"q{i}", f"{600 + i}.000001") for i in range(6)}
            async with aiohttp.ClientSession() as http:
                first = {eid: await _deliver(http, port, e, eid) for eid, e in events.items()}
                refused = [eid for eid, status in first.items() if status != 200]
                assert refused, f"the queue limit refused nothing: {first}"
                assert all(first[eid] >= 500 for eid in refused)
                # Slack delivers a refused event again later; by then the queue has room.
                for attempt in range(1, 100):
                    if not refused:
                        break
                    await asyncio.sleep(0.5)
                    refused = [
                        eid
                        for eid in refused
                        if await _deliver(http, port, events[eid], eid, retry=attempt) != 200
                    ]
                assert not refused
            await slack.wait_until(lambda: _answered(slack) >= len(events), timeout=60)
            await asyncio.sleep(0.5)
        finally:
            assert await web.stop() == 0
        answers = _answers(slack)
        assert {t: a for t, a in answers.items()} == {
            f"{600 + i}.000001": [f"You said: q{i}"] for i in range(6)
        }
        assert web.count("slack_event_refused") >= 1
        assert web.count("slack_listener_failed") == 0, "a full queue is not an error"
    assert await _turn_states(db) == {"done": 6}


async def test_an_intake_only_web_stores_events_and_a_worker_answers_them(
    on_both_backends: str,
) -> None:
    db = on_both_backends
    async with FakeSlack() as slack, Simulator() as sim:
        env = {**_env(slack, sim, db), "TURN_RUNNERS": "worker"}
        web = await BotProcess.start("web", env)
        worker = await BotProcess.start("worker", env)
        try:
            port = await web.port()
            await worker.wait_for_log("slack_token_verified")
            async with aiohttp.ClientSession() as http:
                for i in range(3):
                    event = mention(f"w{i}", f"{700 + i}.000001")
                    assert await _deliver(http, port, event, f"EvW{i}") == 200
            await slack.wait_until(lambda: _answered(slack) >= 3, timeout=30)
        finally:
            assert await web.stop() == 0
            assert await worker.stop() == 0
        assert _answers(slack) == {f"{700 + i}.000001": [f"You said: w{i}"] for i in range(3)}
        assert web.count("turn_done") == 0, "web only stored them"
        assert worker.count("turn_done") == 3
        assert web.count("turn_queued") == 3
    assert await _turn_states(db) == {"done": 3}
