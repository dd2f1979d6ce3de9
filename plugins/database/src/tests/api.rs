//! Typed calls of the [`Backend`] methods, as the host makes them, and how results compare.

use super::harness::Kind;
use crate::DatabaseBackend;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use taskhost_plugin_api::{
    Backend, ClaimRequest, ClaimedTask, Completion, CompletionAck, EnqueueRequest, Json,
    LeaseRequest, ListRequest, PluginError, QueueStats, TaskDescription, TaskError, TaskOutcome,
    TaskResultData, WaitRequest,
};

/// `value` as a task's JSON text.
pub fn json_of(value: &Value) -> Json {
    Json::encode(value).unwrap()
}

/// A task's JSON text as a value.
pub fn value_of(json: &Json) -> Value {
    json.parse().unwrap()
}

/// A task request with a fresh UUID v7 id.
pub fn task(
    path: &str,
    queue: &str,
    priority: i32,
    run_after: Option<DateTime<Utc>>,
) -> EnqueueRequest {
    EnqueueRequest {
        id: uuid::Uuid::now_v7().to_string().into(),
        task: TaskDescription {
            path: path.into(),
            priority,
            queue_name: queue.into(),
            backend: "default".into(),
            run_after,
            takes_context: false,
            is_async: false,
            max_attempts: None,
            timeout_secs: None,
        },
        args: json_of(&json!([1, "two"])),
        kwargs: json_of(&json!({"three": 3.5})),
        unique: None,
        trace_context: None,
    }
}

/// Enqueue one plain task on `queue`.
pub fn enqueue(b: &DatabaseBackend, queue: &str) -> TaskResultData {
    enqueue_request(b, task("app::tasks::job", queue, 0, None))
}

/// Enqueue `request`.
pub fn enqueue_request(b: &DatabaseBackend, request: EnqueueRequest) -> TaskResultData {
    b.enqueue(request).unwrap()
}

/// Enqueue many.
pub fn enqueue_many(
    b: &DatabaseBackend,
    requests: &[EnqueueRequest],
) -> Result<Vec<TaskResultData>, PluginError> {
    b.enqueue_many(requests.to_vec())
}

/// `get_result`.
pub fn get(b: &DatabaseBackend, id: &str) -> Result<TaskResultData, PluginError> {
    b.get_result(id)
}

/// `results`: every result of the backend's alias, oldest first.
pub fn all(b: &DatabaseBackend) -> Vec<TaskResultData> {
    b.results().unwrap()
}

/// A claim request.
pub fn claim_request(worker: &str, queues: Option<&[&str]>, limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.into(),
        queues: queues.map(|qs| qs.iter().map(|q| q.to_string()).collect()),
        exclude_queues: Vec::new(),
        limit,
        lease_secs: 10.0,
        start_now: None,
    }
}

/// Claim with a request.
pub fn claim_with(b: &DatabaseBackend, request: &ClaimRequest) -> Vec<ClaimedTask> {
    b.claim(request.clone()).unwrap()
}

/// Claim up to `limit` tasks from every queue for `worker` (10 s leases).
pub fn claim(b: &DatabaseBackend, worker: &str, limit: u32) -> Vec<ClaimedTask> {
    claim_with(b, &claim_request(worker, None, limit))
}

/// Ids of claimed tasks, in order.
pub fn claimed_ids(claimed: &[ClaimedTask]) -> Vec<String> {
    claimed.iter().map(|c| c.result.id.to_string()).collect()
}

/// A successful completion of `task`.
pub fn success(task: &ClaimedTask, value: Value) -> Completion {
    Completion {
        id: task.result.id.to_string(),
        worker_id: task
            .result
            .worker_ids
            .last()
            .map(|w| w.to_string())
            .unwrap_or_default(),
        lease_token: task.lease_token,
        outcome: TaskOutcome::Successful {
            return_value: json_of(&value),
        },
        retry_at: None,
        started_at: None,
    }
}

