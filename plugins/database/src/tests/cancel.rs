//! Job control: `taskhost.cancel`, `taskhost.retry` and the renewal that reports cancellations
//! (`taskhost.renew_leases`), on both databases.

use super::api::*;
use super::harness::{on_both_databases, TestDb};
use crate::DatabaseBackend;
use chrono::Duration;
use serde_json::json;
use taskhost_plugin_api::control::{
    self, CancelOutcome, CancelResponse, LeaseRenewal, RetryOutcome, RetryResponse,
};
use taskhost_plugin_api::{Backend, ErrorKind, LeaseRequest, PluginError, TaskResultStatus};

on_both_databases!(
    a_ready_task_cancelled_is_failed_and_never_claimed,
    a_running_task_cancelled_is_reported_at_renewal_and_never_retried,
    a_cancelled_running_task_that_succeeds_keeps_its_result,
    a_cancelled_running_task_whose_worker_is_lost_is_not_rescued,
    cancelling_a_finished_or_unknown_task_changes_nothing,
    a_failed_task_retried_runs_again_with_its_whole_budget,
    retrying_anything_but_a_failed_task_changes_nothing,
    cancels_racing_claims_never_hand_out_a_cancelled_task,
    a_cancelled_running_task_handed_back_is_failed_not_ready,
);

fn cancel(b: &DatabaseBackend, id: &str) -> Result<CancelResponse, PluginError> {
    let text = b.call_ext(control::CANCEL, &json!({ "id": id }).to_string())?;
    Ok(serde_json::from_str(&text).unwrap())
}

fn retry(b: &DatabaseBackend, id: &str) -> Result<RetryResponse, PluginError> {
    let text = b.call_ext(control::RETRY, &json!({ "id": id }).to_string())?;
    Ok(serde_json::from_str(&text).unwrap())
}

