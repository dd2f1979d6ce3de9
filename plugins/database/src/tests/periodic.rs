//! The periodic operations (`taskhost.periodic.sync`, `.list`, `.enqueue`) on the store: a
//! tick is enqueued once however often it is asked for, ticks at or before the last tick are
//! refused, a removed schedule enqueues nothing, and bad requests are named.

use super::api::*;
use super::harness::{on_both_databases, TestDb};
use crate::periodic::{PERIODIC_ENQUEUE, PERIODIC_LIST, PERIODIC_SYNC};
use crate::DatabaseBackend;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use taskhost_plugin_api::{Backend, ErrorKind};

on_both_databases!(
    a_tick_is_enqueued_once_and_the_last_tick_only_moves_forward,
    sync_adds_updates_and_removes_schedules,
    bad_periodic_requests_are_refused,
);

fn call(b: &DatabaseBackend, operation: &str, request: Value) -> Value {
    let response = b.call_ext(operation, &request.to_string()).unwrap();
    serde_json::from_str(&response).unwrap()
}

fn schedule(name: &str, cron: &str) -> Value {
    json!({
        "name": name, "task_path": "app::tasks::job", "cron": cron, "timezone": "UTC",
        "missed": "skip", "queue_name": "default", "priority": 0, "args": [1], "kwargs": {},
    })
}

fn sync(b: &DatabaseBackend, db: &TestDb, schedules: Vec<Value>) -> Value {
    call(
        b,
        PERIODIC_SYNC,
        json!({ "now": db.now(), "schedules": schedules }),
    )
}

fn ticks(b: &DatabaseBackend, name: &str, through: DateTime<Utc>, at: &[DateTime<Utc>]) -> Value {
    let ticks: Vec<Value> = at
        .iter()
        .map(|t| json!({ "tick": t, "task": task("app::tasks::job", "default", 0, Some(*t)) }))
        .collect();
    call(
        b,
        PERIODIC_ENQUEUE,
        json!({ "schedule": name, "through": through, "ticks": ticks }),
    )
}

fn a_tick_is_enqueued_once_and_the_last_tick_only_moves_forward(db: TestDb) {
    let (b, _) = db.backend();
    sync(&b, &db, vec![schedule("every", "* * * * * *")]);
    let t1 = db.now() + Duration::seconds(1);
    let t2 = t1 + Duration::seconds(1);
    let first = ticks(&b, "every", t1, &[t1]);
    assert_eq!(first["found"], json!(true));
    assert_eq!(first["enqueued"].as_array().unwrap().len(), 1);
    // The same tick again (another worker, same moment): nothing.
    let again = ticks(&b, "every", t1, &[t1]);
    assert_eq!(again["enqueued"], json!([]));
    // An older view (ticks t1 and t2): only t2.
    let both = ticks(&b, "every", t2, &[t1, t2]);
    let enqueued = both["enqueued"].as_array().unwrap();
    assert_eq!(enqueued.len(), 1);
    assert_eq!(enqueued[0]["tick"], json!(t2));
    assert_eq!(results_count(&b), 2);
    let listed = call(&b, PERIODIC_LIST, json!({}));
    assert_eq!(listed[0]["last_tick"], json!(t2));
    assert_eq!(listed[0]["last_task_id"], enqueued[0]["id"]);
    // A skipped tick (none enqueued) still moves the last tick.
    let t3 = t2 + Duration::seconds(5);
    assert_eq!(ticks(&b, "every", t3, &[])["enqueued"], json!([]));
    assert_eq!(
        call(&b, PERIODIC_LIST, json!({}))[0]["last_tick"],
        json!(t3)
    );
    assert_eq!(ticks(&b, "every", t3, &[t3])["enqueued"], json!([]));
    // A schedule not stored enqueues nothing.
    let gone = ticks(&b, "gone", t3, &[t3]);
    assert_eq!(gone["found"], json!(false));
    assert_eq!(results_count(&b), 2);
}

fn results_count(b: &DatabaseBackend) -> usize {
    b.results().unwrap().len()
}

fn sync_adds_updates_and_removes_schedules(db: TestDb) {
    let (b, _) = db.backend();
    let added = sync(
        &b,
        &db,
        vec![schedule("a", "0 * * * *"), schedule("b", "0 7 * * *")],
    );
    assert_eq!(
        added,
        json!({ "added": ["a", "b"], "updated": [], "removed": [] })
    );
    let t = db.now();
    ticks(&b, "a", t, &[]);
    let changed = sync(&b, &db, vec![schedule("a", "30 * * * *")]);
    assert_eq!(
        changed,
        json!({ "added": [], "updated": ["a"], "removed": ["b"] })
    );
    let listed = call(&b, PERIODIC_LIST, json!({}));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["cron"], json!("30 * * * *"));
    assert_eq!(listed[0]["args"], json!([1]));
    // An update keeps the last tick.
    assert_eq!(listed[0]["last_tick"], json!(t));
    let same = sync(&b, &db, vec![schedule("a", "30 * * * *")]);
    assert_eq!(same, json!({ "added": [], "updated": [], "removed": [] }));
}

fn bad_periodic_requests_are_refused(db: TestDb) {
    let (b, _) = db.backend();
    let refused =
        |operation: &str, request: Value| b.call_ext(operation, &request.to_string()).unwrap_err();
    let twice = refused(
        PERIODIC_SYNC,
        json!({ "now": db.now(), "schedules": [schedule("a", "* * * * *"), schedule("a", "* * * * *")] }),
    );
    assert_eq!(twice.kind, ErrorKind::INVALID_REQUEST);
    assert!(
        twice.message().contains("'a' is given twice"),
        "{}",
        twice.message()
    );
    let unknown = refused(
        PERIODIC_SYNC,
        json!({ "now": db.now(), "schedules": [], "extra": 1 }),
    );
    assert!(
        unknown.message().contains(PERIODIC_SYNC),
        "{}",
        unknown.message()
    );
    sync(&b, &db, vec![schedule("a", "* * * * *")]);
    let t = db.now();
    let late = refused(
        PERIODIC_ENQUEUE,
        json!({ "schedule": "a", "through": t - Duration::seconds(1),
                "ticks": [{ "tick": t, "task": task("app::tasks::job", "default", 0, Some(t)) }] }),
    );
    assert!(
        late.message().contains("after `through`"),
        "{}",
        late.message()
    );
}
