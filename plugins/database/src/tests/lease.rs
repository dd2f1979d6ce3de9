//! Leases: completion, retries, renewal, release, fencing, rescue, max_attempts and max_rescues.

use super::api::*;
use super::harness::{on_both_databases, TestDb};
use chrono::Duration;
use serde_json::json;
use serde_json::Value;
use taskhost_plugin_api::{
    Backend, ClaimRequest, ClaimedTask, Completion, CompletionAck, TaskResultStatus, Text,
    REPORT_STARTED,
};

on_both_databases!(
    a_successful_completion_stores_the_return_value,
    a_failed_completion_without_retry_fails_the_task,
    a_failure_with_retry_at_is_ready_again_at_that_time,
    renewing_keeps_a_lease_alive,
    release_hands_a_task_back_without_counting_the_attempt,
    an_expired_lease_is_rescued_ready_again_at_the_default_max_attempts,
    a_task_rescued_max_rescues_times_ends_failed,
    a_stale_lease_token_changes_nothing,
    completions_are_acknowledged_one_by_one,
    a_completion_with_a_later_start_records_it,
    a_prefetched_task_rescued_before_its_start_is_handed_back_uncounted,
    a_prefetched_task_rescued_once_must_report_its_start_and_then_counts,
);

fn a_successful_completion_stores_the_return_value(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    let task = claim(&b, "w1", 1).remove(0);
    let acks = complete(&b, &[success(&task, json!({"sum": [1, 2.5, "x"]}))]);
    assert_eq!(
        acks,
        vec![CompletionAck {
            id: task.result.id.to_string(),
            applied: true
        }]
    );
    let r = get(&b, &task.result.id).unwrap();
    assert_eq!(r.status, TaskResultStatus::Successful);
    assert_eq!(
        r.return_value.as_ref().map(value_of),
        Some(json!({"sum": [1, 2.5, "x"]}))
    );
    assert!(r.finished_at.unwrap() >= r.started_at.unwrap());
    assert!(r.errors.is_empty());
    let lost = renew(&b, &lease("w1", &[&task], 10.0));
    assert_eq!(
        lost,
        vec![task.result.id.clone()],
        "a finished task holds no lease"
    );
}

fn a_failed_completion_without_retry_fails_the_task(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    let task = claim(&b, "w1", 1).remove(0);
    assert!(complete(&b, &[failure(&task, None)])[0].applied);
    let r = get(&b, &task.result.id).unwrap();
    assert_eq!(r.status, TaskResultStatus::Failed);
    assert_eq!(r.return_value, None);
    assert!(r.finished_at.is_some());
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].exception_class_path, "app::Error");
    assert_eq!(r.errors[0].traceback, "app::Error: boom\n");
    assert!(claim(&b, "w1", 1).is_empty());
}

fn a_failure_with_retry_at_is_ready_again_at_that_time(db: TestDb) {
    let (b, _) = db
        .try_backend("default", json!({"max_attempts": 3}))
        .unwrap();
    enqueue(&b, "default");
    let first = claim(&b, "w1", 1).remove(0);
    assert_eq!(first.max_attempts, 3);
    let retry_at = db.now() + Duration::seconds(30);
    assert!(complete(&b, &[failure(&first, Some(retry_at))])[0].applied);
    let r = get(&b, &first.result.id).unwrap();
    assert_eq!(
        (r.status, r.task.run_after, r.finished_at),
        (TaskResultStatus::Ready, Some(retry_at), None)
    );
    assert_eq!(r.errors.len(), 1);
    assert!(claim(&b, "w2", 1).is_empty(), "not before retry_at");
    db.advance_secs(31);
    let second = claim(&b, "w2", 1).remove(0);
    assert_eq!(second.lease_token, 2);
    assert_eq!(
        second.result.worker_ids,
        vec!["w1".to_string(), "w2".to_string()]
    );
    assert_eq!(second.result.errors.len(), 1);
}

fn renewing_keeps_a_lease_alive(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    let task = claim(&b, "w1", 1).remove(0);
    db.advance_secs(8);
    assert!(renew(&b, &lease("w1", &[&task], 10.0)).is_empty());
    db.advance_secs(8);
    assert_eq!(rescue(&b), 0);
    assert_eq!(
        get(&b, &task.result.id).unwrap().status,
        TaskResultStatus::Running
    );
    assert_eq!(
        renew(&b, &lease("intruder", &[&task], 10.0)),
        vec![task.result.id.clone()]
    );
    db.advance_secs(11);
    assert_eq!(rescue(&b), 1);
}

