-- Server-side (OpenAI Conversations) threads mapped to our conversations, one per epoch.

CREATE TABLE remote_conversations (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    epoch           INTEGER NOT NULL,
    remote_id       TEXT    NOT NULL UNIQUE,
    created_at      REAL    NOT NULL,
    replaced_at     REAL,
    PRIMARY KEY (conversation_id, epoch, remote_id)
) WITHOUT ROWID;
-- At most one live mapping per conversation epoch: a concurrent second creator loses the insert.
CREATE UNIQUE INDEX remote_conversations_live
    ON remote_conversations (conversation_id, epoch) WHERE replaced_at IS NULL;

CREATE TABLE vector_stores (
    name       TEXT PRIMARY KEY,
    remote_id  TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE ingested_files (
    vector_store TEXT NOT NULL,
    path         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    file_id      TEXT NOT NULL,
    created_at   REAL NOT NULL,
    PRIMARY KEY (vector_store, path)
) WITHOUT ROWID;
