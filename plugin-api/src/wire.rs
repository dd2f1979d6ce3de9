//! The JSON payloads that cross the ABI.
//!
//! These types only describe data; they evolve by adding fields with `#[serde(default)]`, so a
//! plugin built against an older 1.x reads what a newer host sends, and the reverse.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

mod decode;
mod delta;
mod encode;
pub mod timestamp;

pub use delta::{ResultDelta, RunEnqueued};
pub use encode::enqueue_request_json;

/// The status of a task result — exactly Django's four.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Debug)]
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
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct TaskError {
    /// The error's type path, e.g. `std::io::Error`, or `panic` for a panic.
    pub exception_class_path: String,
    /// The rendered error: cause chain and backtrace, ending with `"<type>: <message>\n"`.
    pub traceback: String,
}

/// The task half of a result: which function, with which options.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct TaskDescription {
    /// The task's path: `module_path!()` + `::` + function name.
    pub path: String,
    /// Priority, -100 (lowest) to 100 (highest).
    pub priority: i32,
    /// The queue the task goes to.
    pub queue_name: String,
    /// The backend alias it was enqueued on.
    pub backend: String,
    /// Earliest time to run it, if deferred.
    #[serde(default, with = "timestamp")]
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

/// One enqueued run of a task, as stored by a backend.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct TaskResultData {
    /// The result id (a UUID string assigned by the host).
    pub id: String,
    /// What was enqueued.
    pub task: TaskDescription,
    /// Where the run stands.
    pub status: TaskResultStatus,
    /// When it was stored.
    #[serde(default, with = "timestamp")]
    pub enqueued_at: Option<DateTime<Utc>>,
    /// When the latest attempt started.
    #[serde(default, with = "timestamp")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished (FAILED or SUCCESSFUL).
    #[serde(default, with = "timestamp")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When an attempt was last made.
    #[serde(default, with = "timestamp")]
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// Positional arguments, as JSON.
    #[serde(default)]
    pub args: Vec<Value>,
    /// Keyword arguments, as JSON.
    #[serde(default)]
    pub kwargs: Map<String, Value>,
    /// The backend alias.
    pub backend: String,
    /// Errors of failed attempts, oldest first.
    #[serde(default)]
    pub errors: Vec<TaskError>,
    /// One worker id per attempt, appended when the attempt starts.
    #[serde(default)]
    pub worker_ids: Vec<String>,
    /// The return value, once SUCCESSFUL.
    #[serde(default)]
    pub return_value: Option<Value>,
}

impl TaskResultData {
    /// The READY result a backend first makes of an enqueue request, for backend `alias`: the
    /// request's id, task and arguments, every timestamp unset, no errors, no worker ids
    /// (Django's fresh `TaskResult`). Added in 1.1.0.
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
            backend: alias.to_string(),
            errors: Vec::new(),
            worker_ids: Vec::new(),
            return_value: None,
        }
    }
}

/// What the host asks a backend to enqueue.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct EnqueueRequest {
    /// The id the result must have (assigned by the host, so transaction scopes know it early).
    pub id: String,
    /// The task and its options, already validated by the host.
    pub task: TaskDescription,
    /// Positional arguments (JSON-storable, checked by the host).
    pub args: Vec<Value>,
    /// Keyword arguments.
    #[serde(default)]
    pub kwargs: Map<String, Value>,
}

/// How a task run ended, as the host reports it to a backend.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskOutcome {
    /// The function returned a storable value.
    Successful {
        /// The return value as JSON.
        return_value: Value,
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
}