fn release_hands_a_task_back_without_counting_the_attempt(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    let task = claim(&b, "w1", 1).remove(0);
    assert_eq!(
        release(&b, &lease("w2", &[&task], 0.0)),
        0,
        "not w2's lease"
    );
    assert_eq!(release(&b, &lease("w1", &[&task], 0.0)), 1);
    let r = get(&b, &task.result.id).unwrap();
    assert_eq!(r.status, TaskResultStatus::Ready);
    assert!(r.worker_ids.is_empty());
    assert_eq!((r.started_at, r.last_attempted_at), (None, None));
    assert_eq!(
        release(&b, &lease("w1", &[&task], 0.0)),
        0,
        "already released"
    );
    let again = claim(&b, "w3", 1).remove(0);
    assert_eq!(
        (again.lease_token, again.result.worker_ids.clone()),
        (2, vec![Text::from("w3")])
    );
    assert!(complete(&b, &[success(&again, json!(null))])[0].applied);
}

/// A lost worker is not the task's failure: with the defaults (`max_attempts = 1`) the task is
/// READY again, and the next claim allows one attempt more than the task's own, so the lost
/// one does not use up its retries.
fn an_expired_lease_is_rescued_ready_again_at_the_default_max_attempts(db: TestDb) {
    let (b, host) = db.backend();
    let enqueued = enqueue(&b, "default");
    let first = claim(&b, "w1", 1).remove(0);
    assert_eq!(first.max_attempts, 1);
    let signals_before = host.signals().len();
    db.advance_secs(61);
    assert_eq!(rescue(&b), 1);
    let rescued = get(&b, &enqueued.id).unwrap();
    assert_eq!(rescued.status, TaskResultStatus::Ready);
    let due = rescued.task.run_after.unwrap();
    assert!(
        due >= db.now() && due < db.now() + Duration::seconds(1),
        "READY again within the requeue spread: {due}"
    );
    db.advance_secs(1);
    let second = claim(&b, "w2", 1).remove(0);
    assert_eq!(second.result.id, enqueued.id);
    assert_eq!(second.lease_token, 2);
    assert_eq!(second.max_attempts, 2, "the lost attempt is not counted");
    assert_eq!(
        second.result.worker_ids,
        vec!["w1".to_string(), "w2".to_string()],
        "Django's attempt counting: one worker id per attempt started"
    );
    let error = &second.result.errors[0];
    assert_eq!(error.exception_class_path, "taskhost::WorkerLost");
    assert!(
        error
            .traceback
            .starts_with("worker 'w1' stopped renewing its lease"),
        "{}",
        error.traceback
    );
    assert!(
        error
            .traceback
            .ends_with("Attempt 1 was lost; rescue 1 of 3: it is READY again.\n"),
        "{}",
        error.traceback
    );
    assert!(!complete(&b, &[success(&first, json!(1))])[0].applied);
    assert_eq!(
        host.signals().len(),
        signals_before,
        "rescues send no signals"
    );
    assert!(complete(&b, &[success(&second, json!(2))])[0].applied);
}

/// A task that keeps taking its workers down (a poison task) still ends: the `max_rescues`-th
/// rescue fails it, whatever `max_attempts` allows.
fn a_task_rescued_max_rescues_times_ends_failed(db: TestDb) {
    let (b, _) = db
        .try_backend("default", json!({"max_attempts": 10, "max_rescues": 2}))
        .unwrap();
    let poison = enqueue(&b, "default");
    assert_eq!(claim(&b, "w1", 1)[0].max_attempts, 10);
    db.advance_secs(61);
    assert_eq!(rescue(&b), 1);
    assert_eq!(get(&b, &poison.id).unwrap().status, TaskResultStatus::Ready);
    db.advance_secs(1);
    assert_eq!(claim(&b, "w2", 1)[0].max_attempts, 11);
    db.advance_secs(61);
    assert_eq!(rescue(&b), 1);
    let failed = get(&b, &poison.id).unwrap();
    assert_eq!(failed.status, TaskResultStatus::Failed);
    assert!(failed.finished_at.is_some());
    assert_eq!(failed.worker_ids, vec!["w1".to_string(), "w2".to_string()]);
    assert_eq!(failed.errors.len(), 2);
    assert!(
        failed.errors[1].traceback.ends_with(
            "Attempt 2 was lost; rescue 2 of 2: that is the limit (the backend's max_rescues), \
             so it FAILED: if it keeps stopping its workers (a crash, an abort, running out of \
             memory), it is a poison task.\n"
        ),
        "{}",
        failed.errors[1].traceback
    );
    assert!(claim(&b, "w3", 1).is_empty());
}

