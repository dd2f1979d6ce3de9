-- taskhost DatabaseBackend, PostgreSQL, version 2: the indexes behind claim, rescue and prune.

-- Claim: READY rows of one alias in claim order. A missing run_after sorts as 'infinity'
-- (Django's far-future sentinel), so due deferred tasks come first within a priority. The
-- claim query repeats this exact expression, so no sort is needed.
CREATE INDEX taskhost_tasks_claim_idx ON taskhost_tasks (
    backend_name,
    priority DESC,
    (COALESCE(run_after, 'infinity'::timestamptz)),
    enqueued_at,
    id
) WHERE status = 'READY';

-- Rescue: RUNNING rows whose lease expired.
CREATE INDEX taskhost_tasks_lease_idx ON taskhost_tasks (backend_name, lease_expires_at)
    WHERE status = 'RUNNING';

-- Prune: finished rows by age.
CREATE INDEX taskhost_tasks_finished_idx ON taskhost_tasks (finished_at)
    WHERE finished_at IS NOT NULL;
