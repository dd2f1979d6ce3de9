//! Enqueueing through a `sqlx` connection, transaction or pool (features `sqlx-postgres` and
//! `sqlx-sqlite`): `task.aenqueue_in(&mut *tx, args).await` runs the backend's insert on it, so
//! the task row commits or rolls back with the application's rows.

use super::{DatabaseKind, SqlParam};
use crate::error::{Error, Result};
use crate::result::TaskResult;
use crate::task::Task;
use serde::Serialize;
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Connection, Database, Executor};

mod sealed {
    use super::{Query, SqlParam};

    /// What the enqueue needs from a sqlx database: its name and how it binds a parameter.
    pub trait Sealed: sqlx::Database<Arguments: sqlx::IntoArguments<Self>> {
        /// The database as the backend names it (`sqlite`, `postgresql`).
        const DATABASE: &'static str;

        /// `query` with `param` bound as this database stores it.
        fn bind_param(
            query: Query<'_, Self, <Self as sqlx::Database>::Arguments>,
            param: SqlParam,
        ) -> Query<'_, Self, <Self as sqlx::Database>::Arguments>;
    }
}

/// A sqlx database a task can be enqueued in: `sqlx::Postgres` (feature `sqlx-postgres`) and
/// `sqlx::Sqlite` (feature `sqlx-sqlite`). Implemented here only (sealed).
pub trait SqlxDatabase: Database + sealed::Sealed {}

#[cfg(feature = "sqlx-postgres")]
impl sealed::Sealed for sqlx::Postgres {
    const DATABASE: &'static str = "postgresql";

    /// Text, 64-bit integers and booleans: the backend's statement casts each parameter to its
    /// column's type (`$1::uuid`, `$3::jsonb`, `$5::integer`, `$6::timestamptz`…), so no sqlx
    /// type feature (uuid, json, chrono) is needed.
    fn bind_param(
        query: Query<'_, Self, <Self as Database>::Arguments>,
        param: SqlParam,
    ) -> Query<'_, Self, <Self as Database>::Arguments> {
        match param {
            SqlParam::Text(text) => query.bind(text),
            SqlParam::Json(value) => query.bind(value.to_string()),
            SqlParam::Integer(n) => query.bind(n),
            SqlParam::Timestamp(t) => {
                query.bind(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            }
            SqlParam::Bool(b) => query.bind(b),
            SqlParam::Null => query.bind(None::<String>),
        }
    }
}

/// ```no_run
/// use taskhost::task;
///
/// #[task]
/// fn welcome(user_id: i64) {}
///
/// async fn sign_up(pool: &sqlx::PgPool) -> Result<String, Box<dyn std::error::Error>> {
///     let mut tx = pool.begin().await?;
///     sqlx::query("INSERT INTO users (id) VALUES ($1)").bind(42i64).execute(&mut *tx).await?;
///     let result = welcome.aenqueue_in(&mut *tx, (42,)).await?; // READY
///     tx.commit().await?; // the task exists if and only if this commits
///     Ok(result.id().to_string())
/// }
/// # fn main() {}
/// ```
#[cfg(feature = "sqlx-postgres")]
impl SqlxDatabase for sqlx::Postgres {}

#[cfg(feature = "sqlx-sqlite")]
impl sealed::Sealed for sqlx::Sqlite {
    const DATABASE: &'static str = "sqlite";

    fn bind_param(
        query: Query<'_, Self, <Self as Database>::Arguments>,
        param: SqlParam,
    ) -> Query<'_, Self, <Self as Database>::Arguments> {
        match param {
            SqlParam::Text(text) => query.bind(text),
            SqlParam::Json(value) => query.bind(value.to_string()),
            SqlParam::Integer(n) => query.bind(n),
            SqlParam::Timestamp(t) => query.bind(t.timestamp_micros()),
            SqlParam::Bool(b) => query.bind(i64::from(b)),
            SqlParam::Null => query.bind(None::<i64>),
        }
    }
}

