-- Conversations, their messages, turns, usage, processed deliveries and scoped settings.

CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY,
    key         TEXT    NOT NULL UNIQUE,
    platform    TEXT    NOT NULL,
    workspace   TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    thread      TEXT    NOT NULL,
    epoch       INTEGER NOT NULL DEFAULT 0,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL
);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    epoch           INTEGER NOT NULL,
    turn_id         INTEGER,
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant', 'tool', 'system')),
    user_id         TEXT    NOT NULL DEFAULT '',
    user_name       TEXT    NOT NULL DEFAULT '',
    content         TEXT    NOT NULL,
    tool_calls      TEXT,
    tool_call_id    TEXT    NOT NULL DEFAULT '',
    attachments     TEXT,
    tokens          INTEGER NOT NULL DEFAULT 0,
    created_at      REAL    NOT NULL
);
-- The window query: newest turn first within one conversation's current epoch. Messages are
-- ordered by turn, then id: a turn's answer is written after later turns' questions arrived.
CREATE INDEX messages_window ON messages (conversation_id, epoch, turn_id, id);

CREATE TABLE turns (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    user_message_id INTEGER NOT NULL REFERENCES messages(id),
    delivery_id     TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL
                    CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted')),
    model           TEXT    NOT NULL DEFAULT '',
    error           TEXT    NOT NULL DEFAULT '',
    created_at      REAL    NOT NULL,
    started_at      REAL,
    finished_at     REAL
);
CREATE INDEX turns_open ON turns (status) WHERE status IN ('queued', 'running');
CREATE INDEX turns_conversation ON turns (conversation_id, id);

CREATE TABLE deliveries (
    platform    TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    expires_at  REAL NOT NULL,
    PRIMARY KEY (platform, delivery_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_expiry ON deliveries (expires_at);

CREATE TABLE usage (
    id                INTEGER PRIMARY KEY,
    turn_id           INTEGER,
    conversation_id   INTEGER,
    platform          TEXT    NOT NULL,
    workspace         TEXT    NOT NULL,
    channel           TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    purpose           TEXT    NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd          REAL    NOT NULL,
    created_at        REAL    NOT NULL
);
CREATE INDEX usage_user_time ON usage (platform, workspace, user_id, created_at);
CREATE INDEX usage_workspace_time ON usage (platform, workspace, created_at);

CREATE TABLE scoped_settings (
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_by TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    PRIMARY KEY (scope, name)
) WITHOUT ROWID;
