-- taskhost DatabaseBackend, PostgreSQL, version 4: claim ids and rescue counts.
--
-- claim_id: the id of the claim that made a row RUNNING. A claim whose session the server ended
-- (pg_terminate_backend, restart) may have committed before the client heard back; its retry
-- looks up the rows of that claim id instead of claiming others and orphaning these.
-- rescues: how many times the row was rescued from a worker that stopped renewing its lease; at
-- the backend's max_rescues the rescue ends it FAILED instead of READY again.
-- Both columns are added without a rewrite (NULL and a constant default).
-- See docs/decisions/010-idempotent-claims-and-rescues.md.
ALTER TABLE taskhost_tasks
    ADD COLUMN claim_id uuid,
    ADD COLUMN rescues integer NOT NULL DEFAULT 0;
