-- taskhost DatabaseBackend, SQLite, version 8: queue limits (the backend option `queues`).
--
-- One row per limited queue of an alias, made by the first claim that takes from it. `starts`
-- is the queue's log of recent claims for its rate limit: JSON `[[µs, tasks], …]`, only those
-- inside the rate window. Claims read and write it in their write transaction, which SQLite
-- serialises (BEGIN IMMEDIATE). The limits themselves are options, not rows.
-- See docs/decisions/021-queue-limits.md.
CREATE TABLE taskhost_queue_limits (
    backend_name TEXT NOT NULL,
    queue_name   TEXT NOT NULL,
    starts       TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (backend_name, queue_name)
) STRICT;
