//! Enqueueing inside the application's own database transaction: the task row commits or rolls
//! back with the application's data (exactly-once enqueue), for queue stores that offer it (the
//! database backend).
//!
//! On SQLite, keep the application's connections to the queue's database file open for the life
//! of the process (no pool that closes idle connections): the application's SQLite library and
//! the plugin's are two copies in one process, and POSIX locks belong to the process, so closing
//! any descriptor of the file releases the locks the plugin's copy holds (see
//! `docs/reliability.md`). PostgreSQL has no such limit.
//!
//! ```no_run
//! use taskhost::task;
//!
//! #[task]
//! fn welcome(user_id: i64) {}
//!
//! fn main() -> Result<(), taskhost::Error> {
//!     let insert = welcome.transactional_enqueue((42,))?;
//!     // On your own connection, inside your own transaction (rusqlite, postgres, sqlx, …):
//!     //   tx.execute(&insert.sql, <insert.params mapped to your driver's values>)?;
//!     //   tx.commit()?;      // the task exists if and only if this commits
//!     println!("{} will have id {}", insert.sql, insert.id);
//!     Ok(())
//! }
//! ```

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::task::Task;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use taskhost_plugin_api::ErrorKind;

/// The extension operation of the database backend that describes its insert statement.
pub const TRANSACTIONAL_INSERT_SQL: &str = "taskhost.backends.database.transactional_insert_sql";

/// One parameter value, typed for the target database; map it to your driver's value type.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlParam {
    /// Text (SQLite TEXT; PostgreSQL text, or uuid for the id).
    Text(String),
    /// A JSON document (SQLite: bind its text; PostgreSQL: jsonb).
    Json(Value),
    /// An integer.
    Integer(i64),
    /// A timestamp (PostgreSQL timestamptz).
    Timestamp(DateTime<Utc>),
    /// A boolean (PostgreSQL boolean).
    Bool(bool),
    /// SQL NULL.
    Null,
}

/// An enqueue to run on the application's own connection, inside its own transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct TransactionalEnqueue {
    /// The result id the task will have.
    pub id: String,
    /// `sqlite` or `postgresql`.
    pub database: String,
    /// The statement, with positional parameters (`?1`… / `$1`…).
    pub sql: String,
    /// The parameter values, in order.
    pub params: Vec<SqlParam>,
}

#[derive(Deserialize)]
struct InsertSql {
    database: String,
    sql: String,
}

impl<A: Serialize, R> Task<A, R> {
    /// The statement that enqueues this task with `args` on the application's own connection,
    /// validated as `enqueue` validates. `NotSupported` on backends without it, and for a
    /// [`unique`](Task::unique) task (the statement carries no key).
    pub fn transactional_enqueue(&self, args: A) -> Result<TransactionalEnqueue> {
        let backend = self.get_backend()?;
        let task = self.description();
        backend.validate_task(&task)?;
        if self.uniqueness().is_some() {
            // The insert your connection runs carries no key: refused, never ignored.
            return Err(Error::NotSupported(format!(
                "A unique task cannot be enqueued inside the application's transaction \
                 (backend '{}'): the insert carries no uniqueness key. Use enqueue() instead.",
                backend.alias()
            )));
        }
        let args = Value::Array(Backend::encode_args(&args)?);
        let insert: InsertSql = backend
            .call_ext_json(TRANSACTIONAL_INSERT_SQL, &serde_json::Map::new())
            .map_err(|e| match e {
                Error::NotSupported(_) => Error::NotSupported(format!(
                    "Backend '{}' ({}) cannot enqueue inside the application's transaction.",
                    backend.alias(),
                    backend.backend_name()
                )),
                other => other,
            })?;
        if !matches!(insert.database.as_str(), "sqlite" | "postgresql") {
            return Err(Error::Backend {
                alias: backend.alias().to_string(),
                kind: ErrorKind::INVALID_REQUEST,
                message: format!(
                    "unknown database '{}' in the insert description",
                    insert.database
                ),
            });
        }
        let id = crate::backend::new_result_id();
        let sqlite = insert.database == "sqlite";
        let flag = |b: bool| {
            if sqlite {
                SqlParam::Integer(b.into())
            } else {
                SqlParam::Bool(b)
            }
        };
        let json = |v: Value| {
            if sqlite {
                SqlParam::Text(v.to_string())
            } else {
                SqlParam::Json(v)
            }
        };
        let params = vec![
            SqlParam::Text(id.clone()),
            SqlParam::Text(task.path.to_string()),
            json(args),
            SqlParam::Text(task.queue_name.to_string()),
            SqlParam::Integer(task.priority.into()),
            match task.run_after {
                None => SqlParam::Null,
                Some(t) if sqlite => SqlParam::Integer(t.timestamp_micros()),
                Some(t) => SqlParam::Timestamp(t),
            },
            task.max_attempts
                .map_or(SqlParam::Null, |m| SqlParam::Integer(m.into())),
            json(Value::Object(Default::default())),
            flag(task.takes_context),
            flag(task.is_async),
        ];
        Ok(TransactionalEnqueue {
            id,
            database: insert.database,
            sql: insert.sql,
            params,
        })
    }
}
