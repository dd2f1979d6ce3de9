//! PostgreSQL: enqueue under uniqueness keys (`crate::unique`). Concurrent transactions
//! inserting the same key meet at the partial unique index: `ON CONFLICT DO NOTHING` waits for
//! the other inserter's transaction and skips the row if it committed, and the row holding the
//! key is then read (a new snapshot per statement, at READ COMMITTED).

use super::queue::{duplicate_or, max_attempts_column, NOTIFY_QUEUES};
use super::{read_row, JsonText, PgStore, TxError, COLUMNS};
use crate::error::{Error, Result};
use crate::row::{NewTask, Row};
use crate::unique::{conflict, key_of, until, HELD, TRIES};
use std::collections::HashSet;
use std::sync::LazyLock;
use taskhost_plugin_api::TaskResultData;

/// One row, with its key (`$14`), when a period key runs out (`$15`) and its trace context
/// (`$16`).
static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, status, \
         args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, \
         timeout_secs, unique_key, unique_until, trace_context) \
         VALUES ($1, $2, $3, $4, $5, 'READY', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16) {}",
        conflict()
    )
});

/// Clear the key of `$1` alias, `$2` task, `$3` key from the row whose period ran out by `$4`.
static EXPIRE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE taskhost_tasks SET unique_key = NULL, unique_until = NULL \
         WHERE backend_name = $1 AND task_path = $2 AND unique_key = $3 AND {HELD} \
           AND unique_until <= $4"
    )
});

/// The row holding `$1` alias, `$2` task, `$3` key.
static HOLDER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM taskhost_tasks \
         WHERE backend_name = $1 AND task_path = $2 AND unique_key = $3 AND {HELD}"
    )
});

impl PgStore {
    /// See [`crate::store::Store::enqueue_unique`]: one transaction; the stored rows' queues
    /// are notified at its commit.
    pub(super) fn enqueue_keyed(&self, tasks: &[NewTask]) -> Result<Vec<Option<TaskResultData>>> {
        let alias = self.config.alias.as_str();
        let rows = self.write("enqueuing unique tasks", |tx| {
            let mut held: Vec<Option<Row>> = Vec::with_capacity(tasks.len());
            let mut queues: HashSet<&str> = HashSet::new();
            for task in tasks {
                let row = insert_keyed(tx, alias, task)?;
                if row.is_none() {
                    queues.insert(&task.request.task.queue_name);
                }
                held.push(row);
            }
            if !queues.is_empty() {
                let queues: Vec<&str> = queues.into_iter().collect();
                tx.execute(NOTIFY_QUEUES, &[&queues])?;
            }
            Ok(held)
        })?;
        rows.into_iter()
            .map(|row| row.map(Row::into_result).transpose())
            .collect()
    }
}

/// Insert `task` (under its key, if any); `Some` row already holding the key instead.
fn insert_keyed(
    tx: &mut super::Tx<'_>,
    alias: &str,
    task: &NewTask,
) -> Result<Option<Row>, TxError> {
    let unique = key_of(task)?;
    let until = match unique {
        Some(unique) => until(task, unique)?,
        None => None,
    };
    let key = unique.map(|u| u.key.as_str());
    let t = &task.request.task;
    for _ in 0..TRIES {
        if let Some(key) = key {
            tx.execute(
                &EXPIRE,
                &[&alias, &t.path.as_str(), &key, &task.enqueued_at],
            )?;
        }
        let inserted = tx
            .execute(
                &INSERT,
                &[
                    &task.id,
                    &t.path.as_str(),
                    &t.queue_name.as_str(),
                    &t.priority,
                    &alias,
                    &JsonText(task.request.args.as_str()),
                    &JsonText(task.request.kwargs.as_str()),
                    &t.takes_context,
                    &t.is_async,
                    &t.run_after,
                    &task.enqueued_at,
                    &max_attempts_column(t),
                    &t.timeout_secs,
                    &key,
                    &until,
                    &task.request.trace_context.as_deref(),
                ],
            )
            .map_err(duplicate_or)?;
        let Some(key) = key else {
            return Ok(None);
        };
        if inserted == 1 {
            return Ok(None);
        }
        let rows = tx.query(&HOLDER, &[&alias, &t.path.as_str(), &key])?;
        if let Some(row) = rows.first() {
            return Ok(Some(read_row(row)?));
        }
    }
    Err(TxError::App(Error::Other(format!(
        "the unique key of task '{}' was taken and freed {TRIES} times while enqueuing; try again",
        t.path
    ))))
}
