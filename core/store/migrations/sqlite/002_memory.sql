-- Running summaries and pinned notes, per conversation epoch.

CREATE TABLE summaries (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    epoch           INTEGER NOT NULL,
    text            TEXT    NOT NULL DEFAULT '',
    facts           TEXT    NOT NULL DEFAULT '[]',
    open_questions  TEXT    NOT NULL DEFAULT '[]',
    covers_until    INTEGER NOT NULL DEFAULT 0,
    tokens          INTEGER NOT NULL DEFAULT 0,
    model           TEXT    NOT NULL DEFAULT '',
    failures        INTEGER NOT NULL DEFAULT 0,
    retry_after     REAL    NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    updated_at      REAL    NOT NULL,
    PRIMARY KEY (conversation_id, epoch)
) WITHOUT ROWID;

CREATE TABLE pins (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    epoch           INTEGER NOT NULL,
    text            TEXT    NOT NULL,
    tokens          INTEGER NOT NULL,
    pinned_by       TEXT    NOT NULL DEFAULT '',
    created_at      REAL    NOT NULL
);
CREATE INDEX pins_conversation ON pins (conversation_id, epoch, id);
