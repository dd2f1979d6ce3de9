//! The typed values a backend works with: what the host asks of it and what it answers.
//!
//! These are plain Rust types. [`crate::export_plugin!`] carries them across the plugin
//! boundary as frozen `#[repr(C)]` records (see [`crate::abi`]); a plugin never sees those.
//! Free-form values (arguments, return values) are [`Json`] text that crosses as it is.

use crate::{Json, Text};
use abi_stable::StableAbi;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// The status of a task result — exactly Django's four.
#[repr(u8)]
#[derive(StableAbi, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskResultStatus {
    /// Just enqueued, or ready to be run again.
    Ready,
    /// Currently running.
    Running,
    /// Raised an error (or panicked) while running, or could not start.
    Failed,
    /// Finished successfully.
    Successful,
}

impl TaskResultStatus {
    /// Every status, in Django's order.
    pub const ALL: [Self; 4] = [Self::Ready, Self::Running, Self::Failed, Self::Successful];

    /// The stored value: `READY`, `RUNNING`, `FAILED` or `SUCCESSFUL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Running => "RUNNING",
            Self::Failed => "FAILED",
            Self::Successful => "SUCCESSFUL",
        }
    }

    /// Django's human label: `Ready`, `Running`, `Failed` or `Successful`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Running => "Running",
            Self::Failed => "Failed",
            Self::Successful => "Successful",
        }
    }

    /// Parse a stored value (case-sensitive, as stored).
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// FAILED or SUCCESSFUL.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Failed | Self::Successful)
    }
}

impl fmt::Display for TaskResultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error recorded on a task result (Django's `TaskError`).
#[repr(C)]
#[derive(StableAbi, Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct TaskError {
    /// The error's type path, e.g. `std::io::Error`, or `panic` for a panic.
    pub exception_class_path: Text,
    /// The rendered error: cause chain and backtrace, ending with `"<type>: <message>\n"`.
    pub traceback: Text,
}

/// The task half of a result: which function, with which options.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct TaskDescription {
    /// The task's path: `module_path!()` + `::` + function name.
    pub path: Text,
    /// Priority, -100 (lowest) to 100 (highest).
    pub priority: i32,
    /// The queue the task goes to.
    pub queue_name: Text,
    /// The backend alias it was enqueued on.
    pub backend: Text,
    /// Earliest time to run it, if deferred.
    #[serde(default)]
    pub run_after: Option<DateTime<Utc>>,
    /// Whether the function takes a `TaskContext` first.
    #[serde(default)]
    pub takes_context: bool,
    /// Whether the function is an `async fn`.
    #[serde(default)]
    pub is_async: bool,
    /// How many attempts a worker may make before the result is FAILED (1 = no retry).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Time limit for one run, in seconds.
    #[serde(default)]
    pub timeout_secs: Option<f64>,
}

impl TaskDescription {
    /// The task at `path` with Django's defaults: priority 0, queue `default`, alias `default`,
    /// no `run_after`, a plain `fn` without a context, the backend's attempts and no time limit.
    /// Set fields on the value for anything else (`TaskDescription { priority: 5,
    /// ..TaskDescription::new("app::send") }`), so code keeps compiling when a 2.x adds one.
    pub fn new(path: impl Into<Text>) -> Self {
        Self {
            path: path.into(),
            priority: 0,
            queue_name: "default".into(),
            backend: "default".into(),
            run_after: None,
            takes_context: false,
            is_async: false,
            max_attempts: None,
            timeout_secs: None,
        }
    }
}

/// One enqueued run of a task, as stored by a backend.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct TaskResultData {
    /// The result id (a UUID string assigned by the host).
    pub id: Text,
    /// What was enqueued.
    pub task: TaskDescription,
    /// Where the run stands.
    pub status: TaskResultStatus,
    /// When it was stored.
    #[serde(default)]
    pub enqueued_at: Option<DateTime<Utc>>,
    /// When the latest attempt started.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished (FAILED or SUCCESSFUL).
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// When an attempt was last made.
    #[serde(default)]
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// Positional arguments: a JSON array.
    pub args: Json,
    /// Keyword arguments: a JSON object.
    pub kwargs: Json,
    /// The backend alias.
    pub backend: Text,
    /// Errors of failed attempts, oldest first.
    #[serde(default)]
    pub errors: Vec<TaskError>,
    /// One worker id per attempt, appended when the attempt starts.
    #[serde(default)]
    pub worker_ids: Vec<Text>,
    /// The return value, once SUCCESSFUL.
    #[serde(default)]
    pub return_value: Option<Json>,
    /// The trace context stored with the task ([`EnqueueRequest::trace_context`]; plugin-api
    /// 2.1, carried in the record's `ext`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<Text>,
}

