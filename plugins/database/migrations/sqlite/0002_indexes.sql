-- taskhost DatabaseBackend, SQLite, version 2: the indexes behind claim, rescue and prune.

-- Claim: READY rows of one alias in claim order. A missing run_after sorts as Django's
-- far-future sentinel (9999-01-01T00:00:00Z), so due deferred tasks come first within a
-- priority. The claim query repeats this exact expression, so no sort is needed.
CREATE INDEX taskhost_tasks_claim_idx ON taskhost_tasks (
    backend_name,
    priority DESC,
    COALESCE(run_after, 253370764800000000),
    enqueued_at,
    id
) WHERE status = 'READY';

-- Rescue: RUNNING rows whose lease expired.
CREATE INDEX taskhost_tasks_lease_idx ON taskhost_tasks (backend_name, lease_expires_at)
    WHERE status = 'RUNNING';

-- Prune: finished rows by age.
CREATE INDEX taskhost_tasks_finished_idx ON taskhost_tasks (finished_at)
    WHERE finished_at IS NOT NULL;
