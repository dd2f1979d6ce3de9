//! The `DatabaseBackend` class: the [`Backend`] trait on top of a [`Store`], and this
//! backend's own operation, [`TRANSACTIONAL_INSERT_SQL`].

use crate::error::{Error, Result};
use crate::options::{redact, Location, Options, CLASS};
use crate::periodic::{PERIODIC_ENQUEUE, PERIODIC_LIST, PERIODIC_SYNC};
use crate::postgres::PgStore;
use crate::row::{parse_id, NewTask};
use crate::sqlite::SqliteStore;
use crate::store::{check_error, Claim, PageRequest, Store, StoreConfig, MAX_PAGE};
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use taskhost_plugin_api::control::{
    self, CancelOutcome, CancelRequest, CancelResponse, LeaseRenewal, RetryOutcome, RetryRequest,
    RetryResponse,
};
use taskhost_plugin_api::{
    Backend, BackendParams, Capabilities, CheckMessage, ClaimRequest, ClaimedTask, Completion,
    CompletionAck, EnqueueRequest, Host, LeaseRequest, ListRequest, PluginError, PruneRequest,
    QueueStats, Signal, TaskResultData, WaitFinishedRequest, WaitRequest, REPORT_STARTED,
    WAIT_FINISHED,
};

/// This backend's own operation ([`Backend::call_ext`]): the SQL an application runs on its
/// own connection to enqueue a task inside its own transaction. Request `{}` (any JSON);
/// response `{"database", "sql", "parameters": [{"position", "name", "type", "required",
/// "description"}], "notes"}`.
pub const TRANSACTIONAL_INSERT_SQL: &str = "taskhost.backends.database.transactional_insert_sql";

/// This backend's own operation ([`Backend::call_ext`]): one page of results, newest id first
/// (a UUID v7 id orders by enqueue time), for listings that page through a large store without
/// an offset. Request: `{"status", "queue_name", "task_path", "before_id", "enqueued_after",
/// "enqueued_before", "limit"}` (each optional but `limit`, 1 to 1000; times RFC 3339);
/// response: a JSON array of results as `results show` prints them. The next page asks with
/// `before_id` = the last id of this one.
pub const LIST_PAGE: &str = "taskhost.backends.database.list_page";

/// This backend's own operation ([`Backend::call_ext`]): how many results finished per minute
/// and status since a time. Request `{"since": RFC 3339}`; response `[{"minute", "status",
/// "count"}]`, oldest minute first, minutes with none left out.
pub const FINISHED_PER_MINUTE: &str = "taskhost.backends.database.finished_per_minute";

/// This backend's own operation ([`Backend::call_ext`]): the limits of the limited queues
/// (the option `queues`) and what uses them now. Request `{}` (any JSON); response `[{
/// "queue_name", "concurrency", "running", "rate_limit", "rate_per_secs", "started_in_window"}]`
/// sorted by queue (null where a queue has no such limit; empty when none is limited).
pub const QUEUE_LIMITS: &str = "taskhost.backends.database.queue_limits";

/// The longest a `wait_for_tasks` call blocks, whatever it asks for.
const MAX_WAIT_SECS: f64 = 3600.0;

/// A queue store on SQLite or PostgreSQL: stores enqueued tasks for workers to claim, run and
/// complete, with leases, rescue of lost workers, retries and pruning.
///
/// Capabilities: defer, async tasks, get_result, priority and queue store; `enqueue_many`
/// stores a batch in one transaction. Built
/// from the alias's options (see the crate docs); it connects, checks the schema version and
/// (with `migrate = true`, the default) migrates before it is handed to the host.
pub struct DatabaseBackend {
    pub(crate) alias: String,
    pub(crate) host: Host,
    pub(crate) options: Options,
    pub(crate) store: Box<dyn Store>,
    /// Set once the schema is known to be at the newest version.
    schema_ready: AtomicBool,
}

impl DatabaseBackend {
    /// Build the backend for one alias of the host's config. Bad options, an unusable
    /// database, an unreachable server or a schema newer than this plugin are
    /// [`ErrorKind::INVALID_OPTIONS`](taskhost_plugin_api::ErrorKind::INVALID_OPTIONS).
    pub fn new(params: BackendParams, host: Host) -> Result<Self, PluginError> {
        Self::build(params, host).map_err(PluginError::from)
    }