impl TaskResultData {
    /// The READY result a backend first makes of an enqueue request, for backend `alias`: the
    /// request's id, task and arguments, every timestamp unset, no errors, no worker ids
    /// (Django's fresh `TaskResult`).
    pub fn ready(request: EnqueueRequest, alias: &str) -> Self {
        Self {
            id: request.id,
            task: request.task,
            status: TaskResultStatus::Ready,
            enqueued_at: None,
            started_at: None,
            finished_at: None,
            last_attempted_at: None,
            args: request.args,
            kwargs: request.kwargs,
            backend: alias.into(),
            errors: Vec::new(),
            worker_ids: Vec::new(),
            return_value: None,
            trace_context: request.trace_context,
        }
    }
}

/// What the host asks a backend to enqueue.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct EnqueueRequest {
    /// The id the result must have (assigned by the host, so transaction scopes know it early).
    pub id: Text,
    /// The task and its options, already validated by the host.
    pub task: TaskDescription,
    /// Positional arguments: a JSON array (JSON-storable, checked by the host).
    pub args: Json,
    /// Keyword arguments: a JSON object.
    pub kwargs: Json,
    /// The uniqueness key the task is enqueued under, if any (plugin-api 2.1; carried in the
    /// record's `ext` text). Only sent to a backend declaring [`crate::Capabilities::UNIQUE`],
    /// which must then return the result already holding the key instead of storing a second
    /// task (its id differs from [`EnqueueRequest::id`]). Boxed: a request without a key, the
    /// common case, stays as small as in 2.0 (it is moved several times per enqueue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<Box<UniqueKey>>,
    /// The W3C trace context of the enqueue (a JSON object of the `traceparent` and
    /// `tracestate` headers), when the host traces it (plugin-api 2.1; carried in the record's
    /// `ext`). A backend that keeps it returns it as [`TaskResultData::trace_context`], so the
    /// run continues the enqueue's trace; one that does not only loses that link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<Text>,
}

/// A uniqueness key: while it is held (see [`UniqueScope`]), a second enqueue of the same task
/// path with the same key on the same backend alias returns the result already holding it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct UniqueKey {
    /// The key (1 to [`UniqueKey::MAX_BYTES`] bytes): the caller's, or the host's SHA-256 of the
    /// task path and the canonical JSON of its arguments.
    pub key: String,
    /// How long the key stays held.
    #[serde(flatten)]
    pub scope: UniqueScope,
}

impl UniqueKey {
    /// The longest key, in bytes.
    pub const MAX_BYTES: usize = 255;
}

/// How long a [`UniqueKey`] stays held.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, Default)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum UniqueScope {
    /// While the task holding it is READY or RUNNING (retries included): once it ends
    /// (SUCCESSFUL or FAILED) the key is free again.
    #[default]
    Active,
    /// For this long after the task holding it was enqueued, whatever its status.
    For {
        /// The period, in whole microseconds (at least 1).
        period_us: i64,
    },
}

impl EnqueueRequest {
    /// A request for `task` with result id `id` and positional arguments `args` (a JSON array),
    /// no keyword arguments: what the host sends, for a backend's own tests.
    pub fn new(id: impl Into<Text>, task: TaskDescription, args: Json) -> Self {
        Self {
            id: id.into(),
            task,
            args,
            kwargs: Json::empty_object(),
            unique: None,
            trace_context: None,
        }
    }
}

