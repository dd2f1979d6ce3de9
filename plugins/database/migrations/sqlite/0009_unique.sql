-- taskhost DatabaseBackend, SQLite: unique tasks (docs/decisions/019-unique-tasks.md).
-- Version 9.
--
-- unique_key: the key an enqueue was made under (NULL: none, or a period that ran out).
-- unique_until: for a key held for a period, when it runs out (microseconds); NULL for a key
-- held while the task is READY or RUNNING.
-- The partial unique index is what enforces a key, race-free whatever process enqueues: a key
-- is held by at most one row of an alias and task path while that row is READY or RUNNING, or
-- has a period. A task that finishes leaves the index by its status change alone; a period that
-- ran out is cleared by the next enqueue under its key. The status test is written as ORs, as
-- in the status CHECK (decision 005). Rows without a key are not in the index.
ALTER TABLE taskhost_tasks ADD COLUMN unique_key TEXT;
ALTER TABLE taskhost_tasks ADD COLUMN unique_until INTEGER;

CREATE UNIQUE INDEX taskhost_tasks_unique_idx
    ON taskhost_tasks (backend_name, task_path, unique_key)
    WHERE unique_key IS NOT NULL
      AND (unique_until IS NOT NULL OR status = 'READY' OR status = 'RUNNING');
