-- taskhost DatabaseBackend, PostgreSQL, version 3: taskhost_enqueue(), so any client can enqueue
-- a task inside its own transaction: the row (and the NOTIFY that wakes workers) commits or
-- rolls back with the application's data. Parameters after `args` have defaults; pass NULL
-- max_attempts to use the backend's `max_attempts` option. Returns the id.
CREATE FUNCTION taskhost_enqueue(
    id            uuid,
    task_path     text,
    args          jsonb,
    queue_name    text        DEFAULT 'default',
    priority      integer     DEFAULT 0,
    run_after     timestamptz DEFAULT NULL,
    backend_name  text        DEFAULT 'default',
    max_attempts  integer     DEFAULT NULL,
    kwargs        jsonb       DEFAULT '{}',
    takes_context boolean     DEFAULT false,
    is_async      boolean     DEFAULT false
) RETURNS uuid
LANGUAGE plpgsql
-- The tables live in the schema this migration ran in, whatever the caller's search_path.
SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO taskhost_tasks (
        id, task_path, args, queue_name, priority, run_after, backend_name, max_attempts,
        kwargs, takes_context, is_async, status, enqueued_at
    ) VALUES (
        $1, $2, COALESCE($3, '[]'), $4, $5, $6, $7, $8, COALESCE($9, '{}'), $10, $11,
        'READY', clock_timestamp()
    );
    PERFORM pg_notify('taskhost_tasks', $4);
    RETURN $1;
END;
$$;