/// ```no_run
/// use taskhost::task;
///
/// #[task]
/// fn welcome(user_id: i64) {}
///
/// // One connection kept open for the life of the process (see `transactional_enqueue`).
/// async fn sign_up(app: &mut sqlx::SqliteConnection) -> Result<String, Box<dyn std::error::Error>> {
///     use sqlx::Connection;
///     let mut tx = app.begin().await?;
///     sqlx::query("INSERT INTO users (id) VALUES (?1)").bind(42i64).execute(&mut *tx).await?;
///     let result = welcome.aenqueue_in(&mut *tx, (42,)).await?; // READY
///     tx.commit().await?; // the task exists if and only if this commits
///     Ok(result.id().to_string())
/// }
/// # fn main() {}
/// ```
#[cfg(feature = "sqlx-sqlite")]
impl SqlxDatabase for sqlx::Sqlite {}

/// The kind of `DB`, as the backend's insert description names it.
fn kind<DB: SqlxDatabase>() -> DatabaseKind {
    DatabaseKind::of(DB::DATABASE).expect("every SqlxDatabase names a known database")
}

/// Run the insert `sql` with `params` on `executor`.
///
/// Generic over `DB` rather than reading `E::Database`: a future holding types that name
/// `<E as Executor<'c>>::Database` is not `Send` for a borrowed executor (the compiler's
/// "implementation of `Executor` is not general enough").
async fn run<'c, DB, E>(executor: E, sql: &str, params: Vec<SqlParam>, task: &str) -> Result<()>
where
    DB: SqlxDatabase,
    E: Executor<'c, Database = DB>,
{
    let mut query = sqlx::query::<DB>(AssertSqlSafe(sql.to_string()));
    for param in params {
        query = DB::bind_param(query, param);
    }
    query.execute(executor).await.map_err(|e| Error::Database {
        task: task.to_string(),
        driver: "sqlx",
        message: e.to_string(),
    })?;
    Ok(())
}

impl<A: Serialize, R> Task<A, R> {
    /// Enqueue on the application's sqlx connection, transaction (`&mut *tx`) or pool: the task
    /// is stored if and only if that transaction commits. Returns the READY result with the id
    /// the row has; after the commit, `refresh` reads it and workers run it.
    ///
    /// Validated as `enqueue` validates. `NotSupported` if the task's backend has no
    /// transactional insert (only the database backend has), `DatabaseMismatch` if its queue is
    /// in another kind of database than `executor`'s, `Database` if sqlx fails to run the insert
    /// (roll your transaction back then). Not deferred by `atomic` scopes: the application's
    /// transaction is the scope.
    pub async fn aenqueue_in<'c, E, DB>(&self, executor: E, args: A) -> Result<TaskResult<R>>
    where
        E: Executor<'c, Database = DB>,
        DB: SqlxDatabase,
    {
        let prepared = self.aprepare_inserts("sqlx", kind::<DB>(), [args]).await?;
        let Some((params, result)) = prepared.runs.into_iter().next() else {
            unreachable!("one run prepared for one set of arguments")
        };
        run(executor, &prepared.sql, params, self.definition().path).await?;
        Ok(result)
    }

    /// [`Task::aenqueue_in`] for many runs, one insert each, on one connection or transaction
    /// (`&mut *tx`); all are validated before any is inserted.
    pub async fn aenqueue_many_in<C, DB>(
        &self,
        connection: &mut C,
        runs: impl IntoIterator<Item = A>,
    ) -> Result<Vec<TaskResult<R>>>
    where
        C: Connection<Database = DB>,
        DB: SqlxDatabase,
        for<'e> &'e mut C: Executor<'e, Database = DB>,
    {
        let prepared = self.aprepare_inserts("sqlx", kind::<DB>(), runs).await?;
        let mut results = Vec::with_capacity(prepared.runs.len());
        for (params, result) in prepared.runs {
            run(
                &mut *connection,
                &prepared.sql,
                params,
                self.definition().path,
            )
            .await?;
            results.push(result);
        }
        Ok(results)
    }
}
