-- Moderation events, and who each turn was for (rate limits per user).

CREATE TABLE moderation_events (
    id          INTEGER PRIMARY KEY,
    created_at  REAL    NOT NULL,
    platform    TEXT    NOT NULL,
    workspace   TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    thread      TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    direction   TEXT    NOT NULL CHECK (direction IN ('input', 'output')),
    action      TEXT    NOT NULL CHECK (action IN ('flag', 'block', 'error')),
    categories  TEXT    NOT NULL,
    scores      TEXT    NOT NULL,
    excerpt     TEXT    NOT NULL
);
CREATE INDEX moderation_events_time ON moderation_events (platform, workspace, created_at);

ALTER TABLE turns ADD COLUMN user_key TEXT NOT NULL DEFAULT '';
CREATE INDEX turns_user_time ON turns (user_key, created_at);