/// A failed completion of `task`, retried at `retry_at` if given.
pub fn failure(task: &ClaimedTask, retry_at: Option<DateTime<Utc>>) -> Completion {
    Completion {
        id: task.result.id.to_string(),
        worker_id: task
            .result
            .worker_ids
            .last()
            .map(|w| w.to_string())
            .unwrap_or_default(),
        lease_token: task.lease_token,
        outcome: TaskOutcome::Failed {
            error: TaskError {
                exception_class_path: "app::Error".into(),
                traceback: "app::Error: boom\n".into(),
            },
        },
        retry_at,
        started_at: None,
    }
}

/// `complete`.
pub fn complete(b: &DatabaseBackend, completions: &[Completion]) -> Vec<CompletionAck> {
    b.complete(completions.to_vec()).unwrap()
}

/// The lease of `task`, held by `worker`.
pub fn lease(worker: &str, tasks: &[&ClaimedTask], lease_secs: f64) -> LeaseRequest {
    LeaseRequest {
        worker_id: worker.into(),
        leases: tasks
            .iter()
            .map(|t| (t.result.id.to_string(), t.lease_token))
            .collect(),
        lease_secs,
    }
}

/// `renew_leases`: the ids whose lease was lost.
pub fn renew(b: &DatabaseBackend, request: &LeaseRequest) -> Vec<String> {
    b.renew_leases(request.clone()).unwrap()
}

/// `release`: how many were handed back.
pub fn release(b: &DatabaseBackend, request: &LeaseRequest) -> u64 {
    b.release(request.clone()).unwrap()
}

/// `rescue`: how many expired leases were rescued.
pub fn rescue(b: &DatabaseBackend) -> u64 {
    b.rescue().unwrap()
}

/// `queue_stats`.
pub fn stats(b: &DatabaseBackend) -> Vec<QueueStats> {
    b.queue_stats().unwrap()
}

/// `list_results` with the filters of a JSON [`ListRequest`]: the ids, in order.
pub fn list(b: &DatabaseBackend, filters: Value) -> Vec<String> {
    let request: ListRequest = serde_json::from_value(filters).unwrap();
    let results = b.list_results(request).unwrap();
    results.into_iter().map(|r| r.id.into_string()).collect()
}

/// `prune` with a JSON [`taskhost_plugin_api::PruneRequest`].
pub fn prune(b: &DatabaseBackend, request: Value) -> Result<u64, PluginError> {
    b.prune(serde_json::from_value(request).unwrap())
}

/// `wait_for_tasks` on `queues` (`None`: all).
pub fn wait_for(
    b: &DatabaseBackend,
    queues: Option<&[&str]>,
    timeout_secs: f64,
) -> Result<bool, PluginError> {
    b.wait_for_tasks(WaitRequest {
        queues: queues.map(|qs| qs.iter().map(|q| q.to_string()).collect()),
        timeout_secs,
    })
}

/// A result with its JSON text (arguments, return value) replaced by the values it holds.
pub fn comparable(r: &TaskResultData) -> (TaskResultData, Value, Value, Option<Value>) {
    let values = (
        value_of(&r.args),
        value_of(&r.kwargs),
        r.return_value.as_ref().map(value_of),
    );
    let mut r = r.clone();
    (r.args, r.kwargs, r.return_value) = (Json::null(), Json::null(), None);
    (r, values.0, values.1, values.2)
}

/// Assert that `stored`, read back from the database, is `expected` as the host sent it or
/// enqueue returned it: the very same on SQLite, which hands back the text it stored; the same
/// values on PostgreSQL, whose `jsonb` renders the text in its own form (spaces, key order).
pub fn assert_stored(kind: Kind, stored: &TaskResultData, expected: &TaskResultData) {
    match kind {
        Kind::Sqlite => assert_eq!(stored, expected),
        Kind::Postgres => assert_eq!(comparable(stored), comparable(expected)),
    }
}
