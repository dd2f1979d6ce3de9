//! Names of the extension operations reached through [`crate::Backend::call_ext`].
//!
//! An operation a backend does not know returns [`crate::ErrorKind::NOT_SUPPORTED`]. Request and
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
/// Block until new tasks may be ready or the timeout passes (PostgreSQL: LISTEN/NOTIFY).
/// Request a [`crate::wire::WaitRequest`]; response `{"notified": bool}`. A backend without it
/// returns NOT_SUPPORTED and workers poll at their interval.
pub const WAIT_FOR_TASKS: &str = "wait_for_tasks";
