//! SQLite: enqueue under uniqueness keys (`crate::unique`). `BEGIN IMMEDIATE` makes writers
//! take turns, across processes; the partial unique index is what holds a key.

use super::{read_row, us, SqliteStore, TxError, COLUMNS};
use crate::error::{Error, Result};
use crate::row::{NewTask, Row};
use crate::unique::{conflict, key_of, until, HELD, TRIES};
use rusqlite::OptionalExtension;
use taskhost_plugin_api::TaskResultData;

/// One row, with its key (`?14`), when a period key runs out (`?15`) and its trace context
/// (`?16`).
fn insert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, \
             status, args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, \
             timeout_secs, unique_key, unique_until, trace_context) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'READY', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
             ?16) \
             {}",
            conflict()
        )
    })
}

/// Clear the key of `?1` alias, `?2` task, `?3` key from the row whose period ran out by `?4`.
fn expire_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "UPDATE taskhost_tasks SET unique_key = NULL, unique_until = NULL \
             WHERE backend_name = ?1 AND task_path = ?2 AND unique_key = ?3 AND {HELD} \
               AND unique_until <= ?4"
        )
    })
}

/// The row holding `?1` alias, `?2` task, `?3` key.
fn holder_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM taskhost_tasks \
             WHERE backend_name = ?1 AND task_path = ?2 AND unique_key = ?3 AND {HELD}"
        )
    })
}

impl SqliteStore {
    /// See [`crate::store::Store::enqueue_unique`]. Returns, besides, whether a row was stored.
    pub(super) fn enqueue_keyed(
        &self,
        tasks: &[NewTask],
    ) -> Result<(Vec<Option<TaskResultData>>, bool)> {
        let alias = self.config.alias.as_str();
        let rows = self.write("enqueuing unique tasks", |tx| {
            let mut held: Vec<Option<Row>> = Vec::with_capacity(tasks.len());
            for task in tasks {
                held.push(insert_keyed(tx, alias, task)?);
            }
            Ok(held)
        })?;
        let stored = rows.iter().any(Option::is_none);
        let results = rows
            .into_iter()
            .map(|row| row.map(Row::into_result).transpose())
            .collect::<Result<Vec<_>>>()?;
        Ok((results, stored))
    }
}

/// Insert `task` (under its key, if any); `Some` row already holding the key instead.
fn insert_keyed(
    tx: &rusqlite::Connection,
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
    let mut buffer = uuid::Uuid::encode_buffer();
    let id: &str = task.id.hyphenated().encode_lower(&mut buffer);
    for _ in 0..TRIES {
        if let Some(key) = key {
            tx.prepare_cached(expire_sql())?.execute((
                alias,
                t.path.as_str(),
                key,
                us(task.enqueued_at),
            ))?;
        }
        let inserted = tx
            .prepare_cached(insert_sql())?
            .execute(rusqlite::params![
                id,
                t.path.as_str(),
                t.queue_name.as_str(),
                t.priority,
                alias,
                task.request.args.as_str(),
                task.request.kwargs.as_str(),
                t.takes_context,
                t.is_async,
                t.run_after.map(us),
                us(task.enqueued_at),
                t.max_attempts,
                t.timeout_secs,
                key,
                until.map(us),
                task.request.trace_context.as_deref(),
            ])
            .map_err(|e| duplicate_or(e, id))?;
        let Some(key) = key else {
            return Ok(None);
        };
        if inserted == 1 {
            return Ok(None);
        }
        let holder = tx
            .prepare_cached(holder_sql())?
            .query_row((alias, t.path.as_str(), key), |r| Ok(read_row(r)))
            .optional()?
            .transpose()?;
        if let Some(row) = holder {
            return Ok(Some(row));
        }
    }
    Err(TxError::App(Error::Other(format!(
        "the unique key of task '{}' was taken and freed {TRIES} times while enqueuing; try again",
        t.path
    ))))
}

/// A primary-key violation as "already stored" (`id`); anything else as is.
fn duplicate_or(err: rusqlite::Error, id: &str) -> TxError {
    match &err {
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            TxError::App(Error::already_stored(id))
        }
        _ => TxError::Db(err),
    }
}