/// How a task run ended, as the host reports it to a backend.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskOutcome {
    /// The function returned a storable value.
    Successful {
        /// The return value as JSON.
        return_value: Json,
    },
    /// The function returned an error, panicked, or its return value could not be stored.
    Failed {
        /// What went wrong.
        error: TaskError,
    },
}

/// The parameters a backend is built with: its entry of `tasks.toml`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug, Default)]
pub struct BackendParams {
    /// The alias in the config (`default`, …).
    pub alias: String,
    /// The full backend name, e.g. `taskhost.backends.immediate.ImmediateBackend`.
    pub backend: String,
    /// Allowed queue names; empty = any.
    #[serde(default)]
    pub queues: Vec<String>,
    /// The backend's `options` table, as JSON.
    #[serde(default)]
    pub options: Map<String, Value>,
    /// Directory of the config file, for resolving relative paths in options.
    #[serde(default)]
    pub config_dir: Option<String>,
}

/// A message from a backend's `check()`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct CheckMessage {
    /// `error` or `warning`.
    pub level: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    #[serde(default)]
    pub hint: Option<String>,
}

/// A worker asks a queue store for tasks.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct ClaimRequest {
    /// The claiming worker's id (≤ 64 characters).
    pub worker_id: String,
    /// Queues to take from; `None` = every queue.
    #[serde(default)]
    pub queues: Option<Vec<String>>,
    /// Queues to skip (only with `queues = None`).
    #[serde(default)]
    pub exclude_queues: Vec<String>,
    /// At most this many tasks.
    pub limit: u32,
    /// How long the lease on each claimed task lasts, in seconds.
    pub lease_secs: f64,
    /// How many of the claimed tasks (the first ones, in claim order) the worker starts at
    /// once: its free slots. The others wait in the worker for a slot (prefetched); a store
    /// that tracks starts counts a rescue only for a task whose start it knows of (the first
    /// `start_now`, and those reported through [`REPORT_STARTED`]). `None` (a 2.0 host): every
    /// claimed task counts as started. Added in 2.1.0 (the record's `ext`); a 2.0 store
    /// ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_now: Option<u32>,
}

/// The queue-store operation ([`crate::Backend::call_ext`]) by which a worker tells the store
/// that claimed tasks it had prefetched have started, before running them: the request is a
/// [`LeaseRequest`] as JSON (`lease_secs` unused), the answer `{"reported": n}`. A worker sends
/// it only for tasks whose [`ClaimedTask::report_start`] is set. Added in 2.1.0.
pub const REPORT_STARTED: &str = "taskhost.queue_store.report_started";

/// A task handed to a worker, with the lease that fences its writes.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct ClaimedTask {
    /// The result, already RUNNING with this worker's id appended.
    pub result: TaskResultData,
    /// The fencing token of this claim: writes that carry an older token change nothing.
    pub lease_token: i64,
    /// Attempts allowed in all (from the task or the backend default).
    pub max_attempts: u32,
    /// The worker reports this task's start ([`REPORT_STARTED`]) and waits for the answer
    /// before running it, if it was prefetched (not among the claim's `start_now`): the store
    /// once rescued it without knowing whether it had started, and must know from now on (a
    /// task that kills its worker is then counted toward `max_rescues`). Added in 2.1.0 (the
    /// record's `ext`); false from a 2.0 store.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report_start: bool,
}

/// A worker reports how a claimed task ended.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Completion {
    /// The result id.
    pub id: String,
    /// The worker that ran it.
    pub worker_id: String,
    /// The token from [`ClaimedTask::lease_token`].
    pub lease_token: i64,
    /// How it ended.
    pub outcome: TaskOutcome,
    /// For a failure that will be retried: when to run it again (status goes back to READY).
    #[serde(default)]
    pub retry_at: Option<DateTime<Utc>>,
    /// When the function actually started, if that was after the claim (a task prefetched by
    /// the worker waited for a slot): the store records it as `started_at` and
    /// `last_attempted_at`. `None` keeps the claim's times. Added in 1.2.0; older stores
    /// ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

/// What a queue store did with one [`Completion`].
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct CompletionAck {
    /// The result id.
    pub id: String,
    /// False when the lease was lost (the task was rescued or completed by someone else): the
    /// write changed nothing.
    pub applied: bool,
}

