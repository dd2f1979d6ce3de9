-- taskhost DatabaseBackend, PostgreSQL, version 9: periodic tasks.
--
-- taskhost_schedules: one row per schedule of `[tasks.<alias>.periodic]`, as the last worker to
-- start wrote it (`taskhost.periodic.sync`), with the last tick enqueued or skipped. An
-- enqueue of ticks locks its schedule's row (FOR UPDATE) for its transaction.
-- taskhost_schedule_ticks: the tick (schedule, time) a task was enqueued for. Its primary key
-- is what makes a tick enqueued once, whatever number of workers on whatever machines try: the
-- row and the task go in one transaction. Rows older than their schedule's last tick are
-- deleted as ticks go by.
-- See docs/decisions/020-periodic-tasks.md.
CREATE TABLE taskhost_schedules (
    backend_name text NOT NULL,
    name text NOT NULL,
    task_path text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    missed text NOT NULL,
    queue_name text NOT NULL,
    priority integer NOT NULL,
    args text NOT NULL,
    kwargs text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_tick timestamptz,
    last_task_id text,
    PRIMARY KEY (backend_name, name)
);

CREATE TABLE taskhost_schedule_ticks (
    backend_name text NOT NULL,
    schedule text NOT NULL,
    tick timestamptz NOT NULL,
    task_id uuid NOT NULL,
    enqueued_at timestamptz NOT NULL,
    PRIMARY KEY (backend_name, schedule, tick)
);
