//! The SQLite queue store: one database file, shared by every process on the machine.
//!
//! Connections run in WAL mode with `synchronous = NORMAL` (the `synchronous` option: `FULL`)
//! and a 5 s busy timeout. Every write is a `BEGIN IMMEDIATE` transaction, so SQLite serialises
//! writers up front (no deadlocking read-to-write upgrades); a writer still locked out after the
//! timeout is retried a few times and then reported as [`Error::Unavailable`] — never as a task
//! failure.
//!
//! Idle workers are woken by a watch on the database's directory: the `-wake` file that enqueues
//! touch after their commit, and the `-wal` file that every commit writes (`wake.rs`,
//! `docs/decisions/011-sqlite-wake-up.md`).

mod admin;
mod finished;
mod limits;
mod periodic;
mod queue;
mod unique;
mod wake;

#[cfg(test)]
pub(crate) use queue::CLAIM_SELECT;

use crate::error::{Error, Result};
use crate::periodic::{NewTick, ScheduleState, SyncRequest, SyncResponse, TicksEnqueued};
use crate::pool::{Connection as PoolConnection, Pool};
use crate::row::{from_micros, NewTask, Row};
use crate::store::{check_error, Claim, Migration, MinuteCount, PageRequest, Store, StoreConfig};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;
use taskhost_plugin_api::control::{CancelOutcome, LeaseRenewal, RetryOutcome};
use taskhost_plugin_api::{
    CheckMessage, ClaimedTask, Completion, CompletionAck, LeaseRequest, ListRequest, PruneRequest,
    QueueStats, TaskResultData, WaitRequest,
};

/// The SQLite migrations, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tasks",
        sql: include_str!("../../migrations/sqlite/0001_tasks.sql"),
    },
    Migration {
        version: 2,
        name: "indexes",
        sql: include_str!("../../migrations/sqlite/0002_indexes.sql"),
    },
    Migration {
        version: 3,
        name: "status_check",
        sql: include_str!("../../migrations/sqlite/0003_status_check.sql"),
    },
    Migration {
        version: 4,
        name: "rescues",
        sql: include_str!("../../migrations/sqlite/0004_rescues.sql"),
    },
    Migration {
        version: 5,
        name: "prefetch_starts",
        sql: include_str!("../../migrations/sqlite/0005_prefetch_starts.sql"),
    },
    Migration {
        version: 6,
        name: "cancel_and_retry",
        sql: include_str!("../../migrations/sqlite/0006_cancel_and_retry.sql"),
    },
    Migration {
        version: 7,
        name: "periodic",
        sql: include_str!("../../migrations/sqlite/0007_periodic.sql"),
    },
    Migration {
        version: 8,
        name: "queue_limits",
        sql: include_str!("../../migrations/sqlite/0008_queue_limits.sql"),
    },
    Migration {
        version: 9,
        name: "unique",
        sql: include_str!("../../migrations/sqlite/0009_unique.sql"),
    },
    Migration {
        version: 10,
        name: "trace_context",
        sql: include_str!("../../migrations/sqlite/0010_trace_context.sql"),
    },
];

/// How long SQLite waits for another writer before giving up on one try.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Further tries after a busy timeout.
const BUSY_RETRIES: u32 = 3;

/// `PRAGMA wal_autocheckpoint`, in pages: a commit that leaves the WAL longer than this
/// checkpoints it into the database file. Every checkpoint fsyncs (the WAL, then the database
/// file) even with `synchronous = NORMAL`, where a commit itself does not; each enqueue adds
/// 3–4 pages (table, primary-key index, claim index), so SQLite's default of 1,000 pages made
/// every ≈300th enqueue pay two fsyncs. 10,000 pages (≈40 MiB of WAL at 4 KiB pages) makes
/// that ten times rarer. The cost: a longer WAL to replay after a crash, and a page read
/// probes one wal-index hash table per 4,096 WAL frames (at most three here instead of one).
const WAL_AUTOCHECKPOINT: i64 = 10_000;

/// `PRAGMA journal_size_limit`, in bytes: after a checkpoint resets the WAL, its file is
/// truncated back to this size, so the larger checkpoint interval does not leave a large
/// file behind.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Prepared statements kept per connection (rusqlite's default of 16 is fewer than the
/// store's statements, which would then be re-parsed).
const STATEMENT_CACHE: usize = 64;

/// The columns a [`Row`] is read from, in [`read_row`]'s order.
const COLUMNS: &str = "id, task_path, queue_name, priority, backend_name, status, args, kwargs, \
    takes_context, is_async, run_after, enqueued_at, started_at, finished_at, last_attempted_at, \
    worker_ids, errors, return_value, max_attempts, timeout_secs, lease_token, rescues, \
    retried_attempts, trace_context";

