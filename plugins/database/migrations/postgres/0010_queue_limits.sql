-- taskhost DatabaseBackend, PostgreSQL, version 10: queue limits (the backend option `queues`).
--
-- One row per limited queue of an alias, made by the first claim that takes from it. A claim
-- that may take from limited queues locks their rows (SELECT … FOR UPDATE, in name order)
-- before it counts their RUNNING tasks, so concurrent claims on a limited queue take turns and
-- none exceeds its limit; claims on other queues never touch this table. `starts` is the
-- queue's log of recent claims for its rate limit: JSON `[[µs, tasks], …]`, only those inside
-- the rate window. The limits themselves are options, not rows.
-- See docs/decisions/021-queue-limits.md.
CREATE TABLE taskhost_queue_limits (
    backend_name text NOT NULL,
    queue_name   text NOT NULL,
    starts       text NOT NULL DEFAULT '[]',
    PRIMARY KEY (backend_name, queue_name)
);
