//! The internal storage interface: one method per operation, implemented once per database
//! ([`crate::sqlite::SqliteStore`], [`crate::postgres::PgStore`]), sqlx-style.
//!
//! Every time a store needs comes from the caller (the host's clock), so tests control time and
//! all workers agree with the host rather than with the database server.

use crate::error::Result;
use crate::periodic::{NewTick, ScheduleState, SyncRequest, SyncResponse, TicksEnqueued};
use crate::row::NewTask;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use taskhost_plugin_api::control::{CancelOutcome, LeaseRenewal, RetryOutcome};
use taskhost_plugin_api::{
    CheckMessage, ClaimedTask, Completion, CompletionAck, LeaseRequest, ListRequest, PruneRequest,
    QueueStats, TaskResultData, TaskResultStatus, WaitFinishedResponse, WaitRequest,
};

/// What every store is told when it is opened.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The backend alias: rows are stored with it as `backend_name`, and claims, rescues,
    /// listings and prunes only touch rows of this alias.
    pub alias: String,
    /// Attempts allowed for tasks that set none.
    pub max_attempts: u32,
    /// Rescues from a lost worker before a task ends FAILED.
    pub max_rescues: u32,
    /// Per-queue limits claims enforce (empty: none, and claims take the unlimited path).
    pub limits: crate::limits::Limits,
}

/// One versioned schema change, embedded from `migrations/<database>/`.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// The version it brings the schema to (1, 2, …).
    pub version: u32,
    /// A short name, as in the file name.
    pub name: &'static str,
    /// The SQL, run in one transaction with the version bump.
    pub sql: &'static str,
}

/// A claim, with times already computed.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The claiming worker.
    pub worker_id: String,
    /// Queues to take from; `None` = all.
    pub queues: Option<Vec<String>>,
    /// Queues to skip.
    pub exclude_queues: Vec<String>,
    /// At most this many tasks (≥ 1).
    pub limit: u32,
    /// How many of them (the first, in claim order) start at once; the rest are marked
    /// prefetched, and their rescue is not counted until their start is reported. `None`:
    /// all start at once (a host that does not say).
    pub start_now: Option<u32>,
    /// Now, by the host's clock.
    pub now: DateTime<Utc>,
    /// When the leases of the claimed tasks run out.
    pub lease_expires_at: DateTime<Utc>,
}

/// A queue store: SQLite or PostgreSQL behind one interface.
pub trait Store: Send + Sync {
    /// The database's migrations, in order (the last one's version is the newest known).
    fn migrations(&self) -> &'static [Migration];

    /// The schema version the database is at (0 = empty).
    fn schema_version(&self) -> Result<u32>;

    /// Apply the migrations above the current version up to `target`; returns the versions
    /// applied (none if already there). Safe to run from several processes at once.
    fn migrate(&self, target: u32, now: DateTime<Utc>) -> Result<Vec<u32>>;

    /// Insert READY rows, all or none, in one transaction (PostgreSQL: with a NOTIFY per queue).
    fn enqueue(&self, tasks: &[NewTask]) -> Result<()>;

    /// Store the tasks, some under uniqueness keys (`crate::unique`), all in one transaction:
    /// for each, `None` when it was stored, else the result already holding its key (a stored
    /// task, or an earlier one of `tasks`).
    fn enqueue_unique(&self, tasks: &[NewTask]) -> Result<Vec<Option<TaskResultData>>>;

    /// The stored result `id` (any alias), or `None`.
    fn get(&self, id: uuid::Uuid) -> Result<Option<TaskResultData>>;

    /// Rescue expired leases, then mark up to `claim.limit` ready tasks RUNNING for the worker,
    /// never handing one task to two workers; returned in claim order.
    fn claim(&self, claim: &Claim) -> Result<Vec<ClaimedTask>>;

