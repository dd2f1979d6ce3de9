-- taskhost DatabaseBackend, SQLite, version 3: the status CHECK without an IN list.
--
-- SQLite evaluates `status IN ('READY', 'RUNNING', 'FAILED', 'SUCCESSFUL')` in a CHECK
-- constraint by building a temporary b-tree of the four values for every row it inserts or
-- updates (about a fifth of the instructions of an insert); the same test written as ORs is
-- evaluated in place. The rule is unchanged. SQLite cannot alter a constraint, so the table is
-- rebuilt (SQLite's documented procedure: new table, copy, drop, rename, indexes again), rowids
-- kept (they order results enqueued in the same microsecond). See
-- docs/decisions/005-sqlite-status-check.md.
CREATE TABLE taskhost_tasks_v3 (
    id                TEXT    NOT NULL PRIMARY KEY,
    task_path         TEXT    NOT NULL,
    queue_name        TEXT    NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0
        CONSTRAINT taskhost_tasks_priority_range CHECK (priority BETWEEN -100 AND 100),
    backend_name      TEXT    NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'READY'
        CONSTRAINT taskhost_tasks_status_valid
        CHECK (status = 'READY' OR status = 'RUNNING' OR status = 'FAILED'
               OR status = 'SUCCESSFUL'),
    args              TEXT    NOT NULL DEFAULT '[]',
    kwargs            TEXT    NOT NULL DEFAULT '{}',
    takes_context     INTEGER NOT NULL DEFAULT 0,
    is_async          INTEGER NOT NULL DEFAULT 0,
    run_after         INTEGER,
    enqueued_at       INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    last_attempted_at INTEGER,
    worker_ids        TEXT    NOT NULL DEFAULT '[]',
    errors            TEXT    NOT NULL DEFAULT '[]',
    return_value      TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER CHECK (max_attempts IS NULL OR max_attempts >= 1),
    timeout_secs      REAL,
    lease_token       INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  INTEGER
) STRICT;

INSERT INTO taskhost_tasks_v3 (
    rowid, id, task_path, queue_name, priority, backend_name, status, args, kwargs, takes_context,
    is_async, run_after, enqueued_at, started_at, finished_at, last_attempted_at, worker_ids,
    errors, return_value, attempts, max_attempts, timeout_secs, lease_token, lease_owner,
    lease_expires_at
)
SELECT
    rowid, id, task_path, queue_name, priority, backend_name, status, args, kwargs, takes_context,
    is_async, run_after, enqueued_at, started_at, finished_at, last_attempted_at, worker_ids,
    errors, return_value, attempts, max_attempts, timeout_secs, lease_token, lease_owner,
    lease_expires_at
FROM taskhost_tasks;

DROP TABLE taskhost_tasks;

ALTER TABLE taskhost_tasks_v3 RENAME TO taskhost_tasks;

CREATE INDEX taskhost_tasks_claim_idx ON taskhost_tasks (
    backend_name,
    priority DESC,
    COALESCE(run_after, 253370764800000000),
    enqueued_at,
    id
) WHERE status = 'READY';

CREATE INDEX taskhost_tasks_lease_idx ON taskhost_tasks (backend_name, lease_expires_at)
    WHERE status = 'RUNNING';

CREATE INDEX taskhost_tasks_finished_idx ON taskhost_tasks (finished_at)
    WHERE finished_at IS NOT NULL;
