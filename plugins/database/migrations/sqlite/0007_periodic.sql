-- taskhost DatabaseBackend, SQLite, version 7: periodic tasks.
--
-- taskhost_schedules: one row per schedule of `[tasks.<alias>.periodic]`, as the last worker to
-- start wrote it (`taskhost.periodic.sync`), with the last tick enqueued or skipped. Times are
-- µs since the epoch, as in taskhost_tasks.
-- taskhost_schedule_ticks: the tick (schedule, time) a task was enqueued for. Its primary key
-- is what makes a tick enqueued once, whatever number of workers try: the row and the task go
-- in one transaction. Rows older than their schedule's last tick are deleted as ticks go by.
-- See docs/decisions/020-periodic-tasks.md.
CREATE TABLE taskhost_schedules (
    backend_name TEXT NOT NULL,
    name TEXT NOT NULL,
    task_path TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    missed TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    priority INTEGER NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_tick INTEGER,
    last_task_id TEXT,
    PRIMARY KEY (backend_name, name)
);

CREATE TABLE taskhost_schedule_ticks (
    backend_name TEXT NOT NULL,
    schedule TEXT NOT NULL,
    tick INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL,
    PRIMARY KEY (backend_name, schedule, tick)
);
