//! The PostgreSQL queue store: one database shared by workers on many machines.
//!
//! Uses the synchronous `postgres` client: each connection drives tokio-postgres on its own
//! current-thread runtime, only while a call is running, so the plugin owns its runtime and
//! leaves no thread behind. Claims lock rows with `FOR UPDATE SKIP LOCKED`; enqueues NOTIFY the
//! `taskhost_tasks` channel in the same transaction, which `wait_for_tasks` LISTENs to.

mod admin;
#[cfg(test)]
pub(crate) mod faults;
mod finished;
mod jsonb;
mod limits;
mod listen;
mod periodic;
mod queue;
mod session;
mod unique;

#[cfg(test)]
pub(crate) use queue::{CLAIM, CLAIM_SELECT};

use crate::error::{postgres_text, Error, Result};
use crate::options::{redact, Options, CLASS};
use crate::periodic::{NewTick, ScheduleState, SyncRequest, SyncResponse, TicksEnqueued};
use crate::pool::Pool;
use crate::row::{corrupt, NewTask, Row};
use crate::store::{check_error, Claim, Migration, MinuteCount, PageRequest, Store, StoreConfig};
use chrono::{DateTime, Utc};
use finished::Finished;
use jsonb::JsonText;
use listen::Listener;
use session::{connect, PgConn, Tx};
use std::sync::atomic::AtomicI64;
use std::time::Duration;
use taskhost_plugin_api::control::{CancelOutcome, LeaseRenewal, RetryOutcome};
use taskhost_plugin_api::{
    CheckMessage, ClaimedTask, Completion, CompletionAck, LeaseRequest, ListRequest, PruneRequest,
    QueueStats, TaskResultData, WaitRequest,
};

/// The PostgreSQL migrations, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tasks",
        sql: include_str!("../../migrations/postgres/0001_tasks.sql"),
    },
    Migration {
        version: 2,
        name: "indexes",
        sql: include_str!("../../migrations/postgres/0002_indexes.sql"),
    },
    Migration {
        version: 3,
        name: "enqueue_function",
        sql: include_str!("../../migrations/postgres/0003_enqueue_function.sql"),
    },
    Migration {
        version: 4,
        name: "claims_and_rescues",
        sql: include_str!("../../migrations/postgres/0004_claims_and_rescues.sql"),
    },
    Migration {
        version: 5,
        name: "drain_storage",
        sql: include_str!("../../migrations/postgres/0005_drain_storage.sql"),
    },
    Migration {
        version: 6,
        name: "prefetch_starts",
        sql: include_str!("../../migrations/postgres/0006_prefetch_starts.sql"),
    },
    Migration {
        version: 7,
        name: "cancel_and_retry",
        sql: include_str!("../../migrations/postgres/0007_cancel_and_retry.sql"),
    },
    Migration {
        version: 8,
        name: "result_waits",
        sql: include_str!("../../migrations/postgres/0008_result_waits.sql"),
    },
    Migration {
        version: 9,
        name: "periodic",
        sql: include_str!("../../migrations/postgres/0009_periodic.sql"),
    },
    Migration {
        version: 10,
        name: "queue_limits",
        sql: include_str!("../../migrations/postgres/0010_queue_limits.sql"),
    },
    Migration {
        version: 11,
        name: "unique",
        sql: include_str!("../../migrations/postgres/0011_unique.sql"),
    },
    Migration {
        version: 12,
        name: "trace_context",
        sql: include_str!("../../migrations/postgres/0012_trace_context.sql"),
    },
];

/// The NOTIFY channel enqueues signal on; the payload is the queue name.
pub const CHANNEL: &str = "taskhost_tasks";

/// The columns a [`Row`] is read from, in [`read_row`]'s order.
const COLUMNS: &str = "id::text, task_path, queue_name, priority, backend_name, status, args, \
    kwargs, takes_context, is_async, run_after, enqueued_at, started_at, finished_at, \
    last_attempted_at, worker_ids, errors, return_value, max_attempts, timeout_secs, lease_token, \
    rescues, retried_attempts, trace_context";

/// How many [`COLUMNS`] there are: a statement that returns one more column after them has it
/// at this index.
const COLUMN_COUNT: usize = 24;

/// An error inside a PostgreSQL transaction body.
pub type TxError = crate::error::TxError<postgres::Error>;

/// The queue store on a PostgreSQL database.
pub struct PgStore {
    url: String,
    schema: String,
    pool_size: u32,
    pool: Pool<PgConn>,
    listener: Listener,
    /// The waits for results to finish, and their LISTEN connection.
    finished: Finished,
    config: StoreConfig,
    /// When (host clock, µs) a claim last checked for expired leases; `i64::MIN`: never.
    last_rescue_check: AtomicI64,
}

