-- The admin site (sessions, sign-in state, the login rate limit, the audit log), feedback on
-- answers, background jobs claimed by one process at a time, and the removal of message text
-- (RETENTION_DAYS, `purge --user`).

-- A session's cookie carries a random id; the row keeps only its SHA-256, so a copy of the
-- database opens no session.
CREATE TABLE admin_sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    user_name  TEXT NOT NULL DEFAULT '',
    grant_kind TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    ip         TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);

-- Sign in with Slack between the redirect and the callback: the state (hashed), its nonce, the
-- browser that started it (a hash of its login cookie) and the redirect URI sent.
CREATE TABLE admin_login_states (
    state_hash   TEXT PRIMARY KEY,
    nonce        TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at   REAL NOT NULL
) WITHOUT ROWID;

-- Sign-in attempts per client address, counted before each is checked and dropped when it
-- succeeds: the rate limit counts these rows, so it holds across processes.
CREATE TABLE admin_login_failures (
    id        INTEGER PRIMARY KEY,
    ip        TEXT NOT NULL,
    failed_at REAL NOT NULL
);
CREATE INDEX admin_login_failures_ip ON admin_login_failures (ip, failed_at);

-- Who changed what: settings (from the site and /config), purges, exports.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '{}'
);

-- A person's 👍 or 👎 on an answer (one per person and turn).
CREATE TABLE feedback (
    turn_id    INTEGER NOT NULL REFERENCES turns(id),
    user_id    TEXT    NOT NULL,
    value      TEXT    NOT NULL CHECK (value IN ('positive', 'negative')),
    comment    TEXT    NOT NULL DEFAULT '',
    created_at REAL    NOT NULL,
    PRIMARY KEY (turn_id, user_id)
) WITHOUT ROWID;

-- A periodic job that one process at a time runs: who holds it until when, and when it last ran.
CREATE TABLE job_leases (
    name         TEXT PRIMARY KEY,
    owner        TEXT NOT NULL DEFAULT '',
    lease_until  REAL NOT NULL DEFAULT 0,
    last_done_at REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The overview's per-day figures of days that are over (their turns and usage never change).
CREATE TABLE daily_rollups (
    day_start   REAL PRIMARY KEY,
    turns       INTEGER NOT NULL,
    people      INTEGER NOT NULL,
    cost_usd    REAL NOT NULL,
    tokens      INTEGER NOT NULL,
    computed_at REAL NOT NULL
) WITHOUT ROWID;

-- Why and when a message's text was removed ('retention' or 'erasure'); the row stays.
ALTER TABLE messages ADD COLUMN removed TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN removed_at REAL;
CREATE INDEX messages_text_age ON messages (created_at) WHERE removed_at IS NULL;
CREATE INDEX messages_user ON messages (user_id, conversation_id);

-- The admin site's date ranges.
CREATE INDEX turns_time ON turns (created_at);
CREATE INDEX usage_time ON usage (created_at);
CREATE INDEX moderation_events_user ON moderation_events (user_id);
