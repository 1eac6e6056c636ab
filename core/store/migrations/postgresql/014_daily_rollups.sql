-- The overview's per-day figures of days that are over (their turns and usage never change).
CREATE TABLE daily_rollups (
    day_start   DOUBLE PRECISION PRIMARY KEY,
    turns       BIGINT NOT NULL,
    people      BIGINT NOT NULL,
    cost_usd    DOUBLE PRECISION NOT NULL,
    tokens      BIGINT NOT NULL,
    computed_at DOUBLE PRECISION NOT NULL
);
