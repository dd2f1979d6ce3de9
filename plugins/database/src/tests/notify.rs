//! Enqueueing inside the application's own transaction, and `wait_for_tasks` wake-ups
//! (PostgreSQL: LISTEN/NOTIFY; SQLite: a watch on the `-wal` file, see `sqlite/wake.rs`).

use super::api::*;
use super::harness::{on_both_databases, Kind, TestDb};
use crate::TRANSACTIONAL_INSERT_SQL;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use taskhost_plugin_api::{Backend, ErrorKind, TaskResultStatus};

/// The backend's own [`TRANSACTIONAL_INSERT_SQL`] operation: its JSON answer.
fn insert_sql(b: &crate::DatabaseBackend) -> Value {
    serde_json::from_str(&b.call_ext(TRANSACTIONAL_INSERT_SQL, "{}").unwrap()).unwrap()
}

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
    let doc = insert_sql(&b);
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
        (value_of(&r.args), value_of(&r.kwargs)),
        (json!([7]), json!({"fast": true}))
    );
    let claimed = claim(&b, "w", 5);
    assert_eq!(claimed_ids(&claimed), vec![committed.to_string()]);
    assert_eq!(claimed[0].max_attempts, 1);
}

fn wait_for_tasks_wakes_on_an_enqueue_to_a_watched_queue(db: TestDb) {
    let (b, _) = db.backend();
    let emails: Option<&[&str]> = Some(&["emails"]);
    // The first wait opens the LISTEN connection (SQLite: starts the watch); later
    // notifications are buffered on it.
    assert_eq!(wait_for(&b, emails, 0.0), Ok(false));
    enqueue(&b, "reports");
    let started = Instant::now();
    assert_eq!(wait_for(&b, emails, 0.3), Ok(false), "other queue");
    assert!(started.elapsed() >= Duration::from_millis(250));
    std::thread::scope(|s| {
        let waiter = s.spawn(|| wait_for(&b, emails, 30.0));
        enqueue(&b, "emails");
        let started = Instant::now();
        assert_eq!(waiter.join().unwrap(), Ok(true));
        assert!(started.elapsed() < Duration::from_secs(10));
    });
    for timeout in [-1.0, f64::NAN, f64::INFINITY] {
        let err = wait_for(&b, None, timeout).unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
        let expected =
            format!("wait_for_tasks needs a timeout of zero or more seconds, got {timeout}");
        assert_eq!(err.message(), expected);
    }
    b_close_ends_listening(&b);
}

fn b_close_ends_listening(b: &crate::DatabaseBackend) {
    b.close();
    let err = wait_for(b, None, 0.0).unwrap_err();
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
    let wait = |timeout: f64| wait_for(&b, None, timeout);
    // Open the LISTEN connection and two pooled connections.
    assert!(!wait(0.0).unwrap());
    std::thread::scope(|s| {
        let other = s.spawn(|| enqueue(&b, "default"));
        enqueue(&b, "default");
        other.join().unwrap();
    });
    assert!(wait(0.0).unwrap(), "the enqueues were heard");
    let drained = (0..3).find(|_| wait(0.0) == Ok(false));
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
    assert!(wait(5.0).unwrap(), "a lost LISTEN says look now");
    assert!(!wait(0.0).unwrap(), "and then listens again");
}

/// `wait_for_tasks` on the SQLite test database of `b`; an error as `kind: message`.
fn wait_on(
    b: &crate::DatabaseBackend,
    queues: Option<&[&str]>,
    timeout: f64,
) -> Result<bool, String> {
    wait_for(b, queues, timeout).map_err(|e| format!("{}: {}", e.kind.name(), e.message()))
}

/// Run `wait` on a thread, give it a moment to block, run `act`, and return what the wait
/// answered and how long it took in all. The pause only makes it likely that the wait is
/// already blocked when `act` runs; the answer must be the same either way.
fn wait_while<T: Send>(wait: impl FnOnce() -> T + Send, act: impl FnOnce()) -> (T, Duration) {
    std::thread::scope(|s| {
        let started = Instant::now();
        let waiter = s.spawn(wait);
        std::thread::sleep(Duration::from_millis(100));
        act();
        (waiter.join().unwrap(), started.elapsed())
    })
}