/// A task handed to a worker, with the lease that fences its writes.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct ClaimedTask {
    /// The result, already RUNNING with this worker's id appended.
    pub result: TaskResultData,
    /// The fencing token of this claim: writes that carry an older token change nothing.
    pub lease_token: i64,
    /// Attempts allowed in all (from the task or the backend default).
    pub max_attempts: u32,
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
    #[serde(default, with = "timestamp")]
    pub retry_at: Option<DateTime<Utc>>,
    /// When the function actually started, if that was after the claim (a task prefetched by
    /// the worker waited for a slot): the store records it as `started_at` and
    /// `last_attempted_at`. `None` keeps the claim's times. Added in 1.2.0; older stores
    /// ignore it.
    #[serde(default, with = "timestamp", skip_serializing_if = "Option::is_none")]
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
    #[serde(default, with = "timestamp")]
    pub oldest_enqueued_at: Option<DateTime<Utc>>,
}

/// Which finished results to delete.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug, Default)]
pub struct PruneRequest {
    /// Delete results finished before this time.
    #[serde(default, with = "timestamp")]
    pub finished_before: Option<DateTime<Utc>>,
    /// For FAILED results, this cut-off instead (when set).
    #[serde(default, with = "timestamp")]
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
    /// returns fewer than `limit`. Added later with a default: an older plugin that ignores
    /// it deletes everything in the first call, which ends such a loop just the same.
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
    //! Decoding what crosses the ABI never panics, whatever the bytes: arbitrary strings, and
    //! valid payloads with bytes replaced, inserted or removed.
    use super::*;
    use proptest::prelude::*;

    fn description() -> TaskDescription {
        TaskDescription {
            path: "app::tasks::send".into(),
            priority: 10,
            queue_name: "default".into(),
            backend: "default".into(),
            run_after: Some(DateTime::from_timestamp(1_700_000_000, 0).unwrap()),
            takes_context: true,
            is_async: false,
            max_attempts: Some(3),
            timeout_secs: Some(2.5),
        }
    }

    fn request() -> EnqueueRequest {
        let mut kwargs = Map::new();
        kwargs.insert("to".into(), Value::from("a@example.com"));
        EnqueueRequest {
            id: "0190c0de-0000-7000-8000-000000000000".into(),
            task: description(),
            args: vec![Value::from(1), Value::from("two"), Value::Null],
            kwargs,
        }
    }

    /// One valid JSON payload of each decoded type.
    fn valid_payloads() -> Vec<String> {
        let mut result = TaskResultData::ready(request(), "default");
        result.errors.push(TaskError {
            exception_class_path: "panic".into(),
            traceback: "panic: boom\n".into(),
        });
        result.worker_ids.push("w1".into());
        result.return_value = Some(Value::from(42));
        let claim = ClaimRequest {
            worker_id: "w1".into(),
            queues: Some(vec!["default".into()]),
            exclude_queues: vec![],
            limit: 5,
            lease_secs: 30.0,
        };
        let completions = [
            Completion {
                id: "x".into(),
                worker_id: "w1".into(),
                lease_token: 7,
                outcome: TaskOutcome::Successful {
                    return_value: Value::from("ok"),
                },
                retry_at: None,
                started_at: None,
            },
            Completion {
                id: "y".into(),
                worker_id: "w1".into(),
                lease_token: -1,
                outcome: TaskOutcome::Failed {
                    error: TaskError {
                        exception_class_path: "std::io::Error".into(),
                        traceback: "std::io::Error: no\n".into(),
                    },
                },
                retry_at: Some(DateTime::from_timestamp(1_700_000_100, 0).unwrap()),
                started_at: Some(DateTime::from_timestamp(1_700_000_050, 0).unwrap()),
            },
        ];
        let mut out = vec![
            serde_json::to_string(&result).unwrap(),
            serde_json::to_string(&request()).unwrap(),
            serde_json::to_string(&claim).unwrap(),
        ];
        out.extend(
            completions
                .iter()
                .map(|c| serde_json::to_string(c).unwrap()),
        );
        out
    }