fn a_stale_lease_token_changes_nothing(db: TestDb) {
    let (b, _) = db
        .try_backend("default", json!({"max_attempts": 5}))
        .unwrap();
    enqueue(&b, "default");
    let stale = claim(&b, "w1", 1).remove(0);
    db.advance_secs(11);
    rescue(&b);
    db.advance_secs(1);
    let fresh = claim(&b, "w1", 1).remove(0);
    assert_eq!((stale.lease_token, fresh.lease_token), (1, 2));
    assert!(!complete(&b, &[success(&stale, json!("late"))])[0].applied);
    assert_eq!(
        renew(&b, &lease("w1", &[&stale], 10.0)),
        vec![stale.result.id.clone()]
    );
    assert_eq!(release(&b, &lease("w1", &[&stale], 0.0)), 0);
    let r = get(&b, &fresh.result.id).unwrap();
    assert_eq!(
        (r.status, r.return_value.clone()),
        (TaskResultStatus::Running, None)
    );
    assert!(renew(&b, &lease("w1", &[&fresh], 10.0)).is_empty());
    assert!(complete(&b, &[success(&fresh, json!("on time"))])[0].applied);
    assert!(
        !complete(&b, &[success(&fresh, json!("twice"))])[0].applied,
        "already finished"
    );
    assert_eq!(
        get(&b, &fresh.result.id)
            .unwrap()
            .return_value
            .map(|v| value_of(&v)),
        Some(json!("on time"))
    );
}

fn completions_are_acknowledged_one_by_one(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    enqueue(&b, "default");
    let tasks = claim(&b, "w1", 2);
    let mut unknown = success(&tasks[0], json!(0));
    unknown.id = uuid::Uuid::now_v7().to_string();
    let mut malformed = success(&tasks[0], json!(0));
    malformed.id = "not-a-uuid".into();
    let mut wrong_token = success(&tasks[1], json!(0));
    wrong_token.lease_token = 99;
    let acks = complete(
        &b,
        &[
            success(&tasks[0], json!(1)),
            unknown.clone(),
            malformed,
            wrong_token,
        ],
    );
    let applied: Vec<(String, bool)> = acks.into_iter().map(|a| (a.id, a.applied)).collect();
    assert_eq!(
        applied,
        vec![
            (tasks[0].result.id.to_string(), true),
            (unknown.id, false),
            ("not-a-uuid".to_string(), false),
            (tasks[1].result.id.to_string(), false),
        ]
    );
}

/// A prefetched task starts after its claim: its completion's `started_at` replaces the claim's.
fn a_completion_with_a_later_start_records_it(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    enqueue(&b, "default");
    let mut tasks = claim(&b, "w1", 2);
    let claimed_at = tasks[0].result.started_at.unwrap();
    let started = claimed_at + Duration::seconds(5);
    let late = Completion {
        started_at: Some(started),
        ..success(&tasks[0], json!(1))
    };
    let on_time = success(&tasks[1], json!(2));
    complete(&b, &[late, on_time]);
    let r = get(&b, &tasks.remove(0).result.id).unwrap();
    assert_eq!(
        (r.started_at, r.last_attempted_at),
        (Some(started), Some(started))
    );
    let r = get(&b, &tasks.remove(0).result.id).unwrap();
    assert_eq!(
        r.started_at,
        Some(claimed_at),
        "no start given: the claim's is kept"
    );
}

