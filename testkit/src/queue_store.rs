//! Queue stores (`supports_queue_store`): claiming marks tasks RUNNING for one worker, never
//! hands a task out twice, honours `run_after`, and completions are stored.

use crate::context::{describe, in_an_hour, on_threads, Check, Ctx, Verdict};
use crate::{pass, skip};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use taskhost_plugin_api::{
    ClaimRequest, ClaimedTask, Completion, Json, TaskDescription, TaskError, TaskOutcome,
    TaskResultStatus,
};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        name: "claim_marks_running",
        run: claim_marks_running,
    },
    Check {
        name: "claim_concurrent_exclusive",
        run: claim_concurrent_exclusive,
    },
    Check {
        name: "claim_respects_run_after",
        run: claim_respects_run_after,
    },
    Check {
        name: "complete_successful",
        run: complete_successful,
    },
    Check {
        name: "complete_failed",
        run: complete_failed,
    },
];

/// `Some(skip)` when the backend is not a queue store.
pub(crate) fn not_a_queue_store(ctx: &Ctx) -> Option<Verdict> {
    (!ctx.backend.supports_queue_store())
        .then(|| skip("backend does not declare supports_queue_store"))
}

/// A worker id unique to this run.
pub(crate) fn worker(ctx: &Ctx, name: &str) -> String {
    format!("cf-{name}-{}", ctx.nonce)
}

/// Claim up to `limit` tasks of `queue` for `worker_id`, checking each is RUNNING for it.
pub(crate) fn claim(
    ctx: &Ctx,
    worker_id: &str,
    queue: &str,
    limit: u32,
    lease_secs: f64,
) -> Result<Vec<ClaimedTask>, String> {
    let request = ClaimRequest {
        worker_id: worker_id.to_string(),
        queues: Some(vec![queue.to_string()]),
        exclude_queues: Vec::new(),
        limit,
        lease_secs,
        start_now: None,
    };
    let claimed = ctx
        .backend
        .claim(&request)
        .map_err(|e| describe("claim", &e))?;
    ensure!(
        claimed.len() <= limit as usize,
        "claim with limit {limit} returned {} tasks",
        claimed.len()
    );
    for c in &claimed {
        let r = &c.result;
        ensure!(
            r.task.queue_name == queue,
            "a claim of queue '{queue}' returned task {} of queue '{}'",
            r.id,
            r.task.queue_name
        );
        ensure!(
            r.status == TaskResultStatus::Running,
            "claimed task {} is {}, not RUNNING",
            r.id,
            r.status
        );
        ensure!(
            r.worker_ids.last().map(|w| w.as_str()) == Some(worker_id),
            "claimed task {} has worker ids {:?}; '{worker_id}' must be appended",
            r.id,
            r.worker_ids
        );
        ensure!(
            r.started_at.is_some() && r.finished_at.is_none(),
            "claimed task {} must have started_at set and finished_at unset",
            r.id
        );
        ensure!(
            c.max_attempts >= 1,
            "claimed task {} allows {} attempts",
            r.id,
            c.max_attempts
        );
    }
    Ok(claimed)
}

/// Enqueue `n` tasks of `task` (arguments `[i]`); their ids in order.
pub(crate) fn enqueue_n(
    ctx: &Ctx,
    task: &TaskDescription,
    n: usize,
) -> Result<Vec<String>, String> {
    (0..n)
        .map(|i| {
            ctx.enqueue(task, vec![json!(i)], Map::new())
                .map(|r| r.id().to_string())
        })
        .collect()
}

/// A successful completion of a claimed task.
pub(crate) fn success(c: &ClaimedTask, token: i64, return_value: Value) -> Completion {
    Completion {
        id: c.result.id.to_string(),
        worker_id: c
            .result
            .worker_ids
            .last()
            .cloned()
            .unwrap_or_default()
            .to_string(),
        lease_token: token,
        outcome: TaskOutcome::Successful {
            return_value: Json::encode(&return_value).unwrap_or_else(|_| Json::null()),
        },
        retry_at: None,
        started_at: None,
    }
}