fn renew_ext(b: &DatabaseBackend, request: &LeaseRequest) -> LeaseRenewal {
    let text = b
        .call_ext(
            control::RENEW_LEASES,
            &serde_json::to_string(request).unwrap(),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn a_ready_task_cancelled_is_failed_and_never_claimed(db: TestDb) {
    let (b, _) = db.backend();
    let ready = enqueue(&b, "default");
    let answer = cancel(&b, &ready.id).unwrap();
    assert_eq!(answer.outcome, CancelOutcome::Cancelled);
    let stored = get(&b, &ready.id).unwrap();
    assert_eq!(answer.result, stored);
    assert_eq!(stored.status, TaskResultStatus::Failed);
    assert_eq!(stored.finished_at, Some(db.now()));
    assert!(
        control::is_cancellation(&stored.errors),
        "{:?}",
        stored.errors
    );
    assert!(stored.worker_ids.is_empty());
    assert!(
        claim(&b, "w1", 10).is_empty(),
        "a cancelled task is never claimed"
    );
}

fn a_running_task_cancelled_is_reported_at_renewal_and_never_retried(db: TestDb) {
    let (b, _) = db
        .try_backend("default", json!({"max_attempts": 3}))
        .unwrap();
    enqueue(&b, "default");
    enqueue(&b, "default");
    let mut claimed = claim(&b, "w1", 2);
    let (task, other) = (claimed.remove(0), claimed.remove(0));
    let leases = lease("w1", &[&task, &other], 10.0);
    assert_eq!(renew_ext(&b, &leases), LeaseRenewal::default());
    let answer = cancel(&b, &task.result.id).unwrap();
    assert_eq!(answer.outcome, CancelOutcome::Requested);
    assert_eq!(answer.result.status, TaskResultStatus::Running);
    let renewal = renew_ext(&b, &leases);
    assert_eq!(renewal.cancel_requested, [task.result.id.to_string()]);
    assert!(renewal.lost.is_empty());
    // The plain renewal is unchanged: no lease lost.
    assert!(renew(&b, &leases).is_empty());
    // A failure the worker would retry ends FAILED, cancelled, after the task's own error.
    let retry_at = db.now() + Duration::seconds(1);
    assert!(complete(&b, &[failure(&task, Some(retry_at))])[0].applied);
    let stored = get(&b, &task.result.id).unwrap();
    assert_eq!(stored.status, TaskResultStatus::Failed);
    assert_eq!(stored.finished_at, Some(db.now()));
    assert_eq!(stored.errors.len(), 2);
    assert_eq!(stored.errors[0].exception_class_path, "app::Error");
    assert!(control::is_cancellation(&stored.errors));
    db.advance_secs(5);
    assert!(claim(&b, "w2", 10).is_empty(), "never READY again");
    // The other task's failure is retried as usual.
    assert!(complete(&b, &[failure(&other, Some(retry_at))])[0].applied);
    assert_eq!(
        get(&b, &other.result.id).unwrap().status,
        TaskResultStatus::Ready
    );
}

fn a_cancelled_running_task_that_succeeds_keeps_its_result(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    let task = claim(&b, "w1", 1).remove(0);
    cancel(&b, &task.result.id).unwrap();
    // A worker that never told the task (it finished first) reports its success.
    assert!(complete(&b, &[success(&task, json!(7))])[0].applied);
    let stored = get(&b, &task.result.id).unwrap();
    assert_eq!(stored.status, TaskResultStatus::Successful);
    assert!(stored.errors.is_empty());
}

fn a_cancelled_running_task_whose_worker_is_lost_is_not_rescued(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    let task = claim(&b, "w1", 1).remove(0);
    cancel(&b, &task.result.id).unwrap();
    db.advance_secs(3600);
    assert_eq!(rescue(&b), 1);
    let stored = get(&b, &task.result.id).unwrap();
    assert_eq!(stored.status, TaskResultStatus::Failed);
    let classes: Vec<&str> = stored
        .errors
        .iter()
        .map(|e| e.exception_class_path.as_str())
        .collect();
    assert_eq!(classes, ["taskhost::WorkerLost", control::CANCELLED]);
    assert!(claim(&b, "w2", 1).is_empty());
}

fn cancelling_a_finished_or_unknown_task_changes_nothing(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    let task = claim(&b, "w1", 1).remove(0);
    complete(&b, &[success(&task, json!(1))]);
    let before = get(&b, &task.result.id).unwrap();
    let answer = cancel(&b, &task.result.id).unwrap();
    assert_eq!(answer.outcome, CancelOutcome::AlreadyFinished);
    assert_eq!(answer.result, before);
    assert_eq!(get(&b, &task.result.id).unwrap(), before);
    for id in ["0190c0de-0000-7000-8000-00000000dead", "not-a-uuid"] {
        let err = cancel(&b, id).unwrap_err();
        assert_eq!(
            (err.kind, err.message()),
            (ErrorKind::RESULT_DOES_NOT_EXIST, id)
        );
    }
    let err = b.call_ext(control::CANCEL, "{}").unwrap_err();
    assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
    assert!(err.message().contains(control::CANCEL), "{}", err.message());
}

fn a_failed_task_retried_runs_again_with_its_whole_budget(db: TestDb) {
    let (b, _) = db
        .try_backend("default", json!({"max_attempts": 2}))
        .unwrap();
    enqueue(&b, "default");
    let first = claim(&b, "w1", 1).remove(0);
    complete(&b, &[failure(&first, Some(db.now()))]);
    let second = claim(&b, "w1", 1).remove(0);
    complete(&b, &[failure(&second, None)]);
    assert_eq!(
        get(&b, &first.result.id).unwrap().status,
        TaskResultStatus::Failed
    );
    db.tick();
    let answer = retry(&b, &first.result.id).unwrap();
    assert_eq!(answer.outcome, RetryOutcome::Retried);
    let r = &answer.result;
    assert_eq!((r.status, r.finished_at), (TaskResultStatus::Ready, None));
    assert_eq!((r.errors.len(), r.worker_ids.len()), (2, 2), "history kept");
    let third = claim(&b, "w2", 1).remove(0);
    assert_eq!(third.result.worker_ids.len(), 3);
    assert_eq!(third.max_attempts, 4, "two attempts more: the budget again");
    complete(&b, &[success(&third, json!("ok"))]);
    let done = get(&b, &first.result.id).unwrap();
    assert_eq!(done.status, TaskResultStatus::Successful);
    assert_eq!(done.errors.len(), 2);
}

fn retrying_anything_but_a_failed_task_changes_nothing(db: TestDb) {
    let (b, _) = db.backend();
    let ready = enqueue(&b, "default");
    assert_eq!(
        retry(&b, &ready.id).unwrap().outcome,
        RetryOutcome::NotFailed
    );
    let task = claim(&b, "w1", 1).remove(0);
    let answer = retry(&b, &task.result.id).unwrap();
    assert_eq!(
        (answer.outcome, answer.result.status),
        (RetryOutcome::NotFailed, TaskResultStatus::Running)
    );
    let err = retry(&b, "0190c0de-0000-7000-8000-00000000dead").unwrap_err();
    assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
}

/// Cancels and claims of the same READY tasks at once: each task is either cancelled before any
/// claim (FAILED, never handed out) or claimed first (the cancel answers `requested`, the task
/// stays RUNNING for its worker) — never both.
fn cancels_racing_claims_never_hand_out_a_cancelled_task(db: TestDb) {
    let (b, _) = db.backend();
    let ids: Vec<String> = (0..60)
        .map(|_| enqueue(&b, "default").id.to_string())
        .collect();
    let (outcomes, claimed) = std::thread::scope(|s| {
        let canceller = s.spawn(|| {
            ids.iter()
                .map(|id| (id.clone(), cancel(&b, id).unwrap().outcome))
                .collect::<std::collections::HashMap<_, _>>()
        });
        let claimer = s.spawn(|| {
            let mut claimed = std::collections::HashSet::new();
            for _ in 0..60 {
                for task in claim(&b, "w1", 2) {
                    claimed.insert(task.result.id.to_string());
                }
            }
            claimed
        });
        (canceller.join().unwrap(), claimer.join().unwrap())
    });
    for id in &ids {
        let stored = get(&b, id).unwrap();
        match outcomes[id] {
            CancelOutcome::Cancelled => {
                assert!(!claimed.contains(id), "{id} was cancelled and then claimed");
                assert!(control::is_cancellation(&stored.errors));
                assert_eq!(stored.status, TaskResultStatus::Failed);
            }
            CancelOutcome::Requested => {
                assert!(
                    claimed.contains(id),
                    "{id}: cancel requested, but nobody claimed it"
                );
                assert_eq!(stored.status, TaskResultStatus::Running);
            }
            CancelOutcome::AlreadyFinished => panic!("{id} finished without a completion"),
        }
    }
}

/// A worker that hands back a task asked to stop (a forced shutdown, a prefetched task it no
/// longer keeps) does not make it READY: it ends FAILED, cancelled; the other task is READY.
fn a_cancelled_running_task_handed_back_is_failed_not_ready(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    enqueue(&b, "default");
    let mut claimed = claim(&b, "w1", 2);
    let (task, other) = (claimed.remove(0), claimed.remove(0));
    cancel(&b, &task.result.id).unwrap();
    assert_eq!(release(&b, &lease("w1", &[&task, &other], 10.0)), 2);
    let stored = get(&b, &task.result.id).unwrap();
    assert_eq!(stored.status, TaskResultStatus::Failed);
    assert!(control::is_cancellation(&stored.errors));
    assert_eq!(
        get(&b, &other.result.id).unwrap().status,
        TaskResultStatus::Ready
    );
    assert_eq!(
        claimed_ids(&claim(&b, "w2", 5)),
        [other.result.id.to_string()]
    );
}