    /// Decodes `text` as every ABI type; only `Ok`/`Err` may come back (a panic fails the test).
    fn decode_all(text: &str) {
        let _ = serde_json::from_str::<TaskResultData>(text);
        let _ = TaskResultData::from_json(text);
        let _ = serde_json::from_str::<EnqueueRequest>(text);
        let _ = EnqueueRequest::from_json(text);
        let _ = serde_json::from_str::<Vec<EnqueueRequest>>(text);
        let _ = serde_json::from_str::<ClaimRequest>(text);
        let _ = serde_json::from_str::<Completion>(text);
        let _ = serde_json::from_str::<Vec<Completion>>(text);
    }

    #[test]
    fn valid_payloads_round_trip() {
        let payloads = valid_payloads();
        let result: TaskResultData = serde_json::from_str(&payloads[0]).unwrap();
        assert_eq!(result.task, description());
        let req: EnqueueRequest = serde_json::from_str(&payloads[1]).unwrap();
        assert_eq!(req, request());
        let claim: ClaimRequest = serde_json::from_str(&payloads[2]).unwrap();
        assert_eq!(claim.limit, 5);
        for p in &payloads[3..] {
            let c: Completion = serde_json::from_str(p).unwrap();
            assert_eq!(serde_json::to_string(&c).unwrap(), *p);
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for open in ["[", "{\"a\":", "{\"args\":["] {
            let text = open.repeat(100_000);
            decode_all(&text);
            assert!(serde_json::from_str::<EnqueueRequest>(&text).is_err());
        }
    }

    /// A byte-level edit of a valid payload.
    #[derive(Debug, Clone)]
    enum Edit {
        Replace(usize, u8),
        Insert(usize, u8),
        Remove(usize),
        Truncate(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let byte = prop_oneof![
            prop::sample::select(b"{}[]\",:0123456789-.eE+ntfalsrue\\ \x00\x7f".to_vec()),
            any::<u8>(),
        ];
        prop_oneof![
            (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
            (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
            any::<usize>().prop_map(Edit::Remove),
            any::<usize>().prop_map(Edit::Truncate),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
        let len = bytes.len();
        match *edit {
            Edit::Replace(i, b) if len > 0 => bytes[i % len] = b,
            Edit::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Edit::Remove(i) if len > 0 => {
                bytes.remove(i % len);
            }
            Edit::Truncate(i) => bytes.truncate(i % (len + 1)),
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            decode_all(&text);
        }

        #[test]
        fn json_like_strings_never_panic(
            text in "([{}\\[\\]\",:0-9eE.+ -]|true|false|null|\"id\"|\"task\"|\"status\"|\"SUCCESSFUL\"|\"FAILED\"|\"args\"|\"kwargs\"){0,80}"
        ) {
            decode_all(&text);
        }

        #[test]
        fn mutated_valid_payloads_never_panic(
            which in 0usize..5,
            edits in prop::collection::vec(edit(), 1..8),
        ) {
            let mut bytes = valid_payloads().swap_remove(which).into_bytes();
            for e in &edits {
                apply(&mut bytes, e);
            }
            // Not necessarily UTF-8 any more: decode from bytes, and from the lossy text.
            let _ = serde_json::from_slice::<TaskResultData>(&bytes);
            let _ = serde_json::from_slice::<EnqueueRequest>(&bytes);
            let _ = serde_json::from_slice::<ClaimRequest>(&bytes);
            let _ = serde_json::from_slice::<Completion>(&bytes);
            decode_all(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn huge_and_odd_numbers_never_panic(
            n in prop_oneof![
                Just("1e999".to_string()),
                Just("-1e999".to_string()),
                Just("18446744073709551616".to_string()),
                Just("-9223372036854775809".to_string()),
                Just("NaN".to_string()),
                any::<f64>().prop_map(|f| format!("{f:e}")),
                any::<i128>().prop_map(|i| i.to_string()),
            ],
        ) {
            decode_all(&format!(
                "{{\"worker_id\":\"w\",\"limit\":{n},\"lease_secs\":{n},\"id\":\"x\",\"lease_token\":{n},\
                 \"outcome\":{{\"status\":\"SUCCESSFUL\",\"return_value\":{n}}},\"retry_at\":null}}"
            ));
        }
    }
}