/// How many [`COLUMNS`] there are: a statement that returns one more column after them has it
/// at this index.
const COLUMN_COUNT: usize = 24;

/// The queue store on an SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    pool: Pool<SqliteConn>,
    /// Serialises this process's writers, so they queue here instead of spinning in SQLite's
    /// busy handler; other processes are still kept out by `BEGIN IMMEDIATE`.
    writer: parking_lot::Mutex<()>,
    config: StoreConfig,
    /// `wait_for_tasks`: the watch on the `-wake` and `-wal` files, started by the first wait
    /// and stopped by `close()`; enqueues touch the `-wake` file through it.
    wake: wake::Wake,
    /// `taskhost.wait_finished`: the `-done` file that completions touch after their commit,
    /// watched by the first wait for a result.
    done: finished::Done,
}

/// A pooled SQLite connection.
pub struct SqliteConn(Connection);

impl PoolConnection for SqliteConn {
    fn is_broken(&mut self) -> bool {
        false
    }
}

/// An error inside an SQLite transaction body.
pub type TxError = crate::error::TxError<rusqlite::Error>;

impl SqliteStore {
    /// Open (creating if needed) the database at `path`. Anything that makes the file unusable
    /// — a missing directory, a read-only or non-SQLite file — is [`Error::InvalidOptions`].
    /// `synchronous` is the validated `synchronous` option (`normal` or `full`).
    pub fn open(
        path: &Path,
        url: &str,
        pool_size: u32,
        synchronous: &str,
        config: StoreConfig,
    ) -> Result<Self> {
        let synchronous = synchronous.to_string();
        let first = connect(path, &synchronous).map_err(|err| {
            Error::InvalidOptions(format!(
                "{} '{}': cannot use the SQLite database of url '{url}' ({}): {err}",
                crate::options::CLASS,
                config.alias,
                path.display(),
            ))
        })?;
        let owned = path.to_path_buf();
        let pool = Pool::new(
            pool_size,
            BUSY_TIMEOUT * 2,
            Box::new(move || connect(&owned, &synchronous).map_err(Error::Unavailable)),
        );
        pool.seed(first);
        Ok(Self {
            path: path.to_path_buf(),
            pool,
            writer: parking_lot::Mutex::new(()),
            config,
            wake: wake::Wake::new(path),
            done: finished::Done::new(path),
        })
    }

    /// Run `body` in a `BEGIN IMMEDIATE` transaction and commit, retrying when SQLite stays busy
    /// (a failed body or COMMIT is rolled back).
    fn write<T>(
        &self,
        doing: &str,
        mut body: impl FnMut(&Connection) -> Result<T, TxError>,
    ) -> Result<T> {
        let _writer = self.writer.lock();
        let conn = self.pool.get()?;
        let conn = &conn.0;
        let mut tries = 0;
        loop {
            // BEGIN and COMMIT as cached statements: parsed once per connection, not per write.
            let outcome = (|| {
                conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
                let value = body(conn)?;
                conn.prepare_cached("COMMIT")?.execute([])?;
                Ok(value)
            })();
            if outcome.is_err() && !conn.is_autocommit() {
                // What rusqlite's Transaction does when dropped uncommitted.
                if let Err(err) = conn.execute_batch("ROLLBACK") {
                    tracing::warn!("could not roll back a failed write: {err}");
                }
            }
            match outcome {
                Ok(value) => return Ok(value),
                Err(TxError::Db(err)) if is_busy(&err) && tries < BUSY_RETRIES => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20 * u64::from(tries)));
                }
                Err(TxError::Db(err)) if is_busy(&err) => {
                    return Err(Error::Unavailable(format!(
                        "the SQLite database '{}' stayed locked by another writer while {doing} \
                         ({} tries of {BUSY_TIMEOUT:?}); try again later",
                        self.path.display(),
                        tries + 1
                    )))
                }
                Err(TxError::Db(err)) => return Err(Error::sqlite(doing, err)),
                Err(TxError::App(err)) => return Err(err),
            }
        }
    }

    /// Run `body` on a pooled connection, outside any explicit transaction.
    fn read<T>(
        &self,
        doing: &str,
        body: impl FnOnce(&Connection) -> Result<T, TxError>,
    ) -> Result<T> {
        let conn = self.pool.get()?;
        body(&conn.0).map_err(|err| match err {
            TxError::Db(err) => Error::sqlite(doing, err),
            TxError::App(err) => err,
        })
    }

    fn version_on(conn: &Connection) -> rusqlite::Result<u32> {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = 'taskhost_schema_version')",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(0);
        }
        conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM taskhost_schema_version",
            [],
            |r| r.get(0),
        )
    }

    fn schema_version(&self) -> Result<u32> {
        self.read("reading the schema version", |c| Ok(Self::version_on(c)?))
    }

    fn migrate(&self, target: u32, now: DateTime<Utc>) -> Result<Vec<u32>> {
        self.write("migrating the schema", |tx| {
            let current = Self::version_on(tx)?;
            let mut applied = Vec::new();
            for m in MIGRATIONS
                .iter()
                .filter(|m| m.version > current && m.version <= target)
            {
                tx.execute_batch(m.sql)?;
                tx.execute(
                    "INSERT INTO taskhost_schema_version (version, applied_at) VALUES (?1, ?2)",
                    (m.version, now.timestamp_micros()),
                )?;
                tracing::info!(version = m.version, name = m.name, "applied migration");
                applied.push(m.version);
            }
            Ok(applied)
        })
    }

    fn check(&self) -> Vec<CheckMessage> {
        match self.read("checking the database", |c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
        }) {
            Ok(_) => Vec::new(),
            Err(err) => vec![check_error(
                format!(
                    "The SQLite database '{}' cannot be used: {err}",
                    self.path.display()
                ),
                Some("Check that the file and its directory exist and are writable."),
            )],
        }
    }

    fn describe(&self) -> String {
        format!("SQLite database '{}'", self.path.display())
    }
}