/// SQLite: a wait in progress wakes on an enqueue made through another backend instance (as
/// another process's would be), a bulk enqueue, and an application's own transactional insert.
#[test]
fn sqlite_wait_wakes_on_enqueues_from_other_connections() {
    let db = TestDb::new(Kind::Sqlite).unwrap();
    let (waiter, _) = db.backend();
    let (app, _) = db.backend();
    assert_eq!(wait_on(&waiter, None, 0.0), Ok(false), "empty");
    let (woke, took) = wait_while(
        || wait_on(&waiter, None, 30.0),
        || {
            enqueue(&app, "default");
        },
    );
    assert_eq!(woke, Ok(true), "enqueue from another instance");
    assert!(
        took < Duration::from_secs(20),
        "woken, not timed out: {took:?}"
    );
    assert_eq!(claim(&waiter, "w", 10).len(), 1);

    let (woke, took) = wait_while(
        || wait_on(&waiter, Some(&["emails"]), 30.0),
        || {
            let requests = [
                task("app::tasks::job", "emails", 0, None),
                task("app::tasks::job", "emails", 0, None),
            ];
            enqueue_many(&app, &requests).unwrap();
        },
    );
    assert_eq!(woke, Ok(true), "bulk enqueue");
    assert!(
        took < Duration::from_secs(20),
        "woken, not timed out: {took:?}"
    );
    assert_eq!(claim(&waiter, "w", 10).len(), 2);

    let sql = insert_sql(&app)["sql"].as_str().unwrap().to_string();
    let id = uuid::Uuid::now_v7();
    let (woke, took) = wait_while(
        || wait_on(&waiter, Some(&["emails"]), 30.0),
        || insert_in_own_transaction(&db, &sql, id, "emails", true),
    );
    assert_eq!(woke, Ok(true), "the application's own transaction");
    assert!(
        took < Duration::from_secs(20),
        "woken, not timed out: {took:?}"
    );
    assert_eq!(claimed_ids(&claim(&waiter, "w", 10)), vec![id.to_string()]);
}

/// SQLite: with nothing enqueued, or only what the waiter does not want (another queue, a
/// task not yet due), a wait ends at its timeout with `notified: false` — even while other
/// workers claim and complete tasks, which write to the database too.
#[test]
fn sqlite_wait_times_out_when_nothing_wanted_is_ready() {
    let db = TestDb::new(Kind::Sqlite).unwrap();
    let (waiter, _) = db.backend();
    let (busy, _) = db.backend();
    let started = Instant::now();
    assert_eq!(wait_on(&waiter, None, 0.2), Ok(false));
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "honours its timeout"
    );

    let later = db.now() + chrono::Duration::hours(1);
    let (woke, took) = wait_while(
        || wait_on(&waiter, Some(&["emails"]), 0.6),
        || {
            enqueue(&busy, "reports");
            enqueue_request(&busy, task("app::tasks::job", "emails", 0, Some(later)));
            let claimed = claim_with(&busy, &claim_request("busy", Some(&["reports"]), 5));
            assert_eq!(claimed.len(), 1);
            complete(&busy, &[success(&claimed[0], json!(1))]);
        },
    );
    assert_eq!(
        woke,
        Ok(false),
        "other queue, deferred task, claims and completions"
    );
    assert!(
        took >= Duration::from_millis(600),
        "honours its timeout: {took:?}"
    );
}

/// SQLite: a task enqueued before the wait started, and not claimed yet, is seen at once — by
/// a waiter's first wait, and by a later one whose watch was already running — but a task the
/// worker leaves unclaimed does not wake every later wait (no busy loop).
#[test]
fn sqlite_wait_sees_tasks_enqueued_before_it_started() {
    let db = TestDb::new(Kind::Sqlite).unwrap();
    let (app, _) = db.backend();
    enqueue(&app, "default");
    let (waiter, _) = db.backend();
    assert_eq!(wait_on(&waiter, None, 30.0), Ok(true), "first wait");
    assert_eq!(wait_on(&waiter, Some(&["default"]), 30.0), Ok(true));
    assert_eq!(
        wait_on(&waiter, None, 0.2),
        Ok(false),
        "nothing was written since that check"
    );
    assert_eq!(claim(&waiter, "w", 10).len(), 1);
    assert_eq!(wait_on(&waiter, None, 0.0), Ok(false));
    enqueue(&app, "default");
    assert_eq!(
        wait_on(&waiter, None, 30.0),
        Ok(true),
        "enqueued between two waits"
    );
}

/// SQLite: `close()` ends a pending wait (UNAVAILABLE), and later waits fail the same way.
#[test]
fn sqlite_close_ends_a_pending_wait() {
    let db = TestDb::new(Kind::Sqlite).unwrap();
    let (waiter, _) = db.backend();
    let (ended, took) = wait_while(|| wait_on(&waiter, None, 30.0), || waiter.close());
    let err = ended.unwrap_err();
    assert!(err.starts_with("unavailable:"), "{err}");
    assert!(err.contains("closed"), "{err}");
    assert!(took < Duration::from_secs(20), "ended by close: {took:?}");
    let err = wait_on(&waiter, None, 0.0).unwrap_err();
    assert!(err.starts_with("unavailable:"), "{err}");
}