    fn build(params: BackendParams, host: Host) -> Result<Self> {
        let options = Options::parse(&params)?;
        let config = StoreConfig {
            alias: params.alias.clone(),
            max_attempts: options.max_attempts,
            max_rescues: options.max_rescues,
            limits: options.queues.clone(),
        };
        let store: Box<dyn Store> = match &options.location {
            Location::Sqlite(path) => Box::new(SqliteStore::open(
                path,
                &options.url,
                options.pool_size,
                &options.synchronous,
                config,
            )?),
            Location::Postgres(url) => Box::new(PgStore::open(url, &options, config)?),
        };
        let backend = Self {
            alias: params.alias,
            host,
            options,
            store,
            schema_ready: AtomicBool::new(false),
        };
        backend.prepare_schema()?;
        tracing::debug!(alias = %backend.alias, store = %backend.store.describe(), "DatabaseBackend created");
        Ok(backend)
    }

    /// The newest schema version this plugin knows for its database.
    pub(crate) fn latest_version(&self) -> u32 {
        self.store.migrations().last().map_or(0, |m| m.version)
    }

    /// Refuse a schema newer than this plugin; migrate an older one if `migrate` is on.
    fn prepare_schema(&self) -> Result<()> {
        let latest = self.latest_version();
        let version = self.store.schema_version().map_err(|e| self.invalid(e))?;
        if version > latest {
            return Err(Error::InvalidOptions(self.too_new(version)));
        }
        if version < latest && self.options.migrate {
            let applied = self.migrate_schema().map_err(|e| self.invalid(e))?;
            tracing::info!(alias = %self.alias, ?applied, "migrated the task database");
        } else if version == latest {
            self.schema_ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Apply every pending migration; returns the versions applied.
    fn migrate_schema(&self) -> Result<Vec<u32>> {
        let latest = self.latest_version();
        let applied = self.store.migrate(latest, self.now()?)?;
        let version = self.store.schema_version()?;
        if version > latest {
            return Err(Error::Other(self.too_new(version)));
        }
        self.schema_ready.store(true, Ordering::Release);
        Ok(applied)
    }

    fn too_new(&self, version: u32) -> String {
        format!(
            "{CLASS} '{}': {}: schema version {version} is newer than this plugin supports \
             ({}); upgrade taskhost.",
            self.alias,
            self.store.describe(),
            self.latest_version()
        )
    }

    /// Fail unless the schema is at the newest version (re-read while it is not).
    pub(crate) fn ensure_schema(&self) -> Result<()> {
        if self.schema_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let (version, latest) = (self.store.schema_version()?, self.latest_version());
        if version == latest {
            self.schema_ready.store(true, Ordering::Release);
            return Ok(());
        }
        Err(Error::Other(format!(
            "{CLASS} '{}': the {} has schema version {version}, but this plugin needs version \
             {latest}. Run the backend's 'migrate' operation, or set the option `migrate = true`.",
            self.alias,
            self.store.describe()
        )))
    }

    fn invalid(&self, err: Error) -> Error {
        match err {
            Error::InvalidOptions(_) => err,
            other => Error::InvalidOptions(format!(
                "{CLASS} '{}': cannot use the database of url '{}': {other}",
                self.alias,
                redact(&self.options.url)
            )),
        }
    }

    /// Store the tasks (all or none), then send `task_enqueued` for each.
    fn enqueue_all(&self, requests: Vec<EnqueueRequest>) -> Result<Vec<TaskResultData>> {
        self.ensure_schema()?;
        let mut tasks = Vec::with_capacity(requests.len());
        for request in requests {
            let id = parse_id(&request.id).ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "The result id '{}' is not a UUID; the database backend stores UUID ids.",
                    request.id
                ))
            })?;
            let enqueued_at = self.now()?;
            tasks.push(NewTask {
                id,
                request,
                enqueued_at,
            });
        }
        if tasks.iter().any(|t| t.request.unique.is_some()) {
            return self.enqueue_unique(tasks);
        }
        self.store.enqueue(&tasks)?;
        let results: Vec<TaskResultData> = tasks
            .into_iter()
            .map(|t| t.into_ready_result(&self.alias))
            .collect();
        // Asked once per batch: nothing is sent for a batch nobody listens to.
        if self.host.wants_signal(Signal::TASK_ENQUEUED) {
            for result in &results {
                self.host.send_signal(Signal::TASK_ENQUEUED, result);
            }
        }
        Ok(results)
    }

    /// [`DatabaseBackend::enqueue_all`] for a batch with uniqueness keys: a task whose key is
    /// held gets the result holding it (another id; no `task_enqueued` for it).
    fn enqueue_unique(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskResultData>> {
        let held = self.store.enqueue_unique(&tasks)?;
        let signal = self.host.wants_signal(Signal::TASK_ENQUEUED);
        Ok(tasks
            .into_iter()
            .zip(held)
            .map(|(task, held)| match held {
                Some(existing) => existing,
                None => {
                    let result = task.into_ready_result(&self.alias);
                    if signal {
                        self.host.send_signal(Signal::TASK_ENQUEUED, &result);
                    }
                    result
                }
            })
            .collect())
    }

    fn get(&self, id: &str) -> Result<TaskResultData> {
        let uuid = parse_id(id).ok_or_else(|| Error::DoesNotExist(id.to_string()))?;
        self.ensure_schema()?;
        self.store
            .get(uuid)?
            .ok_or_else(|| Error::DoesNotExist(id.to_string()))
    }

    fn claim_tasks(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>> {
        self.ensure_schema()?;
        check_worker_id(&request.worker_id)?;
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let now = self.now()?;
        let claim = Claim {
            worker_id: request.worker_id,
            queues: request.queues,
            exclude_queues: request.exclude_queues,
            limit: request.limit,
            start_now: request.start_now,
            now,
            lease_expires_at: self.lease_end(now, request.lease_secs)?,
        };
        self.store.claim(&claim)
    }

    fn renew(&self, request: LeaseRequest) -> Result<LeaseRenewal> {
        self.ensure_schema()?;
        let now = self.now()?;
        self.store
            .renew(&request, self.lease_end(now, request.lease_secs)?)
    }

    /// [`control::CANCEL`]: the outcome and the result as stored after it.
    fn cancel(&self, request: &str) -> Result<String, PluginError> {
        let CancelRequest { id } = ext_request(control::CANCEL, request)?;
        let uuid = parse_id(&id).ok_or_else(|| Error::DoesNotExist(id.clone()))?;
        self.ensure_schema()?;
        let outcome = self
            .store
            .cancel(uuid, self.now()?)?
            .ok_or_else(|| Error::DoesNotExist(id.clone()))?;
        match outcome {
            CancelOutcome::Cancelled => {
                tracing::info!(alias = %self.alias, id = %id, "cancelled a READY task")
            }
            CancelOutcome::Requested => {
                tracing::info!(alias = %self.alias, id = %id, "asked a RUNNING task to stop")
            }
            CancelOutcome::AlreadyFinished => {}
        }
        let result = self.get(&id)?;
        ext_response(control::CANCEL, &CancelResponse { outcome, result })
    }

    /// [`control::RETRY`]: the outcome and the result as stored after it.
    fn retry(&self, request: &str) -> Result<String, PluginError> {
        let RetryRequest { id } = ext_request(control::RETRY, request)?;
        let uuid = parse_id(&id).ok_or_else(|| Error::DoesNotExist(id.clone()))?;
        self.ensure_schema()?;
        let outcome = self
            .store
            .retry(uuid, self.now()?)?
            .ok_or_else(|| Error::DoesNotExist(id.clone()))?;
        if outcome == RetryOutcome::Retried {
            tracing::info!(alias = %self.alias, id = %id, "a FAILED task is READY again");
        }
        let result = self.get(&id)?;
        ext_response(control::RETRY, &RetryResponse { outcome, result })
    }

    /// [`control::RENEW_LEASES`]: the renewal, with the tasks asked to stop.
    fn renew_ext(&self, request: &str) -> Result<String, PluginError> {
        let request: LeaseRequest = ext_request(control::RENEW_LEASES, request)?;
        ext_response(control::RENEW_LEASES, &self.renew(request)?)
    }

    /// When a lease taken now for `secs` (≤ 0 or not finite: the `lease_secs` option) ends.
    fn lease_end(&self, now: DateTime<Utc>, secs: f64) -> Result<DateTime<Utc>> {
        let secs = if secs.is_finite() && secs > 0.0 {
            secs
        } else {
            self.options.lease_secs
        };
        let lease = chrono::Duration::microseconds((secs * 1e6).min(i64::MAX as f64) as i64);
        now.checked_add_signed(lease)
            .ok_or_else(|| Error::InvalidRequest(format!("a lease of {secs} s is too long")))
    }

    /// The host's clock.
    pub(crate) fn now(&self) -> Result<DateTime<Utc>> {
        let micros = self.host.now_micros();
        DateTime::from_timestamp_micros(micros).ok_or_else(|| {
            Error::Other(format!(
                "the host clock returned {micros} µs since the epoch, which is out of range"
            ))
        })
    }

    fn checks(&self) -> Vec<CheckMessage> {
        let mut messages = self.store.check();
        if !messages.is_empty() {
            return messages;
        }
        let latest = self.latest_version();
        let hint = match self.store.schema_version() {
            Ok(v) if v < latest => Some((
                format!("The {} has schema version {v}; this plugin needs {latest}.", self.store.describe()),
                "Run the backend's 'migrate' operation, or set the option `migrate = true`.",
            )),
            Ok(v) if v > latest => Some((
                format!("The {} has schema version {v}, which is newer than this plugin supports ({latest}).", self.store.describe()),
                "Upgrade taskhost.",
            )),
            Ok(_) => None,
            Err(e) => Some((format!("Cannot read the schema version: {e}"), "Check the database.")),
        };
        if let Some((message, hint)) = hint {
            messages.push(check_error(
                format!("{CLASS} '{}': {message}", self.alias),
                Some(hint),
            ));
        }
        messages
    }
}

/// Django's worker-id rules: not empty, at most 64 characters.
fn check_worker_id(worker_id: &str) -> Result<()> {
    if worker_id.is_empty() || worker_id.chars().count() > 64 {
        return Err(Error::InvalidRequest(format!(
            "worker id '{worker_id}' must be 1 to 64 characters long"
        )));
    }
    Ok(())
}

impl DatabaseBackend {
    fn wait(&self, mut request: WaitRequest) -> Result<bool> {
        if !(request.timeout_secs.is_finite() && request.timeout_secs >= 0.0) {
            return Err(Error::InvalidRequest(format!(
                "wait_for_tasks needs a timeout of zero or more seconds, got {}",
                request.timeout_secs
            )));
        }
        request.timeout_secs = request.timeout_secs.min(MAX_WAIT_SECS);
        self.ensure_schema()?;
        self.store.wait(&request, self.now()?)
    }

    /// [`TRANSACTIONAL_INSERT_SQL`]: `request` may be any JSON (`{}`).
    fn transactional_insert_sql(&self, request: &str) -> Result<String, PluginError> {
        serde_json::from_str::<serde::de::IgnoredAny>(request).map_err(|e| {
            PluginError::invalid_request(format!("invalid {TRANSACTIONAL_INSERT_SQL} payload: {e}"))
        })?;
        self.ensure_schema()?;
        Ok(self.store.insert_sql().to_string())
    }

    fn list_page(&self, request: &str) -> Result<String, PluginError> {
        let request: PageRequest = ext_request(LIST_PAGE, request)?;
        if !(1..=MAX_PAGE).contains(&request.limit) {
            return Err(PluginError::invalid_request(format!(
                "{LIST_PAGE}: limit must be 1 to {MAX_PAGE}, not {}",
                request.limit
            )));
        }
        self.ensure_schema()?;
        ext_response(LIST_PAGE, &self.store.list_page(&request)?)
    }

    /// [`REPORT_STARTED`]: the prefetched tasks a worker starts now (a [`LeaseRequest`]);
    /// answers `{"reported": n}`, the rows still held under those leases.
    fn report_started(&self, request: &str) -> Result<String, PluginError> {
        let request: LeaseRequest = ext_request(REPORT_STARTED, request)?;
        check_worker_id(&request.worker_id)?;
        self.ensure_schema()?;
        let reported = self.store.report_started(&request)?;
        ext_response(REPORT_STARTED, &serde_json::json!({ "reported": reported }))
    }

    fn finished_per_minute(&self, request: &str) -> Result<String, PluginError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Since {
            since: DateTime<Utc>,
        }
        let Since { since } = ext_request(FINISHED_PER_MINUTE, request)?;
        self.ensure_schema()?;
        ext_response(FINISHED_PER_MINUTE, &self.store.finished_per_minute(since)?)
    }
}

