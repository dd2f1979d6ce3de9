//! Enqueueing through a `rusqlite` connection or transaction (feature `rusqlite`):
//! `task.enqueue_in(&tx, args)` runs the backend's insert on it, so the task row commits or
//! rolls back with the application's rows.
//!
//! Keep the application's connections to the queue's file open for the life of the process:
//! the plugin's SQLite is another copy in the same process, and closing any descriptor of the
//! file releases the POSIX locks that copy holds (see the parent module).

use super::{DatabaseKind, SqlParam};
use crate::error::{Error, Result};
use crate::result::TaskResult;
use crate::task::Task;
use rusqlite::types::Value;
use serde::Serialize;

/// One parameter as SQLite stores it.
fn bind(param: SqlParam) -> Value {
    match param {
        SqlParam::Text(text) => Value::Text(text),
        SqlParam::Json(value) => Value::Text(value.to_string()),
        SqlParam::Integer(n) => Value::Integer(n),
        SqlParam::Timestamp(t) => Value::Integer(t.timestamp_micros()),
        SqlParam::Bool(b) => Value::Integer(b.into()),
        SqlParam::Null => Value::Null,
    }
}

impl<A: Serialize, R> Task<A, R> {
    /// Enqueue on the application's rusqlite connection or transaction (`&tx`): the task is
    /// stored if and only if that transaction commits. Returns the READY result with the id
    /// the row has; after the commit, `refresh` reads it and workers run it.
    ///
    /// Validated as `enqueue` validates. `NotSupported` if the task's backend has no
    /// transactional insert (only the database backend has), `DatabaseMismatch` if its queue is
    /// not in SQLite, `Database` if rusqlite fails to run the insert (roll your transaction
    /// back then). The connection must be to the queue's database file.
    ///
    /// ```no_run
    /// use taskhost::task;
    ///
    /// #[task]
    /// fn welcome(user_id: i64) {}
    ///
    /// fn sign_up(app: &mut rusqlite::Connection) -> Result<String, Box<dyn std::error::Error>> {
    ///     let tx = app.transaction()?;
    ///     tx.execute("INSERT INTO users (id) VALUES (?1)", [42])?;
    ///     let result = welcome.enqueue_in(&tx, (42,))?; // READY
    ///     tx.commit()?; // the task exists if and only if this commits
    ///     Ok(result.id().to_string())
    /// }
    /// # fn main() {}
    /// ```
    pub fn enqueue_in(&self, connection: &rusqlite::Connection, args: A) -> Result<TaskResult<R>> {
        let mut results = self.enqueue_many_in(connection, [args])?;
        Ok(results.remove(0))
    }

    /// [`Task::enqueue_in`] for many runs, one prepared statement; all are validated before
    /// any is inserted.
    pub fn enqueue_many_in(
        &self,
        connection: &rusqlite::Connection,
        runs: impl IntoIterator<Item = A>,
    ) -> Result<Vec<TaskResult<R>>> {
        let prepared = self.prepare_inserts("rusqlite", DatabaseKind::Sqlite, runs)?;
        let failed = |e: rusqlite::Error| Error::Database {
            task: self.definition().path.to_string(),
            driver: "rusqlite",
            message: e.to_string(),
        };
        let mut statement = connection.prepare(&prepared.sql).map_err(failed)?;
        let mut results = Vec::with_capacity(prepared.runs.len());
        for (params, result) in prepared.runs {
            let values = params.into_iter().map(bind);
            statement
                .execute(rusqlite::params_from_iter(values))
                .map_err(failed)?;
            results.push(result);
        }
        Ok(results)
    }
}
