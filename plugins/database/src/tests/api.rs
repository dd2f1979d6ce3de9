//! Typed calls through the ABI methods (JSON in, JSON out), as the host makes them.

use crate::DatabaseBackend;
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};
use taskhost_plugin_api::{
    abi_stable::std_types::RStr,
    wire::{
        ClaimRequest, ClaimedTask, Completion, CompletionAck, EnqueueRequest, LeaseRequest,
        TaskDescription, TaskError, TaskOutcome, TaskResultData,
    },
    Backend, PluginError, PluginResult,
};

fn decode<T: DeserializeOwned>(
    out: PluginResult<taskhost_plugin_api::abi_stable::std_types::RString>,
) -> Result<T, PluginError> {
    out.into_result()
        .map(|json| serde_json::from_str(json.as_str()).unwrap())
}

fn encode(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap()
}

/// A task request with a fresh UUID v7 id.
pub fn task(
    path: &str,
    queue: &str,
    priority: i32,
    run_after: Option<DateTime<Utc>>,
) -> EnqueueRequest {
    EnqueueRequest {
        id: uuid::Uuid::now_v7().to_string(),
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
        args: vec![json!(1), json!("two")],
        kwargs: json!({"three": 3.5}).as_object().unwrap().clone(),
    }
}

/// Enqueue one plain task on `queue`.
pub fn enqueue(b: &DatabaseBackend, queue: &str) -> TaskResultData {
    enqueue_request(b, task("app::tasks::job", queue, 0, None))
}

/// Enqueue `request`.
pub fn enqueue_request(b: &DatabaseBackend, request: EnqueueRequest) -> TaskResultData {
    decode(b.enqueue(RStr::from_str(&encode(&request)))).unwrap()
}

/// Enqueue many.
pub fn enqueue_many(
    b: &DatabaseBackend,
    requests: &[EnqueueRequest],
) -> Result<Vec<TaskResultData>, PluginError> {
    decode(b.enqueue_many(RStr::from_str(&encode(&requests))))
}

/// `get_result`.
pub fn get(b: &DatabaseBackend, id: &str) -> Result<TaskResultData, PluginError> {
    decode(b.get_result(RStr::from_str(id)))
}

/// A claim request.
pub fn claim_request(worker: &str, queues: Option<&[&str]>, limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.into(),
        queues: queues.map(|qs| qs.iter().map(|q| q.to_string()).collect()),
        exclude_queues: Vec::new(),
        limit,
        lease_secs: 10.0,
    }
}

/// Claim with a request.
pub fn claim_with(b: &DatabaseBackend, request: &ClaimRequest) -> Vec<ClaimedTask> {
    decode(b.claim(RStr::from_str(&encode(request)))).unwrap()
}

/// Claim up to `limit` tasks from every queue for `worker` (10 s leases).
pub fn claim(b: &DatabaseBackend, worker: &str, limit: u32) -> Vec<ClaimedTask> {
    claim_with(b, &claim_request(worker, None, limit))
}

/// Ids of claimed tasks, in order.
pub fn claimed_ids(claimed: &[ClaimedTask]) -> Vec<String> {
    claimed.iter().map(|c| c.result.id.clone()).collect()
}

/// A successful completion of `task`.
pub fn success(task: &ClaimedTask, value: Value) -> Completion {
    Completion {
        id: task.result.id.clone(),
        worker_id: task.result.worker_ids.last().cloned().unwrap_or_default(),
        lease_token: task.lease_token,
        outcome: TaskOutcome::Successful {
            return_value: value,
        },
        retry_at: None,
        started_at: None,
    }
}

/// A failed completion of `task`, retried at `retry_at` if given.
pub fn failure(task: &ClaimedTask, retry_at: Option<DateTime<Utc>>) -> Completion {
    Completion {
        id: task.result.id.clone(),
        worker_id: task.result.worker_ids.last().cloned().unwrap_or_default(),
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
    decode(b.complete(RStr::from_str(&encode(&completions)))).unwrap()
}

/// The lease of `task`, held by `worker`.
pub fn lease(worker: &str, tasks: &[&ClaimedTask], lease_secs: f64) -> LeaseRequest {
    LeaseRequest {
        worker_id: worker.into(),
        leases: tasks
            .iter()
            .map(|t| (t.result.id.clone(), t.lease_token))
            .collect(),
        lease_secs,
    }
}

/// `renew_leases`: the ids whose lease was lost.
pub fn renew(b: &DatabaseBackend, request: &LeaseRequest) -> Vec<String> {
    decode(b.renew_leases(RStr::from_str(&encode(request)))).unwrap()
}

/// `release`: how many were handed back.
pub fn release(b: &DatabaseBackend, request: &LeaseRequest) -> u64 {
    decode(b.release(RStr::from_str(&encode(request)))).unwrap()
}

/// An extension operation.
pub fn ext<T: DeserializeOwned>(
    b: &DatabaseBackend,
    operation: &str,
    request: Value,
) -> Result<T, PluginError> {
    decode(b.call_ext(
        RStr::from_str(operation),
        RStr::from_str(&request.to_string()),
    ))
}
