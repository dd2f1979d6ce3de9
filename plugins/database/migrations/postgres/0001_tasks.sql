-- taskhost DatabaseBackend, PostgreSQL, version 1: the tasks table.
CREATE TABLE taskhost_schema_version (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL
);

CREATE TABLE taskhost_tasks (
    id                uuid        NOT NULL PRIMARY KEY,
    task_path         text        NOT NULL,
    queue_name        text        NOT NULL,
    priority          integer     NOT NULL DEFAULT 0
        CONSTRAINT taskhost_tasks_priority_range CHECK (priority BETWEEN -100 AND 100),
    backend_name      text        NOT NULL,
    status            text        NOT NULL DEFAULT 'READY'
        CONSTRAINT taskhost_tasks_status_valid
        CHECK (status IN ('READY', 'RUNNING', 'FAILED', 'SUCCESSFUL')),
    args              jsonb       NOT NULL DEFAULT '[]',
    kwargs            jsonb       NOT NULL DEFAULT '{}',
    takes_context     boolean     NOT NULL DEFAULT false,
    is_async          boolean     NOT NULL DEFAULT false,
    run_after         timestamptz,
    enqueued_at       timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    last_attempted_at timestamptz,
    worker_ids        jsonb       NOT NULL DEFAULT '[]',
    errors            jsonb       NOT NULL DEFAULT '[]',
    return_value      jsonb,
    attempts          integer     NOT NULL DEFAULT 0,
    max_attempts      integer     CHECK (max_attempts IS NULL OR max_attempts >= 1),
    timeout_secs      double precision,
    lease_token       bigint      NOT NULL DEFAULT 0,
    lease_owner       text,
    lease_expires_at  timestamptz
);
