-- taskhost DatabaseBackend, SQLite, version 6: cancel and
-- retry.
--
-- cancel_requested: 1 once a RUNNING task was asked to stop (`taskhost.cancel`); its worker
-- learns of it when it renews its lease, and the task ends FAILED with a `taskhost::Cancelled`
-- error (never READY again). A READY task is FAILED at once instead and never marked.
-- retried_attempts: the attempts made before the latest `taskhost.retry` of a FAILED task; they
-- do not use up the task's max_attempts (as rescues do not).
-- See docs/decisions/018-cancel-and-retry.md.
ALTER TABLE taskhost_tasks ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskhost_tasks ADD COLUMN retried_attempts INTEGER NOT NULL DEFAULT 0;
