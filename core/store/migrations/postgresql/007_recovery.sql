-- Which process runs each turn, and when each process last said it was alive, so that the turns
-- of a process that died (kill -9, power loss) can be closed by whoever starts next.

ALTER TABLE turns ADD COLUMN owner TEXT NOT NULL DEFAULT '';

CREATE TABLE processes (
    owner      TEXT PRIMARY KEY,
    started_at DOUBLE PRECISION NOT NULL,
    seen_at    DOUBLE PRECISION NOT NULL
);
