-- The local knowledge base: ingested files and their embedded chunks.

CREATE TABLE knowledge_files (
    path       TEXT PRIMARY KEY,
    sha256     TEXT NOT NULL,
    chunks     INTEGER NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE knowledge_chunks (
    id        INTEGER PRIMARY KEY,
    path      TEXT    NOT NULL REFERENCES knowledge_files(path) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    heading   TEXT    NOT NULL DEFAULT '',
    text      TEXT    NOT NULL,
    model     TEXT    NOT NULL,
    embedding BLOB    NOT NULL
);
CREATE INDEX knowledge_chunks_path ON knowledge_chunks (path, position);
