-- Interactive replies: feedback per turn and user, attempts of a turn (regenerate), stopped
-- replies, and tool calls waiting for a person's approval.

-- The admin site's branch creates the same table in its migration 010; whichever runs first
-- creates it.
CREATE TABLE IF NOT EXISTS feedback (
    turn_id    INTEGER,
    user_id    TEXT,
    value      TEXT,
    comment    TEXT    NOT NULL DEFAULT '',
    created_at REAL,
    UNIQUE (turn_id, user_id)
);

-- A regenerated turn's earlier answers stay stored, marked superseded; memory skips them.
ALTER TABLE messages ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE turns ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE turns ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0;

CREATE TABLE tool_approvals (
    id              INTEGER PRIMARY KEY,
    turn_id         INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL,
    attempt         INTEGER NOT NULL DEFAULT 1,
    call_id         TEXT    NOT NULL,
    tool            TEXT    NOT NULL,
    arguments       TEXT    NOT NULL,
    -- set when a hosted MCP server asked (OpenAI runs the call once approved): its label
    hosted_server   TEXT    NOT NULL DEFAULT '',
    requested_by    TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    decided_by      TEXT    NOT NULL DEFAULT '',
    owner           TEXT    NOT NULL DEFAULT '',
    resumed_by      TEXT    NOT NULL DEFAULT '',
    created_at      REAL    NOT NULL,
    expires_at      REAL    NOT NULL,
    decided_at      REAL
);
CREATE INDEX tool_approvals_pending ON tool_approvals (expires_at) WHERE status = 'pending';
CREATE INDEX tool_approvals_turn ON tool_approvals (turn_id);
