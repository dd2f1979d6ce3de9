-- taskhost DatabaseBackend, SQLite, version 5:
-- rescues count only for tasks whose start the store knows of.
--
-- prefetched: 1 while the row is held by a worker that claimed it ahead of a free slot and has
-- not reported its start (set by the claim for the tasks beyond the claim's `start_now`; cleared
-- by the worker's start report). A rescue of such a row hands it back like a release: READY, no
-- rescue, no attempt and no WorkerLost error counted.
-- prefetch_rescues: how many times that happened. From the first one on, the worker must report
-- the row's start before running it (so a task that kills its worker right after an unreported
-- start is counted from then on: at most max_rescues + 1 crashes in all).
-- See docs/decisions/017-rescues-count-started-tasks.md.
ALTER TABLE taskhost_tasks ADD COLUMN prefetched INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskhost_tasks ADD COLUMN prefetch_rescues INTEGER NOT NULL DEFAULT 0;
