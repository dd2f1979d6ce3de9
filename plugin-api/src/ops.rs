//! Names of the extension operations reached through [`crate::Backend::call_ext`] and
//! [`crate::Host::call_ext`].
//!
//! An operation a side does not know returns [`crate::ErrorKind::NOT_SUPPORTED`]. Request and
//! response payloads are JSON, documented next to each name.

/// All stored results, oldest first (the Dummy backend's `results`). Request `{}`; response a JSON
/// array of [`crate::wire::TaskResultData`].
pub const RESULTS: &str = "results";
/// Remove every stored result (the Dummy backend's `clear()`). Request `{}`; response `null`.
pub const CLEAR: &str = "clear";
/// Create or upgrade the store's schema. Request `{}`; response `{"applied": [versions]}`.
pub const MIGRATE: &str = "migrate";
/// List results with filters. Request a [`crate::wire::ListRequest`]; response a JSON array of
/// [`crate::wire::TaskResultData`].
pub const LIST_RESULTS: &str = "list_results";
/// Queue depths: request `{}`; response a JSON array of [`crate::wire::QueueStats`].
pub const QUEUE_STATS: &str = "queue_stats";
/// Delete finished results: request a [`crate::wire::PruneRequest`]; response `{"count": n}`,
/// the rows deleted (or counted on a dry run), at most its `limit`.
pub const PRUNE: &str = "prune";
/// Rescue tasks whose lease expired: request `{}`; response `{"count": n}`.
pub const RESCUE: &str = "rescue";
/// Block until new tasks may be ready or the timeout passes (the database backend:
/// LISTEN/NOTIFY on PostgreSQL, a file watch on SQLite).
/// Request a [`crate::wire::WaitRequest`]; response `{"notified": bool}`. A backend without it
/// returns NOT_SUPPORTED and workers poll at their interval.
pub const WAIT_FOR_TASKS: &str = "wait_for_tasks";
/// Enqueue one task, as [`crate::Backend::enqueue`], answering only what the backend set: request
/// an [`crate::wire::EnqueueRequest`]; response a [`crate::wire::ResultDelta`]. The host already
/// holds the id, task and arguments it sent, so they do not cross back. Only sent to backends
/// with [`crate::Capabilities::ENQUEUE_DELTA`]. Added in 1.3.0.
pub const ENQUEUE_DELTA: &str = "enqueue_delta";

/// Enqueue many tasks, as [`crate::Backend::enqueue_many`] (all or none), answering only what
/// the backend set: request a JSON array of [`crate::wire::EnqueueRequest`]; response a JSON
/// array of [`crate::wire::ResultDelta`] in the same order. Only sent to backends with both
/// [`crate::Capabilities::ENQUEUE_DELTA`] and [`crate::Capabilities::BULK_ENQUEUE`]. Added in
/// 1.3.0.
pub const ENQUEUE_MANY_DELTA: &str = "enqueue_many_delta";

/// Host side: run the task of an enqueue this thread is handing to the backend right now through
/// [`ENQUEUE_DELTA`] (the Immediate backend's run), without sending the task's arguments back.
/// Request a [`crate::wire::RunEnqueued`]; response a [`crate::wire::TaskOutcome`], as
/// [`crate::Host::run_task`]. An error (an older host: NOT_SUPPORTED; an id not in flight on
/// this thread: INVALID_REQUEST) means the backend should call `run_task` instead. Added in 1.3.0.
pub const RUN_ENQUEUED: &str = "run_enqueued";
