-- Per-conversation placeholders of redacted values (REDACT_ENABLED), so a value keeps its placeholder.

CREATE TABLE redactions (
    conversation_id BIGINT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    mapping         TEXT   NOT NULL,
    updated_at      DOUBLE PRECISION NOT NULL
);
