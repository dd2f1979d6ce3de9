//! Writes whose connection is lost (PostgreSQL): the first attempt is one self-committing
//! statement, so a lost connection can leave it committed or not. An enqueue's retry must store
//! the task exactly once and still refuse a different task under a stored id; a claim's retry
//! must return the tasks the lost attempt took; a completion's retry must acknowledge what the
//! lost attempt stored. And duplicate ids inside one bulk enqueue, on both databases.

use super::api::*;
use super::harness::{on_both_databases, Kind, TestDb};
use crate::postgres::faults::{plan, plan_with, Loss};
use serde_json::json;
use taskhost_plugin_api::{ErrorKind, PluginError, TaskResultStatus, Text};

on_both_databases!(
    a_duplicate_id_inside_one_bulk_enqueue_stores_nothing,
    a_bulk_enqueue_with_a_stored_id_stores_nothing,
    bulk_rows_read_back_as_single_ones_do,
);

fn a_duplicate_id_inside_one_bulk_enqueue_stores_nothing(db: TestDb) {
    let (b, _) = db.backend();
    let first = task("app::a", "default", 0, None);
    let mut again = task("app::b", "default", 0, None);
    again.id = first.id.clone();
    let other = task("app::c", "default", 0, None);
    let err = enqueue_many(&b, &[first.clone(), other, again]).unwrap_err();
    assert_already_stored(&err, &first.id);
    assert!(all(&b).is_empty(), "all or none");
}

/// Small batches are one INSERT, large ones (PostgreSQL) a binary COPY: both refuse a stored
/// id by name and store none of the batch.
fn a_bulk_enqueue_with_a_stored_id_stores_nothing(db: TestDb) {
    let (b, _) = db.backend();
    let stored = enqueue(&b, "default");
    for size in [3, 200] {
        let mut requests: Vec<_> = (0..size)
            .map(|i| task("app::bulk", &format!("q{}", i % 2), 0, None))
            .collect();
        requests[size / 2].id = stored.id.clone();
        let err = enqueue_many(&b, &requests).unwrap_err();
        assert_already_stored(&err, &stored.id);
        assert_eq!(all(&b).len(), 1, "a batch of {size}: all or none");
    }
}

/// Every column, NULL or set, through both insert paths (PostgreSQL: a batch of 200 is a
/// binary COPY, a batch of 3 an INSERT): what `get_result` reads back is what enqueue returned.
fn bulk_rows_read_back_as_single_ones_do(db: TestDb) {
    let (b, _) = db.backend();
    let later = db.now() + chrono::Duration::microseconds(1_234_567);
    for size in [3usize, 200] {
        let requests: Vec<_> = (0..size)
            .map(|i| {
                let mut r = task("app::tâche::\"quoted\"", &format!("q{}", i % 3), 0, None);
                if i % 2 == 0 {
                    r.task.priority = -100 + (i % 201) as i32;
                    r.task.run_after = Some(later);
                    r.task.max_attempts = Some(1 + i as u32);
                    r.task.timeout_secs = Some(0.25 * i as f64);
                    r.task.takes_context = true;
                    r.task.is_async = true;
                    r.args = json_of(&json!([null, {"nested": [1.5, "ü\n"]}, i]));
                    r.kwargs = json_of(&json!({"b": true, "a": [], "z": "x"}));
                }
                r
            })
            .collect();
        let results = enqueue_many(&b, &requests).unwrap();
        for (request, result) in requests.iter().zip(&results) {
            assert_eq!(result.id, request.id);
            assert_eq!(result.task.run_after, request.task.run_after);
            assert_eq!(result.args, request.args);
            let stored = get(&b, &request.id).unwrap();
            assert_stored(db.kind, &stored, result);
        }
    }
}

fn assert_already_stored(err: &PluginError, id: &str) {
    assert_eq!(err.kind, ErrorKind::INVALID_REQUEST, "{err}");
    assert_eq!(
        err.message(),
        format!("A result with id '{id}' is already stored.")
    );
}

/// The PostgreSQL test database with its schema name, or `None` outside CI without a server.
fn postgres() -> Option<(TestDb, String)> {
    let db = TestDb::new(Kind::Postgres)?;
    let schema = db.base["schema"].as_str().unwrap().to_string();
    Some((db, schema))
}

/// A `wait_for_tasks` that does not wait: whether a notification came.
/// Whether a NOTIFY for `queue` is pending. Each test waits on a queue of its own: PostgreSQL's
/// notification channel is shared by every schema of the database, so a wait on any queue
/// would also hear the enqueues of tests running at the same time in other schemas.
fn wait(b: &crate::DatabaseBackend, queue: &str) -> bool {
    wait_for(b, Some(&[queue]), 0.0).unwrap()
}