/// Decision 017: a claim marks the tasks past its `start_now` as prefetched; rescued before the
/// worker reported their start, they are READY again as a release leaves them (no rescue, no
/// attempt, no worker id, no `WorkerLost` error), however often that happens. The task that
/// started at once is rescued and counted (decision 010).
fn a_prefetched_task_rescued_before_its_start_is_handed_back_uncounted(db: TestDb) {
    let (b, _) = db
        .try_backend("default", json!({"max_rescues": 2}))
        .unwrap();
    let mut ids: Vec<String> = (0..3)
        .map(|_| enqueue(&b, "default").id.to_string())
        .collect();
    ids.sort();
    let sorted = |claimed: &[ClaimedTask]| {
        let mut claimed = claimed_ids(claimed);
        claimed.sort();
        claimed
    };
    for round in 1..=3 {
        let request = ClaimRequest {
            start_now: Some(0),
            ..claim_request(&format!("w{round}"), None, 3)
        };
        let claimed = claim_with(&b, &request);
        assert_eq!(sorted(&claimed), ids, "round {round}");
        db.advance_secs(61);
        assert_eq!(rescue(&b), 3);
        for id in &ids {
            let r = get(&b, id).unwrap();
            assert_eq!(r.status, TaskResultStatus::Ready, "round {round}");
            assert!(r.worker_ids.is_empty(), "round {round}: {:?}", r.worker_ids);
            assert!(r.errors.is_empty(), "round {round}: {:?}", r.errors);
            assert_eq!((r.started_at, r.last_attempted_at), (None, None));
        }
        db.advance_secs(1);
    }
    // With `start_now` the first starts at once: its rescue counts; the other two do not.
    let request = ClaimRequest {
        start_now: Some(1),
        ..claim_request("w4", None, 3)
    };
    let claimed = claim_with(&b, &request);
    assert_eq!(sorted(&claimed), ids);
    assert_eq!(
        claimed.iter().map(|c| c.max_attempts).collect::<Vec<_>>(),
        vec![1, 1, 1],
        "no rescue counted so far"
    );
    // The first in claim order started at once.
    let ids = claimed_ids(&claimed);
    db.advance_secs(61);
    assert_eq!(rescue(&b), 3);
    let first = get(&b, &ids[0]).unwrap();
    assert_eq!(first.status, TaskResultStatus::Ready);
    assert_eq!(first.worker_ids, vec!["w4".to_string()]);
    assert_eq!(first.errors.len(), 1);
    assert_eq!(first.errors[0].exception_class_path, "taskhost::WorkerLost");
    for id in &ids[1..] {
        let r = get(&b, id).unwrap();
        assert_eq!(r.status, TaskResultStatus::Ready);
        assert!(r.worker_ids.is_empty() && r.errors.is_empty(), "{r:?}");
    }
    // A claim that does not say (`start_now = None`, a 2.0 host) counts every task as started.
    db.advance_secs(1);
    let claimed = claim(&b, "w5", 3);
    assert_eq!(claimed.len(), 3);
    assert!(claimed.iter().all(|c| !c.report_start));
    db.advance_secs(61);
    assert_eq!(rescue(&b), 3);
    assert_eq!(get(&b, &ids[0]).unwrap().status, TaskResultStatus::Failed);
    for id in &ids[1..] {
        assert_eq!(get(&b, id).unwrap().errors.len(), 1);
    }
}

/// Decision 017's bound: a prefetched task rescued once without its start known is claimed
/// with `report_start` when prefetched again; once its worker reports the start, its rescue
/// counts (a task that kills its worker right after starting still ends FAILED). Claimed to
/// start at once, it needs no report.
fn a_prefetched_task_rescued_once_must_report_its_start_and_then_counts(db: TestDb) {
    let (b, _) = db
        .try_backend("default", json!({"max_rescues": 2}))
        .unwrap();
    enqueue(&b, "default");
    enqueue(&b, "default");
    let prefetch_all = |worker: &str| ClaimRequest {
        start_now: Some(0),
        ..claim_request(worker, None, 2)
    };
    let claimed = claim_with(&b, &prefetch_all("w1"));
    assert!(claimed.iter().all(|c| !c.report_start), "never rescued yet");
    db.advance_secs(61);
    assert_eq!(rescue(&b), 2);
    db.advance_secs(1);
    let claimed = claim_with(&b, &prefetch_all("w2"));
    assert!(claimed.iter().all(|c| c.report_start));
    let (first, second) = (
        claimed[0].result.id.to_string(),
        claimed[1].result.id.to_string(),
    );
    let report = |worker: &str, task: &ClaimedTask| -> Value {
        let request = serde_json::to_string(&lease(worker, &[task], 0.0)).unwrap();
        serde_json::from_str(&b.call_ext(REPORT_STARTED, &request).unwrap()).unwrap()
    };
    assert_eq!(report("w2", &claimed[0]), json!({"reported": 1}));
    assert_eq!(
        report("someone-else", &claimed[1]),
        json!({"reported": 0}),
        "only the lease holder reports"
    );
    db.advance_secs(61);
    assert_eq!(rescue(&b), 2);
    let started = get(&b, &first).unwrap();
    assert_eq!(started.errors.len(), 1, "the reported start counts");
    assert_eq!(started.worker_ids, vec!["w2".to_string()]);
    assert!(get(&b, &second).unwrap().errors.is_empty());
    // Claimed to start at once, no report is asked: the claim counts it as started.
    db.advance_secs(1);
    let request = ClaimRequest {
        start_now: Some(2),
        ..claim_request("w3", None, 2)
    };
    let claimed = claim_with(&b, &request);
    assert!(claimed.iter().all(|c| !c.report_start));
    db.advance_secs(61);
    assert_eq!(rescue(&b), 2);
    let poison = get(&b, &first).unwrap();
    assert_eq!(poison.status, TaskResultStatus::Failed, "rescue 2 of 2");
    assert_eq!(poison.errors.len(), 2);
    assert_eq!(get(&b, &second).unwrap().errors.len(), 1);
}
