-- Per-conversation placeholders of redacted values (REDACT_ENABLED), so a value keeps its placeholder.

CREATE TABLE redactions (
    conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    mapping         TEXT    NOT NULL,
    updated_at      REAL    NOT NULL
);