#[test]
fn postgres_an_enqueue_lost_after_its_commit_is_stored_once_and_signalled() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    const QUEUE: &str = "retry_after_commit";
    let (b, _) = db.backend();
    assert!(!wait(&b, QUEUE), "listening");
    plan(&schema, Loss::AfterCommit);
    let request = task("app::tasks::job", QUEUE, 0, None);
    let result = enqueue_request(&b, request.clone());
    assert_eq!(result.id, request.id);
    let stored = all(&b);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, request.id);
    assert!(wait(&b, QUEUE));
    // The retry found this very enqueue; the same id again is still refused.
    let err = enqueue_many(&b, std::slice::from_ref(&request)).unwrap_err();
    assert_already_stored(&err, &request.id);
    assert_eq!(claimed_ids(&claim(&b, "w", 5)), vec![request.id]);
}

#[test]
fn postgres_an_enqueue_lost_before_its_statement_is_stored_once() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    const QUEUE: &str = "retry_before_write";
    let (b, _) = db.backend();
    assert!(!wait(&b, QUEUE), "listening");
    plan(&schema, Loss::BeforeWrite);
    let request = task("app::tasks::job", QUEUE, 0, None);
    assert_eq!(enqueue_request(&b, request.clone()).id, request.id);
    let stored = all(&b);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].task.path.as_str(), value_of(&stored[0].args)),
        ("app::tasks::job", value_of(&request.args))
    );
    assert!(wait(&b, QUEUE), "the retry signalled it");
}

#[test]
fn postgres_a_retried_enqueue_still_refuses_a_different_task_under_a_stored_id() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    let (b, _) = db.backend();
    let stored = task("app::first", "default", 0, None);
    enqueue_request(&b, stored.clone());
    // The retry skips the stored id, then finds the row there is not this enqueue.
    let mut different = task("app::second", "default", 0, None);
    different.id = stored.id.clone();
    let fresh = task("app::third", "default", 0, None);
    plan(&schema, Loss::BeforeWrite);
    let err = enqueue_many(&b, &[fresh, different]).unwrap_err();
    assert_already_stored(&err, &stored.id);
    let left = all(&b);
    assert_eq!(left.len(), 1, "the batch was rolled back");
    assert_eq!(left[0].task.path, "app::first");
    // Same id, same task but other arguments: not this enqueue either.
    let mut other_args = stored.clone();
    other_args.args = json_of(&json!(["changed"]));
    plan(&schema, Loss::BeforeWrite);
    let err = enqueue_many(&b, &[other_args]).unwrap_err();
    assert_already_stored(&err, &stored.id);
}

#[test]
fn postgres_a_retried_enqueue_accepts_its_own_row_after_a_worker_took_it() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    let (b, _) = db.backend();
    let request = task("app::tasks::job", "default", 0, None);
    // Between the lost commit and the retry, a worker claims the task and fails it with a
    // retry: the retry must compare only what the enqueue wrote.
    plan_with(
        &schema,
        Loss::AfterCommit,
        "UPDATE taskhost_tasks SET status = 'RUNNING', attempts = 1, lease_token = 1, \
         worker_ids = '[\"w\"]', run_after = now(), lease_owner = 'w', \
         lease_expires_at = now() + interval '1 hour'",
    );
    assert_eq!(enqueue_request(&b, request.clone()).id, request.id);
    let stored = all(&b);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].worker_ids,
        vec!["w".to_string()],
        "the worker's row"
    );
}

#[test]
fn postgres_a_large_bulk_enqueue_lost_after_its_commit_is_stored_once() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    let (b, _) = db.backend();
    // More than one statement's worth: the first attempt runs in a transaction.
    let requests: Vec<_> = (0..2_500)
        .map(|i| task("app::bulk", &format!("q{}", i % 3), 0, None))
        .collect();
    plan(&schema, Loss::AfterCommit);
    let results = enqueue_many(&b, &requests).unwrap();
    assert_eq!(results.len(), requests.len());
    let stored = all(&b);
    assert_eq!(stored.len(), requests.len());
    let mut ids: Vec<&str> = stored.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let mut wanted: Vec<&str> = requests.iter().map(|r| r.id.as_str()).collect();
    wanted.sort_unstable();
    assert_eq!(ids, wanted);
}

/// A claim whose session the server ends right after its commit (the client cannot tell that
/// it committed): the retry returns the tasks that claim took, and takes no others — before
/// claim ids, it claimed the next tasks and left these RUNNING under a lease nobody renewed.
#[test]
fn postgres_a_claim_lost_after_its_commit_returns_the_tasks_it_took() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    let (b, _) = db.backend();
    let first = enqueue(&b, "default");
    let second = enqueue(&b, "default");
    plan(&schema, Loss::AfterCommit);
    let claimed = claim(&b, "w", 1);
    assert_eq!(claimed_ids(&claimed), vec![first.id.clone()]);
    assert_eq!(claimed[0].lease_token, 1);
    assert_eq!(claimed[0].result.worker_ids, vec!["w".to_string()]);
    let running: Vec<Text> = all(&b)
        .into_iter()
        .filter(|r| r.status == TaskResultStatus::Running)
        .map(|r| r.id)
        .collect();
    assert_eq!(running, vec![first.id.clone()], "nothing else was taken");
    assert!(complete(&b, &[success(&claimed[0], json!(1))])[0].applied);
    assert_eq!(claimed_ids(&claim(&b, "w", 5)), vec![second.id]);
}

