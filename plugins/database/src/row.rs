//! A stored row as both databases read it, and its conversion to the SDK's types.
//!
//! Each store reads its columns into a [`Row`], the JSON columns as text. A task's arguments
//! and return value stay text on the way out ([`Json::from_stored`]): they are only checked,
//! without building a value, to be JSON of the right shape (an array, an object). The lists
//! (worker ids, errors) are decoded. A bad value becomes [`Error::Corrupt`] naming the row id
//! and the column — never a panic.

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::cmp::Ordering;
use std::fmt;
use taskhost_plugin_api::control::cancellation_error;
use taskhost_plugin_api::{
    ClaimedTask, Completion, EnqueueRequest, Json, TaskDescription, TaskError, TaskOutcome,
    TaskResultData, TaskResultStatus, Text,
};

/// The exception class path recorded when a worker's lease expires.
pub const WORKER_LOST: &str = "taskhost::WorkerLost";

/// Decode the JSON text of `id`'s `column` as `T`, naming the row and column on failure.
fn decode<T: DeserializeOwned>(text: &str, id: &str, column: &'static str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(id, column, e))
}

/// The JSON text of `id`'s `column` as a [`Json`], once checked to be one value `T` accepts
/// (without building it: `T` ignores what it reads).
fn checked<T: DeserializeOwned>(text: String, id: &str, column: &'static str) -> Result<Json> {
    decode::<T>(&text, id, column)?;
    Ok(Json::from_stored(text))
}

/// Any JSON object, its entries skipped: what a `kwargs` column must hold (`serde` has no
/// ready-made type for that, as `Vec<IgnoredAny>` is for `args`' array).
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = AnyObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// The columns of `taskhost_tasks` that make up a result (the lease columns are left out).
pub struct Row {
    /// `id`, as a hyphenated lowercase UUID.
    pub id: String,
    /// `task_path`.
    pub task_path: String,
    /// `queue_name`.
    pub queue_name: String,
    /// `priority`.
    pub priority: i32,
    /// `backend_name`: the alias.
    pub backend_name: String,
    /// `status`, as stored.
    pub status: String,
    /// `args` (a JSON array).
    pub args: String,
    /// `kwargs` (a JSON object).
    pub kwargs: String,
    /// `takes_context`.
    pub takes_context: bool,
    /// `is_async`.
    pub is_async: bool,
    /// `run_after`.
    pub run_after: Option<DateTime<Utc>>,
    /// `enqueued_at`.
    pub enqueued_at: DateTime<Utc>,
    /// `started_at`.
    pub started_at: Option<DateTime<Utc>>,
    /// `finished_at`.
    pub finished_at: Option<DateTime<Utc>>,
    /// `last_attempted_at`.
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// `worker_ids` (a JSON array of strings).
    pub worker_ids: String,
    /// `errors` (a JSON array of TaskError).
    pub errors: String,
    /// `return_value` (any JSON value).
    pub return_value: Option<String>,
    /// `max_attempts` set on the task, if any.
    pub max_attempts: Option<i64>,
    /// `timeout_secs`.
    pub timeout_secs: Option<f64>,
    /// `lease_token`: the fencing token of the latest claim.
    pub lease_token: i64,
    /// `rescues`: times the task was rescued from a lost worker.
    pub rescues: i64,
    /// `retried_attempts`: attempts made before the latest retry (`taskhost.retry`).
    pub retried_attempts: i64,
    /// `trace_context`: the enqueue's W3C trace context, if it was traced.
    pub trace_context: Option<String>,
}

impl Row {
    /// The row as a [`TaskResultData`].
    pub fn into_result(self) -> Result<TaskResultData> {
        let id = self.id;
        let status = TaskResultStatus::parse(&self.status)
            .ok_or_else(|| corrupt(&id, "status", format!("unknown status '{}'", self.status)))?;
        let max_attempts = match self.max_attempts {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|e| corrupt(&id, "max_attempts", e))?),
        };
        // A `Vec` of nothing: items are read and dropped, no memory is taken.
        let args = checked::<Vec<IgnoredAny>>(self.args, &id, "args")?;
        let kwargs = checked::<AnyObject>(self.kwargs, &id, "kwargs")?;
        let worker_ids: Vec<Text> = decode(&self.worker_ids, &id, "worker_ids")?;
        let errors: Vec<TaskError> = decode(&self.errors, &id, "errors")?;
        let return_value = match self.return_value {
            None => None,
            Some(text) => Some(checked::<IgnoredAny>(text, &id, "return_value")?),
        };
        Ok(TaskResultData {
            task: TaskDescription {
                path: self.task_path.into(),
                priority: self.priority,
                queue_name: self.queue_name.into(),
                backend: self.backend_name.clone().into(),
                run_after: self.run_after,
                takes_context: self.takes_context,
                is_async: self.is_async,
                max_attempts,
                timeout_secs: self.timeout_secs,
            },
            id: id.into(),
            status,
            enqueued_at: Some(self.enqueued_at),
            started_at: self.started_at,
            finished_at: self.finished_at,
            last_attempted_at: self.last_attempted_at,
            args,
            kwargs,
            backend: self.backend_name.into(),
            errors,
            worker_ids,
            return_value,
            trace_context: self.trace_context.map(Into::into),
        })
    }

    /// The row as a [`ClaimedTask`]; `default_max_attempts` applies when the task sets none.
    /// Attempts lost with their worker (rescues) do not use up the task's attempts: the worker
    /// is told `max_attempts + rescues`, so it retries a failure exactly as often as it would
    /// have without the lost attempts (the attempt count itself stays Django's: one worker id
    /// per attempt started). The attempts made before a retry (`taskhost.retry`) do not count
    /// either: a retried task has its whole budget again.
    pub fn into_claimed(self, default_max_attempts: u32) -> Result<ClaimedTask> {
        let lease_token = self.lease_token;
        let rescues = u32::try_from(self.rescues).unwrap_or(0);
        let retried = u32::try_from(self.retried_attempts).unwrap_or(0);
        let result = self.into_result()?;
        let max_attempts = result
            .task
            .max_attempts
            .unwrap_or(default_max_attempts)
            .saturating_add(rescues)
            .saturating_add(retried);
        Ok(ClaimedTask {
            result,
            lease_token,
            max_attempts,
            report_start: false,
        })
    }
}

