//! Enqueueing inside the application's own database transaction: the task row commits or rolls
//! back with the application's data (exactly-once enqueue), for queue stores that offer it (the
//! database backend).
//!
//! Two routes: with a driver feature enabled, `Task` runs the insert itself on the
//! application's connection or transaction and returns the READY [`crate::TaskResult`]
//! (`sqlx-postgres`/`sqlx-sqlite`: `aenqueue_in`, `tokio-postgres`: `aenqueue_in_pg`,
//! `rusqlite`: `enqueue_in`; see the submodules); for any other client,
//! [`Task::transactional_enqueue`] hands out the SQL text and typed parameters to run.
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
use crate::result::TaskResult;
use crate::task::Task;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use taskhost_plugin_api::{EnqueueRequest, ErrorKind, TaskResultData};

#[cfg(feature = "rusqlite")]
mod with_rusqlite;
#[cfg(any(feature = "sqlx-postgres", feature = "sqlx-sqlite"))]
mod with_sqlx;
#[cfg(feature = "tokio-postgres")]
mod with_tokio_postgres;

#[cfg(any(feature = "sqlx-postgres", feature = "sqlx-sqlite"))]
pub use with_sqlx::SqlxDatabase;

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

/// The database an application's driver is connected to, as the backend names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DatabaseKind {
    Sqlite,
    Postgresql,
}

impl DatabaseKind {
    fn of(name: &str) -> Option<Self> {
        match name {
            "sqlite" => Some(Self::Sqlite),
            "postgresql" => Some(Self::Postgresql),
            _ => None,
        }
    }

    /// How messages name it.
    #[cfg_attr(
        not(any(
            feature = "sqlx-postgres",
            feature = "sqlx-sqlite",
            feature = "tokio-postgres",
            feature = "rusqlite"
        )),
        allow(dead_code)
    )]
    fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgresql => "PostgreSQL",
        }
    }
}

/// Enqueues prepared for the application's connection: the backend's statement, and per run
/// its parameters and the READY result it will be once the statement commits.
#[cfg_attr(
    not(any(
        feature = "sqlx-postgres",
        feature = "sqlx-sqlite",
        feature = "tokio-postgres",
        feature = "rusqlite"
    )),
    allow(dead_code)
)]
pub(crate) struct PreparedInserts<R> {
    pub(crate) sql: String,
    pub(crate) runs: Vec<(Vec<SqlParam>, TaskResult<R>)>,
}

/// The backend's insert statement and the database it is written for.
fn insert_statement(backend: &Backend) -> Result<(DatabaseKind, String)> {
    let insert: InsertSql = backend
        .call_ext_json(TRANSACTIONAL_INSERT_SQL, &Map::new())
        .map_err(|e| match e {
            Error::NotSupported(_) => Error::NotSupported(format!(
                "Backend '{}' ({}) cannot enqueue inside the application's transaction.",
                backend.alias(),
                backend.backend_name()
            )),
            other => other,
        })?;
    let Some(kind) = DatabaseKind::of(&insert.database) else {
        return Err(Error::Backend {
            alias: backend.alias().to_string(),
            kind: ErrorKind::INVALID_REQUEST,
            message: format!(
                "unknown database '{}' in the insert description",
                insert.database
            ),
        });
    };
    Ok((kind, insert.sql))
}

/// The parameters of the insert statement for `request`, typed for `kind`; `args` are the
/// request's arguments as values.
fn insert_params(kind: DatabaseKind, request: &EnqueueRequest, args: Value) -> Vec<SqlParam> {
    let sqlite = kind == DatabaseKind::Sqlite;
    let task = &request.task;
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
    vec![
        SqlParam::Text(request.id.to_string()),
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
    ]
}