impl PgStore {
    /// Connect to `url` (with `search_path` set to the `schema` option). An unparsable url or
    /// an unreachable server is [`Error::InvalidOptions`].
    pub fn open(url: &str, options: &Options, config: StoreConfig) -> Result<Self> {
        let invalid =
            |what: String| Error::InvalidOptions(format!("{CLASS} '{}': {what}", config.alias));
        let mut pg: postgres::Config = url.parse().map_err(|e| {
            invalid(format!(
                "url '{}' is not a valid PostgreSQL url: {e}",
                redact(url)
            ))
        })?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(10));
        }
        if pg.get_application_name().is_none() {
            pg.application_name("taskhost");
        }
        let mut session = format!("-c search_path={}", options.schema);
        if let Some(level) = &options.synchronous_commit {
            session.push_str(&format!(" -c synchronous_commit={level}"));
        }
        let pg_options = match pg.get_options() {
            Some(given) => format!("{given} {session}"),
            None => session,
        };
        pg.options(&pg_options);
        let first = connect(&pg).map_err(|e| {
            invalid(format!(
                "could not connect to PostgreSQL at url '{}': {}. Check that the server is \
                 running and that `url` names the right host, port, user, password and database.",
                redact(url),
                postgres_text(&e)
            ))
        })?;
        let listener = Listener::new(pg.clone());
        let finished = Finished::new(pg.clone());
        let pool = Pool::new(
            options.pool_size,
            Duration::from_secs(30),
            Box::new(move || connect(&pg).map_err(|e| Error::postgres("connecting", e))),
        );
        pool.seed(first);
        Ok(Self {
            url: redact(url),
            schema: options.schema.clone(),
            pool_size: options.pool_size,
            pool,
            listener,
            finished,
            config,
            last_rescue_check: AtomicI64::new(i64::MIN),
        })
    }

    fn schema_version(&self) -> Result<u32> {
        self.read("reading the schema version", |tx| Ok(version_on(tx)?))
    }

    fn migrate(&self, target: u32, now: DateTime<Utc>) -> Result<Vec<u32>> {
        let schema = self.schema.clone();
        self.write("migrating the schema", |tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('taskhost_migrate.' || $1::text))",
                &[&schema],
            )?;
            let exists = tx.query(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1::text",
                &[&schema],
            )?;
            if exists.is_empty() {
                tx.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))?;
            }
            let current = version_on(tx)?;
            let mut applied = Vec::new();
            for m in MIGRATIONS
                .iter()
                .filter(|m| m.version > current && m.version <= target)
            {
                tx.batch_execute(m.sql)?;
                tx.execute(
                    "INSERT INTO taskhost_schema_version (version, applied_at) VALUES ($1, $2)",
                    &[&(m.version as i32), &now],
                )?;
                tracing::info!(version = m.version, name = m.name, "applied migration");
                applied.push(m.version);
            }
            Ok(applied)
        })
    }

    fn check(&self) -> Vec<CheckMessage> {
        match self.read("checking the database", |tx| Ok(tx.query("SELECT 1", &[])?)) {
            Ok(_) => Vec::new(),
            Err(err) => vec![check_error(
                format!("The {} cannot be used: {err}", self.describe()),
                Some("Check that the server is running and that `url` is right."),
            )],
        }
    }

    fn describe(&self) -> String {
        format!(
            "PostgreSQL database '{}' (schema '{}')",
            self.url, self.schema
        )
    }
}

/// The schema version, 0 if the version table does not exist (in the `search_path` schema).
fn version_on(tx: &mut Tx<'_>) -> Result<u32, postgres::Error> {
    let table = tx.query(
        "SELECT to_regclass('taskhost_schema_version') IS NOT NULL",
        &[],
    )?;
    if !table[0].try_get::<_, bool>(0)? {
        return Ok(0);
    }
    let rows = tx.query(
        "SELECT COALESCE(MAX(version), 0) FROM taskhost_schema_version",
        &[],
    )?;
    Ok(rows[0].try_get::<_, i32>(0)?.max(0) as u32)
}

