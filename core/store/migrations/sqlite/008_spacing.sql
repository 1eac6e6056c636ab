-- When an action that must be spaced out across every process (e.g. Discord's IDENTIFY, one per
-- five seconds per bucket) last happened.

CREATE TABLE spaced_actions (
    name    TEXT PRIMARY KEY,
    last_at REAL NOT NULL
) WITHOUT ROWID;
