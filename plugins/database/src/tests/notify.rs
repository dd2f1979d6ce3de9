//! Enqueueing inside the application's own transaction, and LISTEN/NOTIFY wake-ups.

use super::api::*;
use super::harness::{on_both_databases, Kind, TestDb};
use crate::TRANSACTIONAL_INSERT_SQL;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use taskhost_plugin_api::{ops, wire::TaskResultStatus, ErrorKind};

on_both_databases!(
    the_transactional_insert_commits_and_rolls_back_with_the_app,
    wait_for_tasks_wakes_on_an_enqueue_to_a_watched_queue,
);

/// Run the backend's transactional insert on a connection of our own, then commit or roll back.
fn insert_in_own_transaction(db: &TestDb, sql: &str, id: uuid::Uuid, queue: &str, commit: bool) {
    match db.kind {
        Kind::Sqlite => {
            let mut conn = db.sqlite();
            let tx = conn.transaction().unwrap();
            tx.execute("CREATE TABLE IF NOT EXISTS app_orders (n INTEGER)", [])
                .unwrap();
            tx.execute(
                sql,
                rusqlite::params![
                    id.to_string(),
                    "app::tasks::ship",
                    "[7]",
                    queue,
                    5,
                    None::<i64>,
                    None::<i64>,
                    "{\"fast\": true}",
                    None::<i64>,
                    None::<i64>
                ],
            )
            .unwrap();
            if commit {
                tx.commit().unwrap()
            } else {
                tx.rollback().unwrap()
            }
        }
        Kind::Postgres => {
            let mut client = db.postgres();
            let mut tx = client.transaction().unwrap();
            let none: Option<i32> = None;
            let row = tx
                .query_one(
                    sql,
                    &[
                        &id,
                        &"app::tasks::ship",
                        &json!([7]),
                        &queue,
                        &5i32,
                        &None::<chrono::DateTime<chrono::Utc>>,
                        &none,
                        &json!({"fast": true}),
                        &None::<bool>,
                        &None::<bool>,
                    ],
                )
                .unwrap();
            assert_eq!(
                row.get::<_, uuid::Uuid>(0),
                id,
                "taskhost_enqueue returns the id"
            );
            if commit {
                tx.commit().unwrap()
            } else {
                tx.rollback().unwrap()
            }
        }
    }
}

fn the_transactional_insert_commits_and_rolls_back_with_the_app(db: TestDb) {
    let (b, _) = db.backend();
    let doc: Value = ext(&b, TRANSACTIONAL_INSERT_SQL, json!({})).unwrap();
    let sql = doc["sql"].as_str().unwrap().to_string();
    assert_eq!(doc["parameters"].as_array().unwrap().len(), 10);
    let rolled_back = uuid::Uuid::now_v7();
    insert_in_own_transaction(&db, &sql, rolled_back, "default", false);
    assert_eq!(
        get(&b, &rolled_back.to_string()).unwrap_err().kind,
        ErrorKind::RESULT_DOES_NOT_EXIST
    );
    let committed = uuid::Uuid::now_v7();
    insert_in_own_transaction(&db, &sql, committed, "default", true);
    let r = get(&b, &committed.to_string()).unwrap();
    assert_eq!(
        (r.status, r.task.priority, r.backend.as_str()),
        (TaskResultStatus::Ready, 5, "default")
    );
    assert_eq!(
        (r.args.clone(), r.kwargs.get("fast")),
        (vec![json!(7)], Some(&json!(true)))
    );
    let claimed = claim(&b, "w", 5);
    assert_eq!(claimed_ids(&claimed), vec![committed.to_string()]);
    assert_eq!(claimed[0].max_attempts, 1);
}

fn wait_for_tasks_wakes_on_an_enqueue_to_a_watched_queue(db: TestDb) {
    let (b, _) = db.backend();
    let wait = |queues: Value, timeout: f64| {
        ext::<Value>(
            &b,
            ops::WAIT_FOR_TASKS,
            json!({"queues": queues, "timeout_secs": timeout}),
        )
    };
    if db.kind == Kind::Sqlite {
        let err = wait(json!(null), 0.0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NOT_SUPPORTED);
        assert_eq!(
            err.message.as_str(),
            "This backend does not support 'wait_for_tasks'."
        );
        return;
    }
    // The first wait opens the LISTEN connection; later notifications are buffered on it.
    assert_eq!(
        wait(json!(["emails"]), 0.0).unwrap(),
        json!({"notified": false})
    );
    enqueue(&b, "reports");
    let started = Instant::now();
    assert_eq!(
        wait(json!(["emails"]), 0.3).unwrap(),
        json!({"notified": false}),
        "other queue"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    std::thread::scope(|s| {
        let waiter = s.spawn(|| wait(json!(["emails"]), 30.0).unwrap());
        enqueue(&b, "emails");
        let started = Instant::now();
        assert_eq!(waiter.join().unwrap(), json!({"notified": true}));
        assert!(started.elapsed() < Duration::from_secs(10));
    });
    let err = ext::<Value>(&b, ops::WAIT_FOR_TASKS, json!({"timeout_secs": -1})).unwrap_err();
    assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
    b_close_ends_listening(&b);
}

fn b_close_ends_listening(b: &crate::DatabaseBackend) {
    use taskhost_plugin_api::Backend;
    b.close();
    let err = ext::<Value>(b, ops::WAIT_FOR_TASKS, json!({"timeout_secs": 0})).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UNAVAILABLE);
}

/// PostgreSQL only: sessions the server ends (restart, `pg_terminate_backend`) are replaced.
#[test]
fn postgres_operations_survive_terminated_sessions() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let app = format!("taskhost_unit_{}", db.base["schema"].as_str().unwrap());
    let url = format!("{}?application_name={app}", super::harness::pg_url());
    let (b, _) = db
        .try_backend("default", json!({ "url": url, "pool_size": 2 }))
        .unwrap();
    let wait =
        |timeout: f64| ext::<Value>(&b, ops::WAIT_FOR_TASKS, json!({"timeout_secs": timeout}));
    // Open the LISTEN connection and two pooled connections.
    assert_eq!(wait(0.0).unwrap(), json!({"notified": false}));
    std::thread::scope(|s| {
        let other = s.spawn(|| enqueue(&b, "default"));
        enqueue(&b, "default");
        other.join().unwrap();
    });
    assert_eq!(
        wait(0.0).unwrap(),
        json!({"notified": true}),
        "the enqueues were heard"
    );
    let drained = (0..3).find(|_| wait(0.0).unwrap() == json!({"notified": false}));
    assert!(drained.is_some(), "one notification per enqueue at most");
    let killed: i64 = db
        .postgres()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert!(killed >= 2, "only {killed} sessions were terminated");
    let after = enqueue(&b, "default");
    assert_eq!(get(&b, &after.id).unwrap().id, after.id);
    assert_eq!(claim(&b, "w", 10).len(), 3);
    assert_eq!(
        wait(5.0).unwrap(),
        json!({"notified": true}),
        "a lost LISTEN says look now"
    );
    assert_eq!(
        wait(0.0).unwrap(),
        json!({"notified": false}),
        "and then listens again"
    );
}