impl DatabaseBackend {
    /// `taskhost.wait_finished` ([`WaitFinishedRequest`]): block until the results are
    /// finished or the timeout, woken by the store (PostgreSQL: LISTEN/NOTIFY; SQLite: the
    /// `-done` file). An id that is not a stored result is `RESULT_DOES_NOT_EXIST`, naming it.
    fn wait_finished(&self, request: &str) -> Result<String, PluginError> {
        let request: WaitFinishedRequest = ext_request(WAIT_FINISHED, request)?;
        let timeout = request.checked_timeout()?;
        let ids = request
            .ids
            .iter()
            .map(|id| match parse_id(id) {
                Some(uuid) => Ok((id.clone(), uuid)),
                None => Err(Error::DoesNotExist(id.clone())),
            })
            .collect::<Result<Vec<_>>>()?;
        self.ensure_schema()?;
        ext_response(WAIT_FINISHED, &self.store.wait_finished(&ids, timeout)?)
    }
}

/// Read the JSON request of the extension operation `operation`.
pub(crate) fn ext_request<T: serde::de::DeserializeOwned>(
    operation: &str,
    request: &str,
) -> Result<T, PluginError> {
    serde_json::from_str(request)
        .map_err(|e| PluginError::invalid_request(format!("invalid {operation} payload: {e}")))
}

