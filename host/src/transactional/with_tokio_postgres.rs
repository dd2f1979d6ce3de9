//! Enqueueing through a `tokio-postgres` client or transaction (feature `tokio-postgres`):
//! `task.aenqueue_in_pg(&tx, args).await` runs the backend's insert on it, so the task row
//! commits or rolls back with the application's rows.

use super::{DatabaseKind, SqlParam};
use crate::error::{Error, Result};
use crate::result::TaskResult;
use crate::task::Task;
use serde::Serialize;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::GenericClient;

/// One parameter as tokio-postgres binds it, with the type it is sent as. Text, 64-bit
/// integers and booleans: the backend's statement casts each to its column's type, so no
/// tokio-postgres type feature (uuid, serde_json, chrono) is needed.
fn bind(param: SqlParam) -> (Box<dyn ToSql + Send + Sync>, Type) {
    match param {
        SqlParam::Text(text) => (Box::new(text), Type::TEXT),
        SqlParam::Json(value) => (Box::new(value.to_string()), Type::TEXT),
        SqlParam::Integer(n) => (Box::new(n), Type::INT8),
        SqlParam::Timestamp(t) => (
            Box::new(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            Type::TEXT,
        ),
        SqlParam::Bool(b) => (Box::new(b), Type::BOOL),
        SqlParam::Null => (Box::new(None::<String>), Type::TEXT),
    }
}

/// Run the insert `sql` with `params` on `client`.
async fn run<C>(client: &C, sql: &str, params: Vec<SqlParam>, task: &str) -> Result<()>
where
    C: GenericClient + Sync,
{
    let bound: Vec<_> = params.into_iter().map(bind).collect();
    let params: Vec<(&(dyn ToSql + Sync), Type)> = bound
        .iter()
        .map(|(value, ty)| (&**value as &(dyn ToSql + Sync), ty.clone()))
        .collect();
    client
        .query_typed(sql, &params)
        .await
        .map_err(|e| Error::Database {
            task: task.to_string(),
            driver: "tokio-postgres",
            message: e.to_string(),
        })?;
    Ok(())
}

impl<A: Serialize, R> Task<A, R> {
    /// Enqueue on the application's tokio-postgres client or transaction: the task is stored if
    /// and only if that transaction commits. Returns the READY result with the id the row has;
    /// after the commit, `refresh` reads it and workers run it.
    ///
    /// Validated as `enqueue` validates. `NotSupported` if the task's backend has no
    /// transactional insert (only the database backend has), `DatabaseMismatch` if its queue is
    /// not in PostgreSQL, `Database` if tokio-postgres fails to run the insert (roll your
    /// transaction back then).
    ///
    /// ```no_run
    /// use taskhost::task;
    ///
    /// #[task]
    /// fn welcome(user_id: i64) {}
    ///
    /// async fn sign_up(app: &mut tokio_postgres::Client) -> Result<String, Box<dyn std::error::Error>> {
    ///     let tx = app.transaction().await?;
    ///     tx.execute("INSERT INTO users (id) VALUES ($1)", &[&42i64]).await?;
    ///     let result = welcome.aenqueue_in_pg(&tx, (42,)).await?; // READY
    ///     tx.commit().await?; // the task exists if and only if this commits
    ///     Ok(result.id().to_string())
    /// }
    /// # fn main() {}
    /// ```
    pub async fn aenqueue_in_pg<C>(&self, client: &C, args: A) -> Result<TaskResult<R>>
    where
        C: GenericClient + Sync,
    {
        let mut results = self.aenqueue_many_in_pg(client, [args]).await?;
        Ok(results.remove(0))
    }

    /// [`Task::aenqueue_in_pg`] for many runs, one insert each; all are validated before any
    /// is inserted.
    pub async fn aenqueue_many_in_pg<C>(
        &self,
        client: &C,
        runs: impl IntoIterator<Item = A>,
    ) -> Result<Vec<TaskResult<R>>>
    where
        C: GenericClient + Sync,
    {
        let prepared = self
            .aprepare_inserts("tokio-postgres", DatabaseKind::Postgresql, runs)
            .await?;
        let mut results = Vec::with_capacity(prepared.runs.len());
        for (params, result) in prepared.runs {
            run(client, &prepared.sql, params, self.definition().path).await?;
            results.push(result);
        }
        Ok(results)
    }
}
