-- taskhost DatabaseBackend, SQLite, version 1: the tasks table.
-- Times are INTEGER microseconds since the Unix epoch (UTC); JSON columns are TEXT.
CREATE TABLE taskhost_schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL
) STRICT;

CREATE TABLE taskhost_tasks (
    id                TEXT    NOT NULL PRIMARY KEY,
    task_path         TEXT    NOT NULL,
    queue_name        TEXT    NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0
        CONSTRAINT taskhost_tasks_priority_range CHECK (priority BETWEEN -100 AND 100),
    backend_name      TEXT    NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'READY'
        CONSTRAINT taskhost_tasks_status_valid
        CHECK (status IN ('READY', 'RUNNING', 'FAILED', 'SUCCESSFUL')),
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
