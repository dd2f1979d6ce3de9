-- taskhost DatabaseBackend, SQLite, version 4: rescue counts.
--
-- rescues: how many times the row was rescued from a worker that stopped renewing its lease; at
-- the backend's max_rescues the rescue ends it FAILED instead of READY again.
-- See docs/decisions/010-idempotent-claims-and-rescues.md.
ALTER TABLE taskhost_tasks ADD COLUMN rescues INTEGER NOT NULL DEFAULT 0;
