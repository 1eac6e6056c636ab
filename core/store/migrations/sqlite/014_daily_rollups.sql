-- The overview's per-day figures of days that are over (their turns and usage never change).
CREATE TABLE daily_rollups (
    day_start   REAL PRIMARY KEY,
    turns       INTEGER NOT NULL,
    people      INTEGER NOT NULL,
    cost_usd    REAL NOT NULL,
    tokens      INTEGER NOT NULL,
    computed_at REAL NOT NULL
) WITHOUT ROWID;
