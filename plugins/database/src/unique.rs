//! Unique tasks in the store (`docs/decisions/019-unique-tasks.md`): the rows' `unique_key` and
//! `unique_until` columns and the partial unique index `taskhost_tasks_unique_idx` over
//! `(backend_name, task_path, unique_key)`, which both stores enforce keys with.
//!
//! An enqueue under a key, in one write transaction per batch: clear the key from a row whose
//! period ran out, insert the row with `ON CONFLICT … DO NOTHING` on the index ([`conflict`]),
//! and when nothing was inserted read the row holding the key ([`HELD`]). The database arbitrates concurrent enqueues from any number of processes: one
//! row is inserted, every other enqueue reads it back.

use crate::error::{Error, Result};
use crate::row::NewTask;
use chrono::{DateTime, Utc};
use taskhost_plugin_api::{UniqueKey, UniqueScope};

/// The index predicate, word for word (both databases use a partial index for an `ON CONFLICT`
/// target or a query only when its `WHERE` repeats the index's): the row holds its key.
pub(crate) const HELD: &str = "unique_key IS NOT NULL \
    AND (unique_until IS NOT NULL OR status = 'READY' OR status = 'RUNNING')";

/// The `ON CONFLICT` clause of a keyed insert.
pub(crate) fn conflict() -> String {
    format!("ON CONFLICT (backend_name, task_path, unique_key) WHERE {HELD} DO NOTHING")
}

/// How many times an enqueue tries again when the row that made its insert conflict stopped
/// holding the key before it was read (it finished, or its period ran out): then the key is
/// free and the next insert takes it.
pub(crate) const TRIES: usize = 8;

/// The key of `task`, checked: 1 to [`UniqueKey::MAX_BYTES`] bytes, a period of at least 1 µs.
pub(crate) fn key_of(task: &NewTask) -> Result<Option<&UniqueKey>> {
    let Some(unique) = task.request.unique.as_deref() else {
        return Ok(None);
    };
    if unique.key.is_empty() || unique.key.len() > UniqueKey::MAX_BYTES {
        return Err(Error::InvalidRequest(format!(
            "A unique key must be 1 to {} bytes long, got {} bytes (task '{}').",
            UniqueKey::MAX_BYTES,
            unique.key.len(),
            task.request.task.path
        )));
    }
    if let UniqueScope::For { period_us } = unique.scope {
        if period_us < 1 {
            return Err(Error::InvalidRequest(format!(
                "A unique period must be at least 1 µs, got {period_us} µs (task '{}').",
                task.request.task.path
            )));
        }
    }
    Ok(Some(unique))
}

/// When the key of `task` runs out: its enqueue time plus the period; `None` for a key held
/// while the task is READY or RUNNING.
pub(crate) fn until(task: &NewTask, unique: &UniqueKey) -> Result<Option<DateTime<Utc>>> {
    match unique.scope {
        UniqueScope::Active => Ok(None),
        UniqueScope::For { period_us } => task
            .enqueued_at
            .checked_add_signed(chrono::Duration::microseconds(period_us))
            .map(Some)
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "A unique period of {period_us} µs runs out past the last representable time."
                ))
            }),
    }
}
