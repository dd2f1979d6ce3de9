//! Bulk enqueues of long runs of one task, which SQLite inserts 64 and 8 rows per statement:
//! every row is stored as sent and listed in the order sent, whatever mix of tasks, options
//! and keyword arguments a batch holds; a duplicate id anywhere in a run is named, and nothing
//! of the batch is stored.

use super::api::*;
use super::harness::{on_both_databases, TestDb};
use serde_json::json;
use taskhost_plugin_api::{EnqueueRequest, ErrorKind};

on_both_databases!(
    runs_of_one_task_are_stored_as_sent_and_in_order,
    a_duplicate_id_inside_a_long_run_is_named,
);

/// Ids that sort in the order made (PostgreSQL lists ties of `enqueued_at` by id, SQLite by
/// insertion).
fn id(i: usize) -> String {
    uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128).to_string()
}

/// 233 requests: runs of one task of 150 rows (2 × 64 + 2 × 8 + 6 × 1), then one of another
/// task, 9 rows whose keyword arguments alternate, 70 rows of the first task with other
/// options, and 3 more plain ones; arguments differ on every row.
fn batch(db: &TestDb) -> Vec<EnqueueRequest> {
    let later = db.now() + chrono::Duration::seconds(30);
    let mut requests = Vec::new();
    let mut push = |mut r: EnqueueRequest| {
        r.id = id(requests.len()).into();
        r.args = json_of(&json!([requests.len(), "ü\"\n", {"n": [1.5, null]}]));
        requests.push(r);
    };
    for _ in 0..150 {
        push(task("app::bulk::a", "default", 0, None));
    }
    push(task("app::bulk::b", "default", 0, None));
    for i in 0..9 {
        let mut r = task("app::bulk::a", "default", 0, None);
        r.kwargs = json_of(&json!({ "k": i % 2 }));
        push(r);
    }
    for _ in 0..70 {
        let mut r = task("app::bulk::a", "other", 5, Some(later));
        r.task.max_attempts = Some(3);
        r.task.timeout_secs = Some(1.5);
        r.task.takes_context = true;
        r.task.is_async = true;
        push(r);
    }
    for _ in 0..3 {
        push(task("app::bulk::a", "default", 0, None));
    }
    requests
}

fn runs_of_one_task_are_stored_as_sent_and_in_order(db: TestDb) {
    let (b, _) = db.backend();
    let requests = batch(&db);
    let results = enqueue_many(&b, &requests).unwrap();
    assert_eq!(results.len(), requests.len());
    for (request, result) in requests.iter().zip(&results) {
        assert_eq!(result.id, request.id);
        assert_eq!(result.task.path, request.task.path);
        assert_eq!(result.args, request.args);
        assert_eq!(result.kwargs, request.kwargs);
        let stored = get(&b, &request.id).unwrap();
        assert_stored(db.kind, &stored, result);
    }
    let listed: Vec<String> = all(&b).iter().map(|r| r.id.to_string()).collect();
    let sent: Vec<String> = requests.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(listed, sent, "listed in the order enqueued");
}

fn a_duplicate_id_inside_a_long_run_is_named(db: TestDb) {
    let (b, _) = db.backend();
    let stored = enqueue(&b, "default");
    // Inside the second 64-row statement, inside an 8-row one, and the last single row; and
    // a duplicate of a row of the same batch.
    for at in [100, 140, 232] {
        let mut requests = batch(&db);
        requests[at].id = stored.id.clone();
        let err = enqueue_many(&b, &requests).unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST, "{err}");
        assert_eq!(
            err.message(),
            format!("A result with id '{}' is already stored.", stored.id)
        );
    }
    let mut requests = batch(&db);
    requests[120].id = requests[3].id.clone();
    let err = enqueue_many(&b, &requests).unwrap_err();
    assert_eq!(
        err.message(),
        format!("A result with id '{}' is already stored.", requests[3].id)
    );
    assert_eq!(all(&b).len(), 1, "all or none");
}