/// Write the JSON response of the extension operation `operation`.
pub(crate) fn ext_response<T: serde::Serialize + ?Sized>(
    operation: &str,
    response: &T,
) -> Result<String, PluginError> {
    serde_json::to_string(response).map_err(|e| PluginError::other(format!("{operation}: {e}")))
}

impl Backend for DatabaseBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::DEFER
            | Capabilities::ASYNC_TASK
            | Capabilities::GET_RESULT
            | Capabilities::PRIORITY
            | Capabilities::QUEUE_STORE
            | Capabilities::UNIQUE
    }

    fn enqueue(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
        self.enqueue_all(vec![request])?
            .pop()
            .ok_or_else(|| PluginError::other("enqueue stored no result"))
    }

    /// One transaction for the whole batch (PostgreSQL: one statement, or a binary COPY).
    fn enqueue_many(
        &self,
        requests: Vec<EnqueueRequest>,
    ) -> Result<Vec<TaskResultData>, PluginError> {
        Ok(self.enqueue_all(requests)?)
    }

    fn get_result(&self, id: &str) -> Result<TaskResultData, PluginError> {
        Ok(self.get(id)?)
    }

    fn check(&self) -> Result<Vec<CheckMessage>, PluginError> {
        Ok(self.checks())
    }

    fn results(&self) -> Result<Vec<TaskResultData>, PluginError> {
        self.ensure_schema()?;
        Ok(self.store.results()?)
    }

    fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>, PluginError> {
        Ok(self.claim_tasks(request)?)
    }

    fn complete(&self, completions: Vec<Completion>) -> Result<Vec<CompletionAck>, PluginError> {
        self.ensure_schema()?;
        Ok(self.store.complete(&completions, self.now()?)?)
    }

    fn renew_leases(&self, request: LeaseRequest) -> Result<Vec<String>, PluginError> {
        Ok(self.renew(request)?.lost)
    }

    fn release(&self, request: LeaseRequest) -> Result<u64, PluginError> {
        self.ensure_schema()?;
        Ok(self.store.release(&request, self.now()?)?)
    }

    fn rescue(&self) -> Result<u64, PluginError> {
        self.ensure_schema()?;
        Ok(self.store.rescue(self.now()?)?)
    }

    fn wait_for_tasks(&self, request: WaitRequest) -> Result<bool, PluginError> {
        Ok(self.wait(request)?)
    }

    fn migrate(&self) -> Result<Vec<u32>, PluginError> {
        Ok(self.migrate_schema()?)
    }

    fn list_results(&self, request: ListRequest) -> Result<Vec<TaskResultData>, PluginError> {
        self.ensure_schema()?;
        Ok(self.store.list(&request)?)
    }

    fn queue_stats(&self) -> Result<Vec<QueueStats>, PluginError> {
        self.ensure_schema()?;
        Ok(self.store.stats()?)
    }

    fn prune(&self, request: PruneRequest) -> Result<u64, PluginError> {
        self.ensure_schema()?;
        Ok(self.store.prune(&request)?)
    }

    fn call_ext(&self, operation: &str, request: &str) -> Result<String, PluginError> {
        match operation {
            TRANSACTIONAL_INSERT_SQL => self.transactional_insert_sql(request),
            LIST_PAGE => self.list_page(request),
            FINISHED_PER_MINUTE => self.finished_per_minute(request),
            REPORT_STARTED => self.report_started(request),
            control::CANCEL => self.cancel(request),
            control::RETRY => self.retry(request),
            control::RENEW_LEASES => self.renew_ext(request),
            WAIT_FINISHED => self.wait_finished(request),
            PERIODIC_SYNC => self.periodic_sync(request),
            PERIODIC_LIST => self.periodic_list(request),
            PERIODIC_ENQUEUE => self.periodic_enqueue(request),
            QUEUE_LIMITS => {
                self.ensure_schema()?;
                ext_response(QUEUE_LIMITS, &self.store.limit_usage(self.now()?)?)
            }
            other => Err(PluginError::not_supported(other)),
        }
    }

    fn close(&self) {
        self.store.close();
    }
}
