"""The admin site's sign-in state: sessions, Sign in with Slack in flight, failed sign-ins.

Secrets the browser holds (the session id, the OpenID state, the login cookie) are stored only
as SHA-256 digests: reading the database opens no session and completes no sign-in.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from core.store.db import Database, Tx
from core.store.text import storable


def digest(secret: str) -> str:
    """The SHA-256 of a browser-held secret, as stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A signed-in admin: who, how they were admitted (`grant`), and the session's CSRF token."""

    user_id: str
    user_name: str
    grant: str
    csrf_token: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class LoginState:
    """A Sign in with Slack started by one browser: the nonce sent and where Slack returns."""

    nonce: str
    browser_hash: str
    redirect_uri: str


class AdminSessions:
    """Sessions, sign-in states and the failed sign-ins the rate limit counts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        session_id: str,
        *,
        user_id: str,
        user_name: str,
        grant: str,
        csrf_token: str,
        ip: str,
        lifetime: float,
    ) -> None:
        """Store a new session (and forget expired ones)."""
        now = time.time()

        async def store(tx: Tx) -> None:
            await tx.execute("DELETE FROM admin_sessions WHERE expires_at < ?", (now,))
            await tx.execute(
                "INSERT INTO admin_sessions (id_hash, user_id, user_name, grant_kind, csrf_token, "
                "ip, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest(session_id),
                    storable(user_id),
                    storable(user_name),
                    grant,
                    csrf_token,
                    storable(ip),
                    now,
                    now + lifetime,
                ),
            )

        await self._db.write(store, serializable=False)

    async def get(self, session_id: str) -> AdminSession | None:
        """The unexpired session with this id, or None."""
        row = await self._db.fetchone(
            "SELECT user_id, user_name, grant_kind, csrf_token, created_at, expires_at "
            "FROM admin_sessions WHERE id_hash = ? AND expires_at > ?",
            (digest(session_id), time.time()),
        )
        return AdminSession(*row) if row else None

    async def end(self, session_id: str) -> None:
        """Sign out: the session is gone."""
        await self._db.execute(
            "DELETE FROM admin_sessions WHERE id_hash = ?", (digest(session_id),)
        )

    async def save_login_state(
        self, state: str, state_of: LoginState, *, lifetime: float = 600
    ) -> None:
        """Remember a Sign in with Slack in flight (and forget expired ones)."""
        now = time.time()

        async def store(tx: Tx) -> None:
            await tx.execute("DELETE FROM admin_login_states WHERE expires_at < ?", (now,))
            await tx.execute(
                "INSERT INTO admin_login_states (state_hash, nonce, browser_hash, redirect_uri, "
                "expires_at) VALUES (?, ?, ?, ?, ?)",
                (
                    digest(state),
                    state_of.nonce,
                    state_of.browser_hash,
                    storable(state_of.redirect_uri),
                    now + lifetime,
                ),
            )

        await self._db.write(store, serializable=False)

    async def take_login_state(self, state: str) -> LoginState | None:
        """The unexpired sign-in started with `state`, consumed: a state is good once."""

        async def take(tx: Tx) -> LoginState | None:
            row = await tx.fetchone(
                "DELETE FROM admin_login_states WHERE state_hash = ? AND expires_at > ? "
                "RETURNING nonce, browser_hash, redirect_uri",
                (digest(state), time.time()),
            )
            return LoginState(row[0], row[1], row[2]) if row else None

        return await self._db.write(take, serializable=False)

    async def begin_attempt(self, ip: str, *, since: float, limit: int) -> int | None:
        """Count a sign-in attempt from `ip` against the limit before it is checked; None when
        `limit` attempts since `since` failed (or are in flight) already. Returns the attempt's
        id, to `forgive` when it succeeds. Counting before checking, in one transaction that
        behaves serially, means concurrent guesses cannot slip past the limit together."""

        async def begin(tx: Tx) -> int | None:
            await tx.execute("DELETE FROM admin_login_failures WHERE failed_at < ?", (since,))
            row = await tx.fetchone(
                "SELECT COUNT(*) FROM admin_login_failures WHERE ip = ? AND failed_at >= ?",
                (storable(ip), since),
            )
            if row is not None and int(row[0]) >= limit:
                return None
            made = await tx.fetchone(
                "INSERT INTO admin_login_failures (ip, failed_at) VALUES (?, ?) RETURNING id",
                (storable(ip), time.time()),
            )
            assert made is not None
            return int(made[0])

        return await self._db.write(begin)

    async def forgive(self, attempt_id: int) -> None:
        """The attempt succeeded: it no longer counts against the limit."""
        await self._db.execute("DELETE FROM admin_login_failures WHERE id = ?", (attempt_id,))

    async def oldest_attempt(self, ip: str, since: float) -> float | None:
        """When the oldest attempt still counted for `ip` was made (to say when to retry)."""
        row = await self._db.fetchone(
            "SELECT MIN(failed_at) FROM admin_login_failures WHERE ip = ? AND failed_at >= ?",
            (storable(ip), since),
        )
        return float(row[0]) if row and row[0] is not None else None