/// Claim order: priority (high first), then `run_after` (none = last: Django's far-future
/// sentinel), then `enqueued_at`, then id. Stores sort claimed rows with it, because
/// `UPDATE … RETURNING` does not keep the order of the inner `SELECT`.
pub fn claim_order(a: &ClaimedTask, b: &ClaimedTask) -> Ordering {
    let (a, b) = (&a.result, &b.result);
    let run_after = |r: &TaskResultData| r.task.run_after.unwrap_or(DateTime::<Utc>::MAX_UTC);
    b.task
        .priority
        .cmp(&a.task.priority)
        .then_with(|| run_after(a).cmp(&run_after(b)))
        .then_with(|| a.enqueued_at.cmp(&b.enqueued_at))
        .then_with(|| a.id.cmp(&b.id))
}

/// A task to insert: the request, its parsed id and its enqueue time.
pub struct NewTask {
    /// The id (the request's, canonicalised).
    pub id: uuid::Uuid,
    /// What the host asked for.
    pub request: EnqueueRequest,
    /// When it was enqueued (host clock).
    pub enqueued_at: DateTime<Utc>,
}

impl NewTask {
    /// The READY result this task is stored as.
    pub fn into_ready_result(self, alias: &str) -> TaskResultData {
        let mut request = self.request;
        // Canonical id and alias; the host's already are, so nothing is reallocated then.
        let mut buffer = uuid::Uuid::encode_buffer();
        let id: &str = self.id.hyphenated().encode_lower(&mut buffer);
        if request.id != id {
            request.id = id.into();
        }
        if request.task.backend != alias {
            request.task.backend = alias.into();
        }
        TaskResultData {
            enqueued_at: Some(self.enqueued_at),
            ..TaskResultData::ready(request, alias)
        }
    }
}

/// A running task whose lease expired, as read by a rescue.
pub struct Expired {
    /// The row id.
    pub id: String,
    /// The worker that held the lease.
    pub owner: String,
    /// When the lease ran out.
    pub expired_at: DateTime<Utc>,
    /// Attempts made so far (including the lost one).
    pub attempts: i64,
    /// Rescues before this one.
    pub rescues: i64,
    /// Rescues allowed (the backend's `max_rescues`).
    pub max_rescues: i64,
    /// The fencing token of the lost claim.
    pub lease_token: i64,
}

/// The most a rescued task's `run_after` is put past the rescue (µs): see [`Expired::run_after`].
pub const REQUEUE_SPREAD_MICROS: i64 = 1_000_000;