/// Open and configure one connection, proving that the database is writable.
fn connect(path: &Path, synchronous: &str) -> Result<SqliteConn, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(format!(
                "the directory '{}' does not exist; create it or change `url`",
                dir.display()
            ));
        }
    }
    if path.is_dir() {
        return Err("that path is a directory; name a database file".into());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    let readonly = conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| e.to_string())?;
    if readonly {
        return Err(
            "the file is read-only; workers must be able to write to it (and to its \
                    directory, for the -wal and -shm files)"
                .into(),
        );
    }
    let configure = || -> rusqlite::Result<()> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "journal_mode stayed '{mode}'"
            )));
        }
        conn.pragma_update(None, "synchronous", synchronous)?;
        // See WAL_AUTOCHECKPOINT: fewer, larger checkpoints, and the WAL file cut back after.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Prove we can take the write lock now rather than at the first enqueue.
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
    };
    configure().map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen) => {
            format!("{e}; workers must be able to write to the file and to its directory")
        }
        Some(rusqlite::ErrorCode::NotADatabase) => {
            format!("{e}; the file is not an SQLite database")
        }
        _ => e.to_string(),
    })?;
    Ok(SqliteConn(conn))
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Microseconds since the epoch, as stored.
fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A JSON array of strings, as `json_each` reads it.
fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Read the [`COLUMNS`] of one row; a bad stored time is [`TxError::App`] with
/// [`Error::Corrupt`].
fn read_row(r: &rusqlite::Row<'_>) -> Result<Row, TxError> {
    let id: String = r.get(0)?;
    let time = |at: usize, column: &'static str| -> Result<Option<DateTime<Utc>>, TxError> {
        let micros: Option<i64> = r.get(at)?;
        Ok(micros.map(|m| from_micros(&id, column, m)).transpose()?)
    };
    let enqueued_at = time(11, "enqueued_at")?
        .ok_or_else(|| crate::row::corrupt(&id, "enqueued_at", "it is NULL"))?;
    Ok(Row {
        task_path: r.get(1)?,
        queue_name: r.get(2)?,
        priority: r.get(3)?,
        backend_name: r.get(4)?,
        status: r.get(5)?,
        args: r.get(6)?,
        kwargs: r.get(7)?,
        takes_context: r.get(8)?,
        is_async: r.get(9)?,
        run_after: time(10, "run_after")?,
        enqueued_at,
        started_at: time(12, "started_at")?,
        finished_at: time(13, "finished_at")?,
        last_attempted_at: time(14, "last_attempted_at")?,
        worker_ids: r.get(15)?,
        errors: r.get(16)?,
        return_value: r.get(17)?,
        max_attempts: r.get(18)?,
        timeout_secs: r.get(19)?,
        lease_token: r.get(20)?,
        rescues: r.get(21)?,
        retried_attempts: r.get(22)?,
        trace_context: r.get(23)?,
        id,
    })
}

