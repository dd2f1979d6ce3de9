//! `taskhost.backends.database.DatabaseBackend`: the queue store workers claim tasks from, on
//! SQLite (embedded, one machine) or PostgreSQL (many machines).
//!
//! Key types:
//! - [`DatabaseBackend`]: the backend class exported by this plugin library.
//! - [`TRANSACTIONAL_INSERT_SQL`]: the operation that hands applications the SQL to enqueue
//!   inside their own database transaction.
//!
//! Options (`[tasks.<alias>.options]`):
//! - `url` (required): `sqlite://PATH` (relative paths are resolved against the config file's
//!   directory; in-memory databases are refused, workers are other processes) or
//!   `postgres://…` / `postgresql://…`.
//! - `max_attempts` (default 1, Django's "no retry"): attempts allowed for a task that sets
//!   none. An attempt lost with its worker does not count against it (see `max_rescues`).
//! - `max_rescues` (default 3): times a task may be rescued from a worker that stopped
//!   renewing its lease (killed, crashed, paused, cut off) before it ends FAILED — the limit
//!   that still ends a poison task, one that takes down every worker running it.
//! - `lease_secs` (default 60): lease length when a claim or renewal asks for none.
//! - `migrate` (default true): create or upgrade the schema when the backend is built.
//! - `pool_size` (default 4): connections one backend instance may open.
//! - `schema` (PostgreSQL only, default `public`): the schema holding the tables.
//! - `synchronous` (SQLite only, `normal` (default) or `full`): `PRAGMA synchronous` of every
//!   connection. In WAL mode `normal` survives a crash of any process but may lose the last
//!   commits at a power loss; `full` syncs the WAL at every commit.
//! - `synchronous_commit` (PostgreSQL only, default: the server's setting): the session's
//!   `synchronous_commit` (`on`, `off`, `local`, `remote_write`, `remote_apply`); `off` may
//!   lose the last commits (never corrupt them) if the server crashes.
//! - `queues` (default: none): per-queue limits across every worker of the alias, a table of
//!   queue name → `{ concurrency = N, rate = { limit = N, per = "1m" } }`: at most N of the
//!   queue's tasks RUNNING, at most `limit` claims in any `per` (a sliding window). Enforced in
//!   the claim's transaction; claims that cannot take from a limited queue are unchanged (see
//!   `docs/decisions/021-queue-limits.md`).
//!
//! Operations: every queue-store and admin method of [`taskhost_plugin_api::Backend`] except
//! `clear` (enqueue and enqueue_many — a batch in one transaction —, get_result, check,
//! results, claim, complete, renew_leases, release, rescue, wait_for_tasks, migrate,
//! list_results, queue_stats, prune, close). Arguments and return values go into their columns
//! as the JSON text the host sent and come back as the text the database holds (PostgreSQL
//! renders `jsonb` in its own form), checked but never decoded. Operations of its own, through
//! `call_ext`: [`LIST_PAGE`] and [`FINISHED_PER_MINUTE`] (the dashboard's keyset pages and
//! per-minute counts), the periodic tasks' [`PERIODIC_SYNC`], [`PERIODIC_LIST`] and
//! [`PERIODIC_ENQUEUE`] (schedules and their ticks, each tick enqueued once: see
//! `docs/decisions/020-periodic-tasks.md`), and [`TRANSACTIONAL_INSERT_SQL`], the statement an application runs on its
//! own connection, inside its own transaction, so the task commits or rolls back with its
//! data. Job control, through `call_ext` too ([`taskhost_plugin_api::control`]):
//! `taskhost.cancel` (a READY task FAILED at once with a `taskhost::Cancelled` error, a
//! RUNNING one marked `cancel_requested` and its worker told when it renews its lease —
//! `taskhost.renew_leases`, the same statement — after which it is never READY again),
//! `taskhost.retry` (a FAILED task READY again, its history kept; decision 018). Its ten positional parameters are `id` (UUID), `task_path`, `args` (JSON array),
//! `queue_name`, `priority`, `run_after` (PostgreSQL timestamptz; SQLite µs since the epoch;
//! NULL = now), `max_attempts` (NULL = the option), `kwargs` (JSON object or NULL),
//! `takes_context` and `is_async` (NULL = false); the response describes each. On PostgreSQL
//! it calls the SQL function `taskhost_enqueue(…)`, which any client may call directly and
//! which also wakes workers.
//!
//! Everything lives in one table, `taskhost_tasks` (see `docs/decisions/003-database-schema.md`):
//! claims take READY rows in Django's order (priority, then `run_after`, then `enqueued_at`)
//! through a partial index, mark them RUNNING under a lease with a fencing token, and never hand
//! a task to two workers (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite `BEGIN IMMEDIATE`). Tasks
//! of a worker that stops renewing its lease are rescued with a `taskhost::WorkerLost` error:
//! READY again, until a task's `max_rescues`-th rescue, which ends it FAILED. Completions, renewals and releases carrying
//! a stale token change nothing.
//!
//! `wait_for_tasks` (idle workers, between empty claims) wakes within milliseconds of an
//! enqueue from any process: on PostgreSQL by LISTEN/NOTIFY (every enqueue notifies; one
//! dedicated connection per backend instance, opened by the first wait); on SQLite by
//! file-change watches next to the database (inotify, FSEvents, ReadDirectoryChangesW; see
//! `docs/decisions/011-sqlite-wake-up.md`): every enqueue and release touches `<db>-wake` after
//! its commit, in whichever process makes it, and the `-wal` file that every commit writes
//! covers, best effort (within ≈20–250 ms), the application's own transactional inserts. A
//! waiter confirms with an indexed query that a due READY row of its queues exists before it
//! answers, so busy workers' claims and completions do not send idle ones claiming. Where the
//! SQLite watch cannot be set up (the BSDs; no inotify instance left) it answers NOT_SUPPORTED
//! and workers poll at their `--interval`.
//!
//! The plugin starts no long-lived thread of its own. The one exception is the SQLite watch:
//! the first `wait_for_tasks` call of a backend instance starts it, and with it the watcher's
//! one event thread (inside the `notify` crate, on Linux); [`DatabaseBackend`]'s `close()` stops
//! it, ends pending waits (UNAVAILABLE) and closes every connection.

mod backend;
mod error;
mod limits;
mod options;
mod periodic;
mod pool;
mod postgres;
mod row;
mod sqlite;
mod store;
#[cfg(test)]
mod tests;
mod unique;

pub use backend::{
    DatabaseBackend, FINISHED_PER_MINUTE, LIST_PAGE, QUEUE_LIMITS, TRANSACTIONAL_INSERT_SQL,
};
pub use periodic::{PERIODIC_ENQUEUE, PERIODIC_LIST, PERIODIC_SYNC};

taskhost_plugin_api::export_plugin! {
    module_path: "taskhost.backends.database",
    classes: { "DatabaseBackend" => DatabaseBackend::new },
}