impl Expired {
    /// When a task the rescue makes READY again may run: at the rescue plus an offset in
    /// `[0, REQUEUE_SPREAD_MICROS)` taken from its id and rescue count. The tasks a dead worker
    /// held are all rescued at once; were they READY at once, a worker would claim them
    /// together again, and a task beside a poison task would die with it every time and
    /// share its fate at `max_rescues`. Spread out, they are claimed one by one.
    pub fn run_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let seed = uuid::Uuid::try_parse(&self.id).map_or(0, |id| id.as_u128() as u64);
        let mixed = (seed ^ (self.rescues as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let offset = (mixed >> 11) % REQUEUE_SPREAD_MICROS as u64;
        now + chrono::Duration::microseconds(offset as i64)
    }

    /// Whether the task is READY again rather than FAILED: a lost worker is not the task's
    /// failure, so only the `max_rescues`-th rescue (a task that keeps taking its workers
    /// down) ends it. `max_attempts` plays no part here.
    pub fn requeues(&self) -> bool {
        self.rescues + 1 < self.max_rescues
    }

    /// The error recorded on the task.
    pub fn error(&self) -> TaskError {
        let rescue = self.rescues + 1;
        let outcome = if self.requeues() {
            "it is READY again"
        } else {
            "that is the limit (the backend's max_rescues), so it FAILED: if it keeps stopping \
             its workers (a crash, an abort, running out of memory), it is a poison task"
        };
        TaskError {
            exception_class_path: WORKER_LOST.into(),
            traceback: format!(
                "worker '{}' stopped renewing its lease, which expired at {}; the worker was \
                 probably stopped or lost its database connection. Attempt {} was lost; rescue \
                 {rescue} of {}: {outcome}.\n",
                self.owner,
                self.expired_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                self.attempts,
                self.max_rescues,
            )
            .into(),
        }
    }
}

/// The JSON text of the error a READY task is cancelled with.
pub fn cancelled_when_ready() -> Result<String> {
    to_json(&cancellation_error(
        "the task was cancelled while READY; it will not run.",
    ))
}

/// The JSON text of the error appended when a task asked to stop (`cancel_requested`) ended
/// an attempt that would have been retried: it ends FAILED instead.
pub fn cancelled_instead_of_retry() -> Result<String> {
    to_json(&cancellation_error(
        "the task was cancelled while RUNNING; its attempt failed and it is not retried.",
    ))
}

/// The JSON text of the error appended when the lease of a task asked to stop expired: it
/// ends FAILED instead of being rescued.
pub fn cancelled_instead_of_rescue() -> Result<String> {
    to_json(&cancellation_error(
        "the task was cancelled while RUNNING and its worker was lost; it is not rescued.",
    ))
}

/// The JSON text of the error a task asked to stop ends with when its worker hands it back
/// (a forced shutdown, or a prefetched task it no longer keeps): FAILED instead of READY.
pub fn cancelled_instead_of_release() -> Result<String> {
    to_json(&cancellation_error(
        "the task was cancelled while RUNNING and its worker handed it back; it will not run \
         again.",
    ))
}

/// Microseconds since the epoch as a time, or [`Error::Corrupt`].
pub fn from_micros(id: &str, column: &'static str, micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(id, column, format!("{micros} µs is out of range")))
}

/// [`Error::Corrupt`] for `id`'s `column`.
pub fn corrupt(id: &str, column: &'static str, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        id: id.to_string(),
        column,
        detail: detail.to_string(),
    }
}

/// A result id as stored: a UUID in canonical form, or `None` if `id` is not a UUID.
pub fn parse_id(id: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::try_parse(id).ok()
}

/// The `errors` column written for a claimed row that cannot be read (it is marked FAILED, so
/// one bad row cannot block a queue).
pub fn corrupt_errors(message: &str) -> String {
    let error = TaskError {
        exception_class_path: "taskhost::CorruptRow".into(),
        traceback: format!("taskhost::CorruptRow: {message}\n").into(),
    };
    serde_json::to_string(&[error]).unwrap_or_else(|_| "[]".into())
}

/// `value` as JSON text.
pub fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Other(format!("could not encode JSON: {e}")))
}

/// What a completion writes: the new status, the return value and the error to append (JSON
/// text). A failure with `retry_at` goes back to READY.
pub fn outcome_columns(c: &Completion) -> Result<(&'static str, Option<&str>, Option<String>)> {
    Ok(match &c.outcome {
        TaskOutcome::Successful { return_value } => {
            ("SUCCESSFUL", Some(return_value.as_str()), None)
        }
        TaskOutcome::Failed { error } => {
            let status = if c.retry_at.is_some() {
                "READY"
            } else {
                "FAILED"
            };
            (status, None, Some(to_json(error)?))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    /// The shape checks refuse what decoding into values refused (before 2.0 the columns were
    /// decoded into `Vec<Value>` and `Map<String, Value>`), with the same messages, and take
    /// what it took, text unchanged.
    #[test]
    fn arguments_are_checked_as_decoding_them_would() {
        let texts = [
            "[]",
            " [1, {\"a\": [null]}] ",
            "{}",
            "{\"k\": [1, 2], \"\": {}}",
            "not json",
            "[1,",
            "[1] 2",
            "null",
            "\"text\"",
            "7",
            "{\"a\": 1,}",
            "",
        ];
        let error = |e: Error| match e {
            Error::Corrupt { detail, .. } => detail,
            other => panic!("not Corrupt: {other:?}"),
        };
        for text in texts {
            let args = checked::<Vec<IgnoredAny>>(text.into(), "id", "args");
            let decoded = serde_json::from_str::<Vec<Value>>(text);
            match (args, decoded) {
                (Ok(json), Ok(_)) => assert_eq!(json.as_str(), text),
                (Err(e), Err(d)) => assert_eq!(error(e), d.to_string(), "{text}"),
                (args, decoded) => panic!("{text}: {args:?} but {decoded:?}"),
            }
            let kwargs = checked::<AnyObject>(text.into(), "id", "kwargs");
            let decoded = serde_json::from_str::<Map<String, Value>>(text);
            match (kwargs, decoded) {
                (Ok(json), Ok(_)) => assert_eq!(json.as_str(), text),
                (Err(e), Err(d)) => assert_eq!(error(e), d.to_string(), "{text}"),
                (kwargs, decoded) => panic!("{text}: {kwargs:?} but {decoded:?}"),
            }
        }
    }
}