/// Report one completion; whether it was applied.
pub(crate) fn complete(ctx: &Ctx, completion: Completion) -> Result<bool, String> {
    let id = completion.id.clone();
    let acks = ctx
        .backend
        .complete(vec![completion])
        .map_err(|e| describe("complete", &e))?;
    ensure!(
        acks.len() == 1 && acks[0].id == id,
        "complete of task {id} answered {acks:?} (expected one ack for it)"
    );
    Ok(acks[0].applied)
}

/// One task, claimed by `worker_id` from a queue of its own.
pub(crate) fn claim_one(ctx: &Ctx, label: &str, worker_id: &str) -> Result<ClaimedTask, String> {
    let mut task = ctx.task(label);
    task.max_attempts = Some(3);
    let ids = enqueue_n(ctx, &task, 1)?;
    let mut claimed = claim(ctx, worker_id, &task.queue_name, 5, 60.0)?;
    ensure!(
        claimed.len() == 1 && claimed[0].result.id == ids[0],
        "claiming the one ready task {} returned {:?}",
        ids[0],
        claimed.iter().map(|c| &c.result.id).collect::<Vec<_>>()
    );
    Ok(claimed.remove(0))
}

/// Claims of 2 then 10 take the 3 ready tasks of a queue, each once, RUNNING for the worker;
/// a third claim gets nothing; `get_result` shows them RUNNING.
fn claim_marks_running(ctx: &Ctx) -> Verdict {
    if let Some(skipped) = not_a_queue_store(ctx) {
        return skipped;
    }
    let task = ctx.task("claim");
    let ids: HashSet<String> = enqueue_n(ctx, &task, 3)?.into_iter().collect();
    let w = worker(ctx, "w1");
    let first = claim(ctx, &w, &task.queue_name, 2, 60.0)?;
    ensure!(
        first.len() == 2,
        "claim with limit 2 from 3 ready tasks returned {}",
        first.len()
    );
    let second = claim(ctx, &w, &task.queue_name, 10, 60.0)?;
    let third = claim(ctx, &w, &task.queue_name, 10, 60.0)?;
    ensure!(
        second.len() == 1 && third.is_empty(),
        "after claiming 2 of 3 tasks, claims returned {} then {} (expected 1 then 0)",
        second.len(),
        third.len()
    );
    let claimed: HashSet<String> = first
        .iter()
        .chain(&second)
        .map(|c| c.result.id.to_string())
        .collect();
    ensure!(
        claimed == ids,
        "claimed {claimed:?}, but the ready tasks were {ids:?}"
    );
    for id in &claimed {
        if let Some(stored) = ctx.fetch(id)? {
            ensure!(
                stored.status() == TaskResultStatus::Running
                    && stored.worker_ids().last().map(|x| x.as_str()) == Some(w.as_str()),
                "get_result('{id}') after the claim: {} with worker ids {:?}",
                stored.status(),
                stored.worker_ids()
            );
        }
    }
    pass()
}

/// 4 workers claim 40 tasks at once (3 at a time): every task is claimed exactly once.
fn claim_concurrent_exclusive(ctx: &Ctx) -> Verdict {
    if let Some(skipped) = not_a_queue_store(ctx) {
        return skipped;
    }
    let task = ctx.task("exclusive");
    let items = (0..40).map(|i| (task.clone(), vec![json!(i)])).collect();
    let ids: HashSet<String> = ctx
        .backend
        .enqueue_many_json(items)
        .map_err(|e| describe("enqueue_many", &e))?
        .iter()
        .map(|r| r.id().to_string())
        .collect();
    let outcomes = on_threads(4, |t| {
        let w = worker(ctx, &format!("x{t}"));
        let mut mine = Vec::new();
        for _ in 0..100 {
            let claimed = claim(ctx, &w, &task.queue_name, 3, 60.0)?;
            if claimed.is_empty() {
                break;
            }
            mine.extend(claimed.into_iter().map(|c| c.result.id));
        }
        Ok((w, mine))
    });
    let mut owner: HashMap<String, String> = HashMap::new();
    for outcome in outcomes {
        let (w, mine) = outcome?;
        for id in mine {
            if let Some(other) = owner.insert(id.to_string(), w.clone()) {
                return Err(format!(
                    "task {id} was claimed twice: by '{other}' and by '{w}'"
                ));
            }
        }
    }
    let claimed: HashSet<String> = owner.into_keys().collect();
    ensure!(
        claimed == ids,
        "4 concurrent workers claimed {} of the 40 ready tasks ({} not claimed)",
        claimed.len(),
        ids.difference(&claimed).count()
    );
    pass()
}