    /// Apply completions whose lease is still held (id, RUNNING, token), in one transaction.
    fn complete(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionAck>>;

    /// Extend held leases to `expires_at`; returns the ids whose lease was lost, and those
    /// renewed that were asked to stop (one statement per lease either way: the answer rides
    /// on the renewal).
    fn renew(&self, request: &LeaseRequest, expires_at: DateTime<Utc>) -> Result<LeaseRenewal>;

    /// Cancel `id` at `now` (any alias): a READY row FAILED at once with the cancellation
    /// error, a RUNNING one marked `cancel_requested`; `None` if there is no such row.
    fn cancel(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<Option<CancelOutcome>>;

    /// Make the FAILED row `id` READY again at `now` (errors and worker ids kept, the attempts
    /// made so far no longer counted against its `max_attempts`); `None` if there is no such
    /// row.
    fn retry(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<Option<RetryOutcome>>;

    /// Hand held tasks back (READY, attempt not counted; a task asked to stop FAILED at `now`
    /// with the cancellation error instead); returns how many.
    fn release(&self, request: &LeaseRequest, now: DateTime<Utc>) -> Result<u64>;

    /// Record that held prefetched tasks start now (their rescue counts from here); returns
    /// how many are still held under these leases.
    fn report_started(&self, request: &LeaseRequest) -> Result<u64>;

    /// Rescue RUNNING tasks whose lease expired before `now`; returns how many.
    fn rescue(&self, now: DateTime<Utc>) -> Result<u64>;

    /// Every result of this alias, oldest first.
    fn results(&self) -> Result<Vec<TaskResultData>>;

    /// Results of this alias matching the filters, newest first.
    fn list(&self, request: &ListRequest) -> Result<Vec<TaskResultData>>;

    /// Count per queue and status for this alias (oldest READY `enqueued_at` too).
    fn stats(&self) -> Result<Vec<QueueStats>>;

    /// Delete (or with `dry_run` count) finished results, at most `limit` of them (a dry
    /// run's count is capped at `limit` too); returns how many.
    fn prune(&self, request: &PruneRequest) -> Result<u64>;

    /// One page of results of this alias matching the filters, newest id first, after the
    /// cursor (`before_id`): keyset paging on the primary key.
    fn list_page(&self, request: &PageRequest) -> Result<Vec<TaskResultData>>;

    /// Results of this alias finished since `since`, counted per minute and status (through
    /// the `finished_at` index).
    fn finished_per_minute(&self, since: DateTime<Utc>) -> Result<Vec<MinuteCount>>;

    /// The limited queues' limits and usage at `now` (empty when no queue is limited).
    fn limit_usage(&self, now: DateTime<Utc>) -> Result<Vec<crate::limits::LimitUsage>>;

    /// Block until a task may be ready in one of the queues, or the timeout; returns whether
    /// a notification came. `now` is the host's clock at the call (SQLite checks for due
    /// READY rows with it).
    fn wait(&self, request: &WaitRequest, now: DateTime<Utc>) -> Result<bool>;

    /// `taskhost.wait_finished`: block until every result of `ids` (each with its text as
    /// asked) is finished, or `timeout`; woken by the completions' signal (PostgreSQL: a
    /// NOTIFY; SQLite: the `-done` file), never by a timer. An unknown id is
    /// [`crate::error::Error::DoesNotExist`].
    fn wait_finished(
        &self,
        ids: &[(String, uuid::Uuid)],
        timeout: std::time::Duration,
    ) -> Result<WaitFinishedResponse>;

    /// The SQL an application runs on its own connection to enqueue inside its own
    /// transaction, with its parameters documented (JSON).
    fn insert_sql(&self) -> Value;

    /// Connectivity problems, as check messages (schema problems are the backend's).
    fn check(&self) -> Vec<CheckMessage>;

    /// Where the store is, for messages (passwords redacted).
    fn describe(&self) -> String;

    /// Close every connection; later calls fail with "closed".
    fn close(&self);

    /// Write the configured schedules of this alias (see [`crate::periodic::PERIODIC_SYNC`]),
    /// in one transaction.
    fn periodic_sync(&self, request: &SyncRequest) -> Result<SyncResponse>;

    /// The stored schedules of this alias, by name.
    fn periodic_list(&self) -> Result<Vec<ScheduleState>>;

    /// In one transaction holding the schedule's row: store each tick after the schedule's
    /// last tick whose (schedule, tick) key is free, with its task; set the last tick to
    /// `through` (if later). Returns what was done and the tasks stored.
    fn periodic_enqueue(
        &self,
        schedule: &str,
        through: DateTime<Utc>,
        ticks: Vec<NewTick>,
        now: DateTime<Utc>,
    ) -> Result<(TicksEnqueued, Vec<NewTask>)>;

    /// Tasks were stored outside [`Store::enqueue`] (periodic ticks): wake idle workers
    /// where the commit does not (SQLite).
    fn enqueued(&self) {}
}

/// The most results one [`PageRequest`] returns.
pub const MAX_PAGE: u32 = 1000;

/// The request of [`crate::backend::LIST_PAGE`]: [`ListRequest`]'s filters, a time window and
/// a keyset cursor.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PageRequest {
    /// Only this status.
    #[serde(default)]
    pub status: Option<TaskResultStatus>,
    /// Only this queue.
    #[serde(default)]
    pub queue_name: Option<String>,
    /// Only this task path.
    #[serde(default)]
    pub task_path: Option<String>,
    /// Only results whose id sorts before this one (the last id of the previous page).
    #[serde(default)]
    pub before_id: Option<String>,
    /// Only results enqueued at or after this time.
    #[serde(default)]
    pub enqueued_after: Option<DateTime<Utc>>,
    /// Only results enqueued before this time.
    #[serde(default)]
    pub enqueued_before: Option<DateTime<Utc>>,
    /// At most this many, 1 to [`MAX_PAGE`].
    pub limit: u32,
}

/// How many results finished in one minute with one status (the answer of
/// [`crate::backend::FINISHED_PER_MINUTE`], a JSON array of these).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct MinuteCount {
    /// The minute's start.
    pub minute: DateTime<Utc>,
    /// FAILED or SUCCESSFUL.
    pub status: TaskResultStatus,
    /// How many.
    pub count: u64,
}

/// Read a minute bucket (whole minutes since the epoch) and a stored status.
pub fn minute_count(minute: i64, status: &str, count: i64) -> Result<MinuteCount> {
    let corrupt =
        || crate::error::Error::Other(format!("a bad per-minute count: {minute} {status}"));
    Ok(MinuteCount {
        minute: DateTime::from_timestamp(minute.checked_mul(60).ok_or_else(corrupt)?, 0)
            .ok_or_else(corrupt)?,
        status: TaskResultStatus::parse(status).ok_or_else(corrupt)?,
        count: u64::try_from(count).map_err(|_| corrupt())?,
    })
}

/// The answer of `taskhost.wait_finished` from what a store read (`finished`: whether each
/// stored id is finished; an id missing from it is [`crate::error::Error::DoesNotExist`]).
pub fn finished_answer(
    ids: &[(String, uuid::Uuid)],
    finished: &std::collections::HashMap<uuid::Uuid, bool>,
    checks: u64,
) -> Result<WaitFinishedResponse> {
    let mut answer = WaitFinishedResponse {
        checks,
        ..Default::default()
    };
    for (text, id) in ids {
        match finished.get(id) {
            None => return Err(crate::error::Error::DoesNotExist(text.clone())),
            Some(true) => answer.finished.push(text.clone()),
            Some(false) => answer.pending.push(text.clone()),
        }
    }
    Ok(answer)
}

/// An error [`CheckMessage`].
pub fn check_error(message: String, hint: Option<&str>) -> CheckMessage {
    CheckMessage {
        level: "error".into(),
        message,
        hint: hint.map(str::to_string),
    }
}

/// A status a prune deletes, with its cut-off (`None` = any age).
pub type PruneTarget = (&'static str, Option<DateTime<Utc>>);

/// The statuses a prune deletes, each with its cut-off.
pub fn prune_targets(request: &PruneRequest) -> Result<Vec<PruneTarget>> {
    use taskhost_plugin_api::TaskResultStatus::{Failed, Successful};
    if let Some(bad) = request.statuses.iter().find(|s| !s.is_finished()) {
        return Err(crate::error::Error::InvalidRequest(format!(
            "prune only deletes finished results (FAILED, SUCCESSFUL), not {bad}."
        )));
    }
    let wanted = |s| request.statuses.is_empty() || request.statuses.contains(&s);
    let mut targets = Vec::new();
    if wanted(Successful) {
        targets.push(("SUCCESSFUL", request.finished_before));
    }
    if wanted(Failed) {
        let cutoff = request.failed_finished_before.or(request.finished_before);
        targets.push(("FAILED", cutoff));
    }
    Ok(targets)
}

/// Stats sorted by queue, then Django's status order.
pub fn sort_stats(stats: &mut [QueueStats]) {
    use taskhost_plugin_api::TaskResultStatus;
    let rank = |s: TaskResultStatus| TaskResultStatus::ALL.iter().position(|x| *x == s);
    stats.sort_by(|a, b| {
        a.queue_name
            .cmp(&b.queue_name)
            .then_with(|| rank(a.status).cmp(&rank(b.status)))
    });
}

/// One documented parameter of a transactional insert statement.
pub fn param(position: u32, name: &str, ty: &str, required: bool, description: &str) -> Value {
    serde_json::json!({
        "position": position,
        "name": name,
        "type": ty,
        "required": required,
        "description": description,
    })
}