/// A claim whose session ended before it was sent claims once, on the new session.
#[test]
fn postgres_a_claim_lost_before_its_statement_claims_once() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    let (b, _) = db.backend();
    let first = enqueue(&b, "default");
    enqueue(&b, "default");
    plan(&schema, Loss::BeforeWrite);
    let claimed = claim(&b, "w", 1);
    assert_eq!(claimed_ids(&claimed), vec![first.id.clone()]);
    assert_eq!(claimed[0].lease_token, 1);
    let running = all(&b)
        .into_iter()
        .filter(|r| r.status == TaskResultStatus::Running)
        .count();
    assert_eq!(running, 1);
}

/// Completions whose session ended right after their commit are acknowledged as applied (the
/// retry reads back that the rows hold them): no false "lost its lease" for a stored result.
#[test]
fn postgres_completions_lost_after_their_commit_are_acknowledged() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    let (b, _) = db
        .try_backend("default", json!({"max_attempts": 3}))
        .unwrap();
    for _ in 0..3 {
        enqueue(&b, "default");
    }
    let tasks = claim(&b, "w", 3);
    let retry_at = db.now() + chrono::Duration::seconds(30);
    plan(&schema, Loss::AfterCommit);
    let acks = complete(
        &b,
        &[
            success(&tasks[0], json!({"n": 1})),
            failure(&tasks[1], Some(retry_at)),
            failure(&tasks[2], None),
        ],
    );
    assert!(acks.iter().all(|a| a.applied), "{acks:?}");
    let statuses: Vec<TaskResultStatus> = tasks
        .iter()
        .map(|t| get(&b, &t.result.id).unwrap().status)
        .collect();
    assert_eq!(
        statuses,
        vec![
            TaskResultStatus::Successful,
            TaskResultStatus::Ready,
            TaskResultStatus::Failed
        ]
    );
    let stored = get(&b, &tasks[1].result.id).unwrap();
    assert_eq!(stored.errors.len(), 1, "the error is recorded once");
}

/// The retry's read-back does not mistake a rescue for the completion: a task rescued (READY,
/// same token, a `WorkerLost` error) before the late completion is still not applied.
#[test]
fn postgres_a_retried_completion_of_a_rescued_task_is_not_applied() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    let (b, _) = db
        .try_backend("default", json!({"max_attempts": 3}))
        .unwrap();
    enqueue(&b, "default");
    let task = claim(&b, "w", 1).remove(0);
    db.advance_secs(61);
    assert_eq!(rescue(&b), 1);
    plan(&schema, Loss::AfterCommit);
    let retry_at = db.now() + chrono::Duration::seconds(30);
    let acks = complete(&b, &[failure(&task, Some(retry_at))]);
    assert!(!acks[0].applied);
    let stored = get(&b, &task.result.id).unwrap();
    assert_eq!(stored.errors.len(), 1);
    assert_eq!(
        stored.errors[0].exception_class_path,
        "taskhost::WorkerLost"
    );
}

/// A release (a worker handing back prefetched tasks, or stopping) whose session ended is
/// retried: the tasks are READY again at once, not left RUNNING for a rescue after their lease
/// (which a crash suite at the defaults saw as a `WorkerLost` error with no worker lost).
#[test]
fn postgres_a_release_lost_before_or_after_its_commit_hands_the_tasks_back() {
    let Some((db, schema)) = postgres() else {
        return;
    };
    let (b, _) = db.backend();
    for loss in [Loss::BeforeWrite, Loss::AfterCommit] {
        enqueue(&b, "default");
        enqueue(&b, "default");
        let claimed = claim(&b, "w", 2);
        assert_eq!(claimed.len(), 2);
        let tasks: Vec<_> = claimed.iter().collect();
        plan(&schema, loss);
        release(&b, &lease("w", &tasks, 0.0));
        for task in &claimed {
            let r = get(&b, &task.result.id).unwrap();
            assert_eq!(r.status, TaskResultStatus::Ready, "{loss:?}");
        }
        let again = claim(&b, "w2", 5);
        assert_eq!(again.len(), 2, "{loss:?}");
        assert!(complete(
            &b,
            &[success(&again[0], json!(1)), success(&again[1], json!(2))]
        )
        .iter()
        .all(|a| a.applied));
    }
}
