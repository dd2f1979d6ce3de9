//! apalis 1.0: `SqliteStorage` (apalis-sqlite) or `PostgresStorage` (apalis-postgres).
//!
//! A storage is typed by its task's arguments, so the two tasks are one argument type, `Job`,
//! on one queue (`bench`).

use crate::{client_command, run_noop, run_stamp, terminated, url, worker_report, Command};
use anyhow::Context;
use apalis::prelude::*;
use apalis_postgres::{PgPool, PostgresStorage};
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::str::FromStr;
use std::time::Duration;

const QUEUE: &str = "bench";
/// The tuned workers' `batch_size` (tasks per fetch; the default is 10): `Config::batch_size`'s
/// documentation says larger batches improve throughput, and its example uses 50.
const TUNED_BATCH: usize = 50;
/// The tuned SQLite worker's fallback poll: the apalis-sqlite README's event-driven example.
const SQLITE_TUNED_INTERVAL: Duration = Duration::from_millis(500);
/// The tuned PostgreSQL worker's fallback poll next to LISTEN/NOTIFY: the apalis-postgres
/// README's pubsub example.
const PG_TUNED_INTERVAL: Duration = Duration::from_secs(5);

/// The two benchmark tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Job {
    Noop(i64, i64),
    Stamp(i64),
}

async fn handle(job: Job) -> Result<(), BoxDynError> {
    match job {
        Job::Noop(a, b) => {
            run_noop(a, b);
        }
        Job::Stamp(t0) => run_stamp(t0),
    }
    Ok(())
}

/// The store a URL names.
enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

async fn connect(create: bool) -> anyhow::Result<Store> {
    let url = url()?;
    if url.starts_with("sqlite:") {
        // The file's `synchronous` setting for every connection of the pool (apalis's
        // `setup` sets OFF on the one connection it runs on: `migrate` runs in its own
        // process, so the measured processes keep this setting).
        let sync = std::env::var("BENCH_SQLITE_SYNC").unwrap_or_else(|_| "NORMAL".into());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(create)
            .pragma("journal_mode", "WAL")
            .pragma("synchronous", sync);
        Ok(Store::Sqlite(
            SqlitePoolOptions::new().connect_with(options).await?,
        ))
    } else {
        Ok(Store::Postgres(PgPool::connect(&url).await?))
    }
}

fn sqlite_config(tuned: bool) -> apalis_sqlite::Config {
    let config = apalis_sqlite::Config::default().queue(QUEUE);
    if tuned {
        config.batch_size(TUNED_BATCH)
    } else {
        config
    }
}

fn pg_config(tuned: bool) -> apalis_postgres::Config {
    let config = apalis_postgres::Config::default().queue(QUEUE);
    if tuned {
        config.batch_size(TUNED_BATCH)
    } else {
        config
    }
}

/// The client side on one storage.
struct Sink<S>(S);

/// `Client` on a storage (`TaskSink` has a second type parameter, the backend's kind: one impl
/// per storage keeps it out of sight).
macro_rules! client_on {
    ($storage:ty) => {
        impl crate::Client for Sink<$storage> {
            async fn noop(&mut self, a: i64, b: i64) -> anyhow::Result<()> {
                self.0.push(Job::Noop(a, b)).await.map_err(sink_error)
            }

            async fn noop_batch(&mut self, first: i64, size: u64) -> anyhow::Result<()> {
                // `push_bulk`: the whole batch in one transaction (PostgreSQL: one
                // INSERT … SELECT unnest(…); SQLite: one INSERT per task).
                let jobs = (first..first + size as i64)
                    .map(|i| Job::Noop(i, 2))
                    .collect();
                self.0.push_bulk(jobs).await.map_err(sink_error)
            }

            async fn stamp(&mut self, t0: i64) -> anyhow::Result<()> {
                self.0.push(Job::Stamp(t0)).await.map_err(sink_error)
            }
        }
    };
}

client_on!(SqliteStorage<Job>);
client_on!(PostgresStorage<Job>);

fn sink_error<E: std::fmt::Debug>(error: TaskSinkError<E>) -> anyhow::Error {
    anyhow::anyhow!("apalis push failed: {error:?}")
}

/// Build and run a worker on `$backend` until SIGTERM.
macro_rules! run_worker {
    ($backend:expr, $concurrency:expr) => {
        WorkerBuilder::new(format!("bench-{}", std::process::id()))
            .backend($backend)
            .concurrency($concurrency)
            .build(handle)
            .run_until(async {
                terminated().await;
                Ok::<(), std::io::Error>(())
            })
            .await
            .context("apalis worker")?
    };
}

pub(crate) async fn main(command: Command) -> anyhow::Result<Value> {
    match command {
        Command::Migrate => {
            match connect(true).await? {
                Store::Sqlite(pool) => SqliteStorage::setup(&pool).await?,
                Store::Postgres(pool) => PostgresStorage::setup(&pool).await?,
            }
            Ok(json!({"ok": true}))
        }
        Command::Worker { concurrency, tuned } => {
            match (connect(false).await?, tuned) {
                // Defaults: the READMEs' basic workers. No poll strategy: after an empty fetch
                // the worker looks again at its next heartbeat (30 s).
                (Store::Sqlite(pool), false) => {
                    let backend =
                        SqliteStorage::<Job>::new(&pool).with_config(sqlite_config(false));
                    run_worker!(backend, concurrency)
                }
                (Store::Postgres(pool), false) => {
                    let backend = PostgresStorage::<Job>::new(&pool).with_config(pg_config(false));
                    run_worker!(backend, concurrency)
                }
                // Tuned, SQLite: the README's event-driven worker is woken by an update hook,
                // which SQLite calls only for writes made on the hooked connection itself: an
                // enqueue from another process never fires it, so what wakes this worker is
                // the same strategy's interval.
                (Store::Sqlite(pool), true) => {
                    let backend = SqliteStorage::<Job>::new(&pool)
                        .with_config(sqlite_config(true))
                        .poll_with_strategy(Strategy::new().interval(SQLITE_TUNED_INTERVAL));
                    run_worker!(backend, concurrency)
                }
                // Tuned, PostgreSQL: the README's pubsub worker (LISTEN/NOTIFY, and an interval).
                (Store::Postgres(pool), true) => {
                    let backend = PostgresStorage::<Job>::new(&pool)
                        .with_config(pg_config(true))
                        .with_pubsub()
                        .poll_with_strategy(Strategy::new().interval(PG_TUNED_INTERVAL));
                    run_worker!(backend, concurrency)
                }
            }
            Ok(worker_report(concurrency, tuned))
        }
        command => match connect(false).await? {
            Store::Sqlite(pool) => {
                let storage = SqliteStorage::<Job>::new(&pool).with_config(sqlite_config(false));
                client_command(&mut Sink(storage), command).await
            }
            Store::Postgres(pool) => {
                let storage = PostgresStorage::<Job>::new(&pool).with_config(pg_config(false));
                client_command(&mut Sink(storage), command).await
            }
        },
    }
}