/// A task deferred by an hour is not claimed (only with `supports_defer`).
fn claim_respects_run_after(ctx: &Ctx) -> Verdict {
    if let Some(skipped) = not_a_queue_store(ctx) {
        return skipped;
    }
    if !ctx.backend.supports_defer() {
        return skip("backend does not declare supports_defer");
    }
    let mut task = ctx.task("deferred");
    task.run_after = Some(in_an_hour());
    let ids = enqueue_n(ctx, &task, 1)?;
    let claimed = claim(ctx, &worker(ctx, "early"), &task.queue_name, 5, 60.0)?;
    ensure!(
        claimed.is_empty(),
        "task {} is deferred by an hour but was claimed at once",
        ids[0]
    );
    pass()
}

/// A successful completion is applied and stored (SUCCESSFUL, return value, `finished_at`);
/// repeating it is not applied.
fn complete_successful(ctx: &Ctx) -> Verdict {
    if let Some(skipped) = not_a_queue_store(ctx) {
        return skipped;
    }
    let w = worker(ctx, "ok");
    let c = claim_one(ctx, "complete_ok", &w)?;
    let value = json!({"answer": 42, "list": [1, "two", null]});
    let applied = complete(ctx, success(&c, c.lease_token, value.clone()))?;
    ensure!(
        applied,
        "the completion of task {} by its lease holder was not applied",
        c.result.id
    );
    let again = complete(ctx, success(&c, c.lease_token, json!("again")))?;
    ensure!(
        !again,
        "a second completion of finished task {} was applied",
        c.result.id
    );
    if let Some(stored) = ctx.fetch(&c.result.id)? {
        ensure!(
            stored.status() == TaskResultStatus::Successful
                && stored.raw_return_value() == Some(&value)
                && stored.finished_at().is_some(),
            "after a successful completion, task {} is {} with return value {:?} (finished_at \
             set: {})",
            c.result.id,
            stored.status(),
            stored.raw_return_value(),
            stored.finished_at().is_some()
        );
    }
    pass()
}

/// A failed completion without a retry is stored FAILED with the error recorded.
fn complete_failed(ctx: &Ctx) -> Verdict {
    if let Some(skipped) = not_a_queue_store(ctx) {
        return skipped;
    }
    let w = worker(ctx, "fail");
    let c = claim_one(ctx, "complete_failed", &w)?;
    let error = TaskError {
        exception_class_path: "taskhost_conformance::Error".into(),
        traceback: "taskhost_conformance::Error: failed on purpose\n".into(),
    };
    let completion = Completion {
        outcome: TaskOutcome::Failed {
            error: error.clone(),
        },
        ..success(&c, c.lease_token, Value::Null)
    };
    ensure!(
        complete(ctx, completion)?,
        "the failed completion of task {} was not applied",
        c.result.id
    );
    if let Some(stored) = ctx.fetch(&c.result.id)? {
        ensure!(
            stored.status() == TaskResultStatus::Failed
                && stored.errors().last() == Some(&error)
                && stored.finished_at().is_some(),
            "after a failed completion, task {} is {} with errors {:?}",
            c.result.id,
            stored.status(),
            stored.errors()
        );
    }
    pass()
}