/// Leases a worker holds, for renewal or release.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct LeaseRequest {
    /// The worker holding the leases.
    pub worker_id: String,
    /// `(id, lease_token)` pairs.
    pub leases: Vec<(String, i64)>,
    /// New lease length in seconds (renewal only).
    #[serde(default)]
    pub lease_secs: f64,
}

/// Filters for listing stored results.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug, Default)]
pub struct ListRequest {
    /// Only this status.
    #[serde(default)]
    pub status: Option<TaskResultStatus>,
    /// Only this queue.
    #[serde(default)]
    pub queue_name: Option<String>,
    /// Only this task path.
    #[serde(default)]
    pub task_path: Option<String>,
    /// At most this many (newest first).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Depth of one queue in one status.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct QueueStats {
    /// The queue name.
    pub queue_name: String,
    /// The status counted.
    pub status: TaskResultStatus,
    /// How many results.
    pub count: u64,
    /// For READY: when the oldest ready task was enqueued.
    #[serde(default)]
    pub oldest_enqueued_at: Option<DateTime<Utc>>,
}

/// Which finished results to delete.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug, Default)]
pub struct PruneRequest {
    /// Delete results finished before this time.
    #[serde(default)]
    pub finished_before: Option<DateTime<Utc>>,
    /// For FAILED results, this cut-off instead (when set).
    #[serde(default)]
    pub failed_finished_before: Option<DateTime<Utc>>,
    /// Only these statuses (FAILED and/or SUCCESSFUL); empty = both.
    #[serde(default)]
    pub statuses: Vec<TaskResultStatus>,
    /// Only these queues; `None` = all.
    #[serde(default)]
    pub queues: Option<Vec<String>>,
    /// Count, do not delete.
    #[serde(default)]
    pub dry_run: bool,
    /// Delete (or, with `dry_run`, count) at most this many rows in this call; `None` = all.
    /// A caller works through a large store in batches by repeating the call until it
    /// returns fewer than `limit`.
    #[serde(default)]
    pub limit: Option<u64>,
}

/// A worker waits for new tasks.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct WaitRequest {
    /// Queues the worker takes from; `None` = every queue.
    #[serde(default)]
    pub queues: Option<Vec<String>>,
    /// Give up after this many seconds.
    pub timeout_secs: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> EnqueueRequest {
        EnqueueRequest {
            id: "0190c0de-0000-7000-8000-000000000000".into(),
            task: TaskDescription {
                path: "app::tasks::send".into(),
                priority: 10,
                queue_name: "default".into(),
                backend: "default".into(),
                run_after: Some(DateTime::from_timestamp(1_700_000_000, 0).unwrap()),
                takes_context: true,
                is_async: false,
                max_attempts: Some(3),
                timeout_secs: Some(2.5),
            },
            args: Json::encode(&(1, "two", ())).unwrap(),
            kwargs: Json::empty_object(),
            unique: None,
            trace_context: None,
        }
    }

    #[test]
    fn a_fresh_result_is_ready_with_the_requests_values() {
        let result = TaskResultData::ready(request(), "fast");
        assert_eq!(result.status, TaskResultStatus::Ready);
        assert_eq!(result.backend, "fast");
        assert_eq!(result.args.as_str(), r#"[1,"two",null]"#);
        assert!(result.enqueued_at.is_none() && result.worker_ids.is_empty());
    }

    #[test]
    fn results_serialize_with_their_values_embedded() {
        let mut result = TaskResultData::ready(request(), "default");
        result.return_value = Some(Json::encode(&42).unwrap());
        let text = serde_json::to_string(&result).unwrap();
        assert!(text.contains(r#""args":[1,"two",null]"#), "{text}");
        assert!(text.contains(r#""return_value":42"#), "{text}");
        let back: TaskResultData = serde_json::from_str(&text).unwrap();
        assert_eq!(back, result);
    }

    #[test]
    fn statuses_read_back_from_their_stored_names() {
        for status in TaskResultStatus::ALL {
            assert_eq!(TaskResultStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TaskResultStatus::parse("ready"), None);
    }
}