impl<A: Serialize, R> Task<A, R> {
    /// The statement that enqueues this task with `args` on the application's own connection,
    /// validated as `enqueue` validates. `NotSupported` on backends without it, and for a
    /// [`unique`](Task::unique) task (the statement carries no key).
    pub fn transactional_enqueue(&self, args: A) -> Result<TransactionalEnqueue> {
        let backend = self.get_backend()?;
        let (kind, sql) = insert_statement(&backend)?;
        self.refuse_unique(&backend)?;
        let (request, values) = backend.prepare(
            &self.description(),
            Backend::encode_args(&args)?,
            Map::new(),
        )?;
        let params = insert_params(kind, &request, Value::Array(values));
        Ok(TransactionalEnqueue {
            id: request.id.to_string(),
            database: match kind {
                DatabaseKind::Sqlite => "sqlite",
                DatabaseKind::Postgresql => "postgresql",
            }
            .to_string(),
            sql,
            params,
        })
    }

    /// `NotSupported` for a [`unique`](Task::unique) task, on every route through the
    /// application's connection: the insert carries no key, so it is refused, never ignored.
    fn refuse_unique(&self, backend: &Backend) -> Result<()> {
        match self.uniqueness() {
            None => Ok(()),
            Some(_) => Err(Error::NotSupported(format!(
                "A unique task cannot be enqueued inside the application's transaction \
                 (backend '{}'): the insert carries no uniqueness key. Use enqueue() instead.",
                backend.alias()
            ))),
        }
    }

    /// Validate and prepare one insert per run for a connection of `driver` to a `kind`
    /// database: `DatabaseMismatch` if the backend's queue lives in another kind.
    #[cfg_attr(
        not(any(
            feature = "sqlx-postgres",
            feature = "sqlx-sqlite",
            feature = "tokio-postgres",
            feature = "rusqlite"
        )),
        allow(dead_code)
    )]
    pub(crate) fn prepare_inserts(
        &self,
        driver: &'static str,
        kind: DatabaseKind,
        runs: impl IntoIterator<Item = A>,
    ) -> Result<PreparedInserts<R>> {
        let backend = self.get_backend()?;
        let statement = insert_statement(&backend)?;
        self.prepare_runs(&backend, statement, driver, kind, runs)
    }

    /// `prepare_inserts` for the async drivers: the backend is asked for its statement
    /// on tokio's blocking pool, as the async forms of the other plugin calls are.
    #[cfg(any(
        feature = "sqlx-postgres",
        feature = "sqlx-sqlite",
        feature = "tokio-postgres"
    ))]
    pub(crate) async fn aprepare_inserts(
        &self,
        driver: &'static str,
        kind: DatabaseKind,
        runs: impl IntoIterator<Item = A>,
    ) -> Result<PreparedInserts<R>> {
        let backend = self.get_backend()?;
        let asked = std::sync::Arc::clone(&backend);
        let statement = crate::handler::blocking(move || insert_statement(&asked)).await?;
        self.prepare_runs(&backend, statement, driver, kind, runs)
    }

    /// One insert per run with the backend's `statement`, if it is for a `kind` database.
    #[cfg_attr(
        not(any(
            feature = "sqlx-postgres",
            feature = "sqlx-sqlite",
            feature = "tokio-postgres",
            feature = "rusqlite"
        )),
        allow(dead_code)
    )]
    fn prepare_runs(
        &self,
        backend: &Backend,
        (database, sql): (DatabaseKind, String),
        driver: &'static str,
        kind: DatabaseKind,
        runs: impl IntoIterator<Item = A>,
    ) -> Result<PreparedInserts<R>> {
        if database != kind {
            return Err(Error::DatabaseMismatch {
                alias: backend.alias().to_string(),
                database: database.label(),
                driver,
                driver_database: kind.label(),
            });
        }
        self.refuse_unique(backend)?;
        let task = self.description();
        let runs = runs
            .into_iter()
            .map(|args| {
                let (request, values) =
                    backend.prepare(&task, Backend::encode_args(&args)?, Map::new())?;
                let params = insert_params(kind, &request, Value::Array(values.clone()));
                let data = TaskResultData::ready(request, backend.alias());
                Ok((params, TaskResult::with_args(data, values)))
            })
            .collect::<Result<_>>()?;
        Ok(PreparedInserts { sql, runs })
    }
}