impl Store for SqliteStore {
    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }

    fn schema_version(&self) -> Result<u32> {
        SqliteStore::schema_version(self)
    }

    fn migrate(&self, target: u32, now: DateTime<Utc>) -> Result<Vec<u32>> {
        SqliteStore::migrate(self, target, now)
    }

    fn enqueue(&self, tasks: &[NewTask]) -> Result<()> {
        SqliteStore::enqueue(self, tasks)?;
        // After the commit: wake idle workers in every process (see wake.rs).
        self.wake.enqueued();
        Ok(())
    }

    fn enqueue_unique(&self, tasks: &[NewTask]) -> Result<Vec<Option<TaskResultData>>> {
        let (results, stored) = self.enqueue_keyed(tasks)?;
        if stored {
            self.wake.enqueued();
        }
        Ok(results)
    }

    fn get(&self, id: uuid::Uuid) -> Result<Option<TaskResultData>> {
        SqliteStore::get(self, id)
    }

    fn claim(&self, claim: &Claim) -> Result<Vec<ClaimedTask>> {
        let claimed = SqliteStore::claim(self, claim);
        // A claim rescues first: a task it failed wakes waits for it.
        self.done.after_rescue();
        claimed
    }

    fn complete(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionAck>> {
        let acks = SqliteStore::complete(self, completions, now)?;
        // After the commit: wake waits for results, in every process (finished.rs), when a
        // task may have finished (a retry's completion makes it READY again, unless the task
        // was asked to stop: then it ended FAILED).
        if acks.iter().any(|ack| ack.applied) {
            self.done.finished();
        }
        Ok(acks)
    }

    fn renew(&self, request: &LeaseRequest, expires_at: DateTime<Utc>) -> Result<LeaseRenewal> {
        SqliteStore::renew(self, request, expires_at)
    }

    fn report_started(&self, request: &LeaseRequest) -> Result<u64> {
        SqliteStore::report_started(self, request)
    }

    fn cancel(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<Option<CancelOutcome>> {
        let outcome = SqliteStore::cancel(self, id, now)?;
        if outcome == Some(CancelOutcome::Cancelled) {
            // After the commit: a READY task cancelled is finished; wake its waits.
            self.done.finished();
        }
        Ok(outcome)
    }

    fn retry(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<Option<RetryOutcome>> {
        let retried = SqliteStore::retry(self, id, now)?;
        if retried == Some(RetryOutcome::Retried) {
            // After the commit: wake idle workers in every process, as an enqueue does.
            self.wake.enqueued();
        }
        Ok(retried)
    }

    fn release(&self, request: &LeaseRequest, now: DateTime<Utc>) -> Result<u64> {
        let released = SqliteStore::release(self, request, now)?;
        if released > 0 {
            self.wake.enqueued();
            // A released task asked to stop ended FAILED: its waits read it again.
            self.done.finished();
        }
        Ok(released)
    }

    fn rescue(&self, now: DateTime<Utc>) -> Result<u64> {
        let rescued = SqliteStore::rescue(self, now);
        self.done.after_rescue();
        rescued
    }

    fn results(&self) -> Result<Vec<TaskResultData>> {
        SqliteStore::results(self)
    }

    fn list(&self, request: &ListRequest) -> Result<Vec<TaskResultData>> {
        SqliteStore::list(self, request)
    }

    fn stats(&self) -> Result<Vec<QueueStats>> {
        SqliteStore::stats(self)
    }

    fn prune(&self, request: &PruneRequest) -> Result<u64> {
        SqliteStore::prune(self, request)
    }

    fn list_page(&self, request: &PageRequest) -> Result<Vec<TaskResultData>> {
        SqliteStore::list_page(self, request)
    }

    fn finished_per_minute(&self, since: DateTime<Utc>) -> Result<Vec<MinuteCount>> {
        SqliteStore::finished_per_minute(self, since)
    }

    fn limit_usage(&self, now: DateTime<Utc>) -> Result<Vec<crate::limits::LimitUsage>> {
        SqliteStore::limit_usage(self, now)
    }

    fn wait(&self, request: &WaitRequest, now: DateTime<Utc>) -> Result<bool> {
        SqliteStore::wait(self, request, now)
    }

    fn wait_finished(
        &self,
        ids: &[(String, uuid::Uuid)],
        timeout: std::time::Duration,
    ) -> Result<taskhost_plugin_api::WaitFinishedResponse> {
        SqliteStore::wait_finished(self, ids, timeout)
    }

    fn insert_sql(&self) -> serde_json::Value {
        SqliteStore::insert_sql(self)
    }

    fn check(&self) -> Vec<CheckMessage> {
        SqliteStore::check(self)
    }

    fn describe(&self) -> String {
        SqliteStore::describe(self)
    }

    fn close(&self) {
        self.wake.close();
        self.done.close();
        self.pool.close();
    }

    fn periodic_sync(&self, request: &SyncRequest) -> Result<SyncResponse> {
        SqliteStore::periodic_sync(self, request)
    }

    fn periodic_list(&self) -> Result<Vec<ScheduleState>> {
        SqliteStore::periodic_list(self)
    }

    fn periodic_enqueue(
        &self,
        schedule: &str,
        through: DateTime<Utc>,
        ticks: Vec<NewTick>,
        now: DateTime<Utc>,
    ) -> Result<(TicksEnqueued, Vec<NewTask>)> {
        SqliteStore::periodic_enqueue(self, schedule, through, ticks, now)
    }

    fn enqueued(&self) {
        self.wake.enqueued();
    }
}