/// Read the [`COLUMNS`] of one row (never panics: every column goes through `try_get`).
fn read_row(r: &postgres::Row) -> Result<Row, TxError> {
    let id: String = r.try_get(0)?;
    let json = |at: usize| -> Result<String, TxError> {
        Ok(r.try_get::<_, JsonText<'_>>(at)?.0.to_string())
    };
    let enqueued_at: Option<DateTime<Utc>> = r.try_get(11)?;
    let enqueued_at = enqueued_at.ok_or_else(|| corrupt(&id, "enqueued_at", "it is NULL"))?;
    Ok(Row {
        task_path: r.try_get(1)?,
        queue_name: r.try_get(2)?,
        priority: r.try_get(3)?,
        backend_name: r.try_get(4)?,
        status: r.try_get(5)?,
        args: json(6)?,
        kwargs: json(7)?,
        takes_context: r.try_get(8)?,
        is_async: r.try_get(9)?,
        run_after: r.try_get(10)?,
        enqueued_at,
        started_at: r.try_get(12)?,
        finished_at: r.try_get(13)?,
        last_attempted_at: r.try_get(14)?,
        worker_ids: json(15)?,
        errors: json(16)?,
        return_value: r
            .try_get::<_, Option<JsonText<'_>>>(17)?
            .map(|json| json.0.to_string()),
        max_attempts: r.try_get::<_, Option<i32>>(18)?.map(i64::from),
        timeout_secs: r.try_get(19)?,
        lease_token: r.try_get(20)?,
        rescues: i64::from(r.try_get::<_, i32>(21)?),
        retried_attempts: i64::from(r.try_get::<_, i32>(22)?),
        trace_context: r.try_get(23)?,
        id,
    })
}

impl Store for PgStore {
    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }

    fn schema_version(&self) -> Result<u32> {
        PgStore::schema_version(self)
    }

    fn migrate(&self, target: u32, now: DateTime<Utc>) -> Result<Vec<u32>> {
        PgStore::migrate(self, target, now)
    }

    fn enqueue(&self, tasks: &[NewTask]) -> Result<()> {
        PgStore::enqueue(self, tasks)
    }

    fn enqueue_unique(&self, tasks: &[NewTask]) -> Result<Vec<Option<TaskResultData>>> {
        self.enqueue_keyed(tasks)
    }

    fn get(&self, id: uuid::Uuid) -> Result<Option<TaskResultData>> {
        PgStore::get(self, id)
    }

    fn claim(&self, claim: &Claim) -> Result<Vec<ClaimedTask>> {
        PgStore::claim(self, claim)
    }

    fn complete(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionAck>> {
        PgStore::complete(self, completions, now)
    }

    fn renew(&self, request: &LeaseRequest, expires_at: DateTime<Utc>) -> Result<LeaseRenewal> {
        PgStore::renew(self, request, expires_at)
    }

    fn cancel(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<Option<CancelOutcome>> {
        PgStore::cancel(self, id, now)
    }

    fn retry(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<Option<RetryOutcome>> {
        PgStore::retry(self, id, now)
    }

    fn release(&self, request: &LeaseRequest, now: DateTime<Utc>) -> Result<u64> {
        PgStore::release(self, request, now)
    }

    fn report_started(&self, request: &LeaseRequest) -> Result<u64> {
        PgStore::report_started(self, request)
    }

    fn rescue(&self, now: DateTime<Utc>) -> Result<u64> {
        PgStore::rescue(self, now)
    }

    fn results(&self) -> Result<Vec<TaskResultData>> {
        PgStore::results(self)
    }

    fn list(&self, request: &ListRequest) -> Result<Vec<TaskResultData>> {
        PgStore::list(self, request)
    }

    fn stats(&self) -> Result<Vec<QueueStats>> {
        PgStore::stats(self)
    }

    fn prune(&self, request: &PruneRequest) -> Result<u64> {
        PgStore::prune(self, request)
    }

    fn list_page(&self, request: &PageRequest) -> Result<Vec<TaskResultData>> {
        PgStore::list_page(self, request)
    }

    fn finished_per_minute(&self, since: DateTime<Utc>) -> Result<Vec<MinuteCount>> {
        PgStore::finished_per_minute(self, since)
    }

    fn limit_usage(&self, now: DateTime<Utc>) -> Result<Vec<crate::limits::LimitUsage>> {
        PgStore::limit_usage(self, now)
    }

    fn wait(&self, request: &WaitRequest, _now: DateTime<Utc>) -> Result<bool> {
        let timeout = Duration::from_secs_f64(request.timeout_secs);
        self.listener.wait(request.queues.as_deref(), timeout)
    }

    fn wait_finished(
        &self,
        ids: &[(String, uuid::Uuid)],
        timeout: Duration,
    ) -> Result<taskhost_plugin_api::WaitFinishedResponse> {
        PgStore::wait_finished(self, ids, timeout)
    }

    fn insert_sql(&self) -> serde_json::Value {
        PgStore::insert_sql(self)
    }

    fn check(&self) -> Vec<CheckMessage> {
        PgStore::check(self)
    }

    fn describe(&self) -> String {
        PgStore::describe(self)
    }

    fn close(&self) {
        self.pool.close();
        self.listener.close();
        self.finished.close();
    }

    fn periodic_sync(&self, request: &SyncRequest) -> Result<SyncResponse> {
        PgStore::periodic_sync(self, request)
    }

    fn periodic_list(&self) -> Result<Vec<ScheduleState>> {
        PgStore::periodic_list(self)
    }

    fn periodic_enqueue(
        &self,
        schedule: &str,
        through: DateTime<Utc>,
        ticks: Vec<NewTick>,
        now: DateTime<Utc>,
    ) -> Result<(TicksEnqueued, Vec<NewTask>)> {
        PgStore::periodic_enqueue(self, schedule, through, ticks, now)
    }
}
