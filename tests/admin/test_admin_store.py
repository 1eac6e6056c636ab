"""The admin site's store queries on SQLite and PostgreSQL: sessions, sign-in states and attempts,
daily buckets, usage by dimension, search, the audit of settings changes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from core.store import Store, UsageRow
from core.store.sessions import LoginState, digest
from tests.conftest import make_event

MIDNIGHT = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


async def test_sessions_are_stored_hashed_and_expire(on_both_backends: str) -> None:
    store = await Store.open(on_both_backends)
    try:
        await store.sessions.create(
            "the-session-id",
            user_id="U1",
            user_name="Ada",
            grant="slack-admin",
            csrf_token="csrf",
            ip="10.0.0.1",
            lifetime=60,
        )
        found = await store.sessions.get("the-session-id")
        assert found is not None and (found.user_id, found.csrf_token) == ("U1", "csrf")
        assert await store.sessions.get("the-session-iD") is None
        stored = await store.db.fetchall("SELECT id_hash FROM admin_sessions")
        assert [r[0] for r in stored] == [digest("the-session-id")], "only the digest is kept"
        await store.db.execute("UPDATE admin_sessions SET expires_at = ?", (time.time() - 1,))
        assert await store.sessions.get("the-session-id") is None, "expired"
    finally:
        await store.close()


async def test_a_sign_in_state_is_taken_once(on_both_backends: str) -> None:
    store = await Store.open(on_both_backends)
    try:
        await store.sessions.save_login_state("st", LoginState("n", "b", "https://x/cb"))
        taken = await asyncio.gather(*(store.sessions.take_login_state("st") for _ in range(5)))
        assert [t for t in taken if t is not None] == [LoginState("n", "b", "https://x/cb")]
    finally:
        await store.close()


async def test_attempts_beyond_the_limit_are_refused_even_concurrently(
    on_both_backends: str,
) -> None:
    stores = [await Store.open(on_both_backends) for _ in range(2)]
    try:
        since = time.time() - 300
        results = await asyncio.gather(
            *(
                stores[i % 2].sessions.begin_attempt("1.2.3.4", since=since, limit=5)
                for i in range(12)
            )
        )
        granted = [r for r in results if r is not None]
        assert len(granted) == 5
        await stores[0].sessions.forgive(granted[0])
        assert await stores[1].sessions.begin_attempt("1.2.3.4", since=since, limit=5) is not None
        assert await stores[1].sessions.begin_attempt("5.6.7.8", since=since, limit=5) is not None
    finally:
        for store in stores:
            await store.close()


async def test_days_are_utc_days_on_both_backends(on_both_backends: str) -> None:
    store = await Store.open(on_both_backends)
    try:
        moments = [
            MIDNIGHT + 1,
            MIDNIGHT + 86_399.5,
            MIDNIGHT + 86_400,
            MIDNIGHT + 3 * 86_400 - 0.2,
        ]
        for i, moment in enumerate(moments):
            accepted = await store.accept(
                make_event("x", user=f"u{i % 2}"), text="x", tokens=1, delivery_ttl=60
            )
            assert accepted is not None
            await store.db.execute(
                "UPDATE turns SET created_at = ? WHERE id = ?", (moment, accepted.turn_id)
            )
            row = UsageRow("console", "w1", "c1", f"u{i % 2}", "m", "chat", 10, 0, 5, 0.5)
            await store.usage.record(row)
            await store.db.execute(
                "UPDATE usage SET created_at = ? WHERE id = (SELECT MAX(id) FROM usage)", (moment,)
            )
        days = await store.reports.daily(MIDNIGHT, 4)
        assert [d.turns for d in days] == [2, 1, 1, 0]
        assert [d.users for d in days] == [2, 1, 1, 0]
        assert [d.tokens for d in days] == [30, 15, 15, 0]
        assert [d.cost_usd for d in days] == [1.0, 0.5, 0.5, 0.0]
        assert await store.reports.people(MIDNIGHT, MIDNIGHT + 4 * 86_400) == 2
        by_user = await store.reports.usage_by("user", MIDNIGHT, MIDNIGHT + 86_400)
        assert [(g.key, g.calls, g.cost_usd) for g in by_user] == [
            (("console", "w1", "u0"), 1, 0.5),
            (("console", "w1", "u1"), 1, 0.5),
        ]
        assert await store.reports.has_table("feedback")
        assert not await store.reports.has_table("no_such_table")
    finally:
        await store.close()


async def test_search_takes_every_term_literally(on_both_backends: str) -> None:
    store = await Store.open(on_both_backends)
    try:
        for text, user in (("100% sure_thing", "ada"), ("nothing special", "bob")):
            await store.accept(
                make_event(text, user=user, thread=user), text=text, tokens=1, delivery_ttl=60
            )
        assert [c.thread for c in await store.browse.search(text="100%")] == ["ada"]
        assert [c.thread for c in await store.browse.search(text="e_t")] == ["ada"]
        assert await store.browse.search(text="0%s") == []
        assert await store.browse.search(text="' OR ''='") == []
        assert [c.thread for c in await store.browse.search(user="name-bob")] == ["bob"]
        assert [c.snippet for c in await store.browse.search(text="SPECIAL")] == ["nothing special"]
        assert len(await store.browse.search(channel="c1")) == 2
        assert await store.browse.search(channel="c2", user="ada") == []
        assert len(await store.browse.search(channel="c1", user="ada")) == 1
    finally:
        await store.close()


async def test_every_settings_change_is_audited_with_old_and_new(on_both_backends: str) -> None:
    store = await Store.open(on_both_backends)
    try:
        scope = "channel:slack:T1:C1"
        await store.scoped.set(scope, "model", "gpt-a", "U1")
        await store.scoped.set(scope, "model", "gpt-b", "admin-token", via="site")
        assert await store.scoped.clear(scope, "model", "U2")
        assert not await store.scoped.clear(scope, "model", "U2"), "nothing to clear: no entry"
        entries = await store.audit.recent(action_prefix="setting.")
        assert [
            (e.actor, e.action, e.detail["old"], e.detail["new"], e.detail["via"]) for e in entries
        ] == [
            ("U2", "setting.clear", "gpt-b", None, "command"),
            ("admin-token", "setting.set", "gpt-a", "gpt-b", "site"),
            ("U1", "setting.set", None, "gpt-a", "command"),
        ]
        assert {e.target for e in entries} == {scope}
    finally:
        await store.close()


async def test_closed_days_are_kept_as_rollups_and_today_is_live(on_both_backends: str) -> None:
    store = await Store.open(on_both_backends)
    try:
        now = MIDNIGHT + 2 * 86_400 + 3600  # 01:00 on the third day

        async def turn_at(moment: float) -> None:
            accepted = await store.accept(make_event("x"), text="x", tokens=1, delivery_ttl=60)
            assert accepted is not None
            await store.db.execute(
                "UPDATE turns SET created_at = ? WHERE id = ?", (moment, accepted.turn_id)
            )

        await turn_at(MIDNIGHT + 10)
        await turn_at(now - 60)
        first = await store.reports.daily(MIDNIGHT, 3, now=now)
        assert [d.turns for d in first] == [1, 0, 1]
        kept = await store.db.fetchall("SELECT day_start FROM daily_rollups ORDER BY day_start")
        assert [r[0] for r in kept] == [MIDNIGHT, MIDNIGHT + 86_400], "not the open day"
        await turn_at(now - 30)
        await turn_at(MIDNIGHT + 20)  # not possible in real life: a closed day stays as kept
        again = await store.reports.daily(MIDNIGHT, 3, now=now)
        assert [d.turns for d in again] == [1, 0, 2], "today live, closed days from the rollup"
    finally:
        await store.close()
