-- The durable turn queue: every turn carries what any process needs to run it (the event as
-- JSON and where its reply goes, as the platform's adapter describes it), the platform message
-- its reply showed first (so a re-run after a crash replaces it) and how often it was started.
-- A queued turn with no owner waits for any process with free capacity to claim it.

ALTER TABLE turns ADD COLUMN event TEXT;
ALTER TABLE turns ADD COLUMN reply_to TEXT;
ALTER TABLE turns ADD COLUMN reply_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE turns ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
CREATE INDEX turns_unclaimed ON turns (id) WHERE status = 'queued' AND owner = '';
