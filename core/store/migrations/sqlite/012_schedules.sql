-- Scheduled work: channel digests and recurring prompts (`schedules`), every run with its
-- outcome (`schedule_runs`, one per schedule and due time), and the Batch API jobs digests wait
-- in (`schedule_batches`), so a restart resumes polling them.

CREATE TABLE schedules (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('digest', 'prompt')),
    platform      TEXT    NOT NULL,
    workspace     TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    thread        TEXT    NOT NULL,
    owner_id      TEXT    NOT NULL,
    owner_name    TEXT    NOT NULL DEFAULT '',
    spec          TEXT    NOT NULL,
    cron          TEXT    NOT NULL,
    time_zone     TEXT    NOT NULL,
    prompt        TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'paused', 'cancelled')),
    next_run_at   REAL    NOT NULL,
    last_run_at   REAL,
    last_outcome  TEXT    NOT NULL DEFAULT '',
    last_detail   TEXT    NOT NULL DEFAULT '',
    covered_until REAL,
    skip_noticed  INTEGER NOT NULL DEFAULT 0,
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE status = 'active';
CREATE INDEX schedules_place ON schedules (platform, workspace, channel);
-- One digest per channel (a new `/digest daily ...` replaces the schedule of the old one).
CREATE UNIQUE INDEX schedules_one_digest ON schedules (platform, workspace, channel)
    WHERE kind = 'digest' AND status != 'cancelled';

CREATE TABLE schedule_runs (
    id           INTEGER PRIMARY KEY,
    schedule_id  INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    due_at       REAL    NOT NULL,
    catch_up     INTEGER NOT NULL DEFAULT 0,
    status       TEXT    NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'batched', 'posting', 'done', 'empty', 'skipped',
                                   'failed')),
    owner        TEXT    NOT NULL DEFAULT '',
    batch_id     TEXT,
    window_start REAL,
    window_end   REAL,
    payload      TEXT    NOT NULL DEFAULT '',
    detail       TEXT    NOT NULL DEFAULT '',
    started_at   REAL    NOT NULL,
    finished_at  REAL,
    UNIQUE (schedule_id, due_at)
);
CREATE INDEX schedule_runs_open ON schedule_runs (status)
    WHERE status IN ('running', 'batched', 'posting');
CREATE INDEX schedule_runs_batch ON schedule_runs (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE schedule_batches (
    id            TEXT    PRIMARY KEY,
    platform      TEXT    NOT NULL,
    endpoint      TEXT    NOT NULL,
    input_file_id TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'submitted' CHECK (status IN ('submitted', 'collected')),
    remote_status TEXT    NOT NULL DEFAULT '',
    polls         INTEGER NOT NULL DEFAULT 0,
    next_poll_at  REAL    NOT NULL,
    lease_owner   TEXT    NOT NULL DEFAULT '',
    lease_until   REAL    NOT NULL DEFAULT 0,
    created_at    REAL    NOT NULL,
    expires_at    REAL    NOT NULL,
    finished_at   REAL
);
CREATE INDEX schedule_batches_open ON schedule_batches (next_poll_at) WHERE status = 'submitted';
