//! Claiming: order, deferral, queue filters, aliases, concurrency and index use.

use super::api::*;
use super::harness::{on_both_databases, Kind, TestDb};
use chrono::Duration;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use taskhost_plugin_api::{TaskResultStatus, Text};

on_both_databases!(
    claims_by_priority_then_run_after_then_enqueue_order,
    one_at_a_time_claims_follow_the_same_order,
    a_future_run_after_is_not_claimed_until_due,
    queue_filters_and_exclusions_are_honoured,
    a_claim_marks_tasks_running_under_a_lease,
    a_claim_only_takes_tasks_of_its_alias,
    concurrent_claims_hand_out_every_task_exactly_once,
    the_claim_walks_the_claim_index_without_sorting,
);

/// Within a priority and `run_after`, enqueue time decides, then the id: `d`'s id is older
/// than `a`'s (UUID v7, made first) but `a` was enqueued first.
fn claims_by_priority_then_run_after_then_enqueue_order(db: TestDb) {
    let (b, _) = db.backend();
    let past = db.now() - Duration::seconds(5);
    let d_request = task("t::d", "default", 0, None);
    let enqueue = |request| {
        db.tick();
        enqueue_request(&b, request)
    };
    let a = enqueue(task("t::a", "default", 0, None));
    let bb = enqueue(task("t::b", "default", 10, None));
    let c = enqueue(task("t::c", "default", 0, Some(past)));
    let d = enqueue(d_request);
    let e = enqueue(task("t::e", "default", -5, None));
    let f = enqueue(task("t::f", "default", 10, Some(past)));
    assert!(d.id < a.id && d.enqueued_at > a.enqueued_at);
    let claimed = claim(&b, "w1", 10);
    let expected: Vec<Text> = [f, bb, c, a, d, e].into_iter().map(|r| r.id).collect();
    assert_eq!(claimed_ids(&claimed), expected);
}

fn one_at_a_time_claims_follow_the_same_order(db: TestDb) {
    let (b, _) = db.backend();
    let low = enqueue_request(&b, task("t::low", "default", -1, None));
    let first = enqueue(&b, "default");
    let second = enqueue(&b, "default");
    let high = enqueue_request(&b, task("t::high", "default", 100, None));
    let mut order = Vec::new();
    loop {
        let claimed = claim(&b, "w1", 1);
        if claimed.is_empty() {
            break;
        }
        order.extend(claimed_ids(&claimed));
    }
    let expected: Vec<Text> = [high, first, second, low]
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(order, expected);
}

fn a_future_run_after_is_not_claimed_until_due(db: TestDb) {
    let (b, _) = db.backend();
    let later = db.now() + Duration::seconds(60);
    let deferred = enqueue_request(&b, task("t::later", "default", 0, Some(later)));
    assert_eq!(get(&b, &deferred.id).unwrap().task.run_after, Some(later));
    assert!(claim(&b, "w1", 10).is_empty());
    db.advance_secs(61);
    assert_eq!(claimed_ids(&claim(&b, "w1", 10)), vec![deferred.id]);
}

fn queue_filters_and_exclusions_are_honoured(db: TestDb) {
    let (b, _) = db.backend();
    let default = enqueue(&b, "default");
    let emails = enqueue(&b, "emails");
    let reports = enqueue(&b, "reports");
    let only_emails = claim_with(&b, &claim_request("w", Some(&["emails", "nope"]), 10));
    assert_eq!(claimed_ids(&only_emails), vec![emails.id]);
    let mut all_but_reports = claim_request("w", None, 10);
    all_but_reports.exclude_queues = vec!["reports".into()];
    assert_eq!(
        claimed_ids(&claim_with(&b, &all_but_reports)),
        vec![default.id]
    );
    assert!(claim_with(&b, &claim_request("w", Some(&[]), 10)).is_empty());
    assert_eq!(claimed_ids(&claim(&b, "w", 10)), vec![reports.id]);
}

fn a_claim_marks_tasks_running_under_a_lease(db: TestDb) {
    let (b, _) = db.backend();
    let enqueued = enqueue(&b, "default");
    let now = db.now();
    let claimed = claim(&b, "worker-1", 5);
    assert_eq!(claimed.len(), 1);
    let task = &claimed[0];
    assert_eq!((task.lease_token, task.max_attempts), (1, 1));
    let r = &task.result;
    assert_eq!(r.status, TaskResultStatus::Running);
    assert_eq!(r.worker_ids, vec!["worker-1".to_string()]);
    assert!(r.started_at.unwrap() >= now);
    assert_eq!(r.started_at, r.last_attempted_at);
    assert_eq!(
        (value_of(&r.args), value_of(&r.kwargs)),
        (json!([1, "two"]), json!({"three": 3.5}))
    );
    assert_eq!(r.enqueued_at, enqueued.enqueued_at);
    assert_eq!(get(&b, &r.id).unwrap(), task.result, "read back as claimed");
    assert!(
        claim(&b, "worker-2", 5).is_empty(),
        "a RUNNING task is not claimed again"
    );
}

fn a_claim_only_takes_tasks_of_its_alias(db: TestDb) {
    let (default, _) = db.backend();
    let (other, _) = db.try_backend("other", json!({})).unwrap();
    let mine = enqueue(&other, "default");
    assert_eq!(mine.backend, "other");
    enqueue(&default, "default");
    assert_eq!(claimed_ids(&claim(&other, "w", 10)), vec![mine.id.clone()]);
    assert!(claim(&other, "w", 10).is_empty());
    assert_eq!(get(&default, &mine.id).unwrap().backend, "other");
}

fn concurrent_claims_hand_out_every_task_exactly_once(db: TestDb) {
    const TASKS: usize = 400;
    let (b, _) = db.backend();
    let requests: Vec<_> = (0..TASKS)
        .map(|i| task("t::n", "default", (i % 7) as i32, None))
        .collect();
    enqueue_many(&b, &requests).unwrap();
    let shared = Arc::new(b);
    let db = Arc::new(db);
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let (shared, db) = (shared.clone(), db.clone());
            std::thread::spawn(move || {
                // Half the threads share one backend (one pool), half have their own, as
                // separate worker processes would.
                let own = (n % 2 == 1).then(|| db.backend().0);
                let backend = own.as_ref().unwrap_or(&shared);
                let worker = format!("w{n}");
                let mut ids = Vec::new();
                loop {
                    let claimed = claim(backend, &worker, 3);
                    if claimed.is_empty() {
                        return ids;
                    }
                    ids.extend(claimed_ids(&claimed));
                }
            })
        })
        .collect();
    let all: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), TASKS, "every task claimed once");
    assert_eq!(unique.len(), TASKS, "no task claimed twice");
}

fn the_claim_walks_the_claim_index_without_sorting(db: TestDb) {
    let (b, _) = db.backend();
    let requests: Vec<_> = (0..10_000)
        .map(|i| task("t::n", ["default", "emails"][i % 2], (i % 5) as i32, None))
        .collect();
    enqueue_many(&b, &requests).unwrap();
    let plan = match db.kind {
        Kind::Sqlite => {
            let conn = db.sqlite();
            let sql = format!("EXPLAIN QUERY PLAN {}", crate::sqlite::CLAIM_SELECT);
            let mut stmt = conn.prepare(&sql).unwrap();
            let rows = stmt
                .query_map(
                    rusqlite::named_params! {
                        ":alias": "default", ":now": 0, ":queues": "[\"emails\"]",
                        ":exclude": "[]", ":limit": 5,
                    },
                    |r| r.get::<_, String>(3),
                )
                .unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
        }
        Kind::Postgres => {
            let mut client = db.postgres();
            client.batch_execute("ANALYZE taskhost_tasks").unwrap();
            let sql = format!("EXPLAIN {}", crate::postgres::CLAIM_SELECT);
            let queues = Some(vec!["emails".to_string()]);
            let rows = client
                .query(
                    &sql,
                    &[&"default", &db.now(), &queues, &Vec::<String>::new(), &5i64],
                )
                .unwrap();
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    assert!(
        plan.contains("taskhost_tasks_claim_idx"),
        "the claim does not use the index:\n{plan}"
    );
    assert!(
        !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
        "the claim sorts:\n{plan}"
    );
}

/// SQLite only: a claim waits for another process's write transaction instead of failing with
/// "database is locked".
#[test]
fn sqlite_claims_wait_for_another_writer() {
    let db = TestDb::new(Kind::Sqlite).unwrap();
    let (b, _) = db.backend();
    let enqueued = enqueue(&b, "default");
    let (locked, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let holder = {
        let conn = db.sqlite();
        std::thread::spawn(move || {
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            locked.0.send(()).unwrap();
            release.1.recv().unwrap();
            conn.execute_batch("COMMIT").unwrap();
        })
    };
    locked.1.recv().unwrap();
    let releaser = std::thread::spawn({
        let release = release.0.clone();
        move || {
            // Let the other writer go only once this claim is blocked behind it.
            std::thread::sleep(std::time::Duration::from_millis(200));
            release.send(()).unwrap();
        }
    });
    assert_eq!(claimed_ids(&claim(&b, "w", 1)), vec![enqueued.id]);
    releaser.join().unwrap();
    holder.join().unwrap();
}

/// PostgreSQL: a large claim updates the rows its locking read returned, by their addresses,
/// and reads no other row of the table: joined back by id, PostgreSQL hashed the claimed ids and
/// read the whole table (finished results included) once a claim took more than a few rows.
#[test]
fn postgres_a_large_claim_reads_only_the_rows_it_takes() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let (b, _) = db.backend();
    let requests: Vec<_> = (0..10_000)
        .map(|_| task("t::n", "default", 0, None))
        .collect();
    enqueue_many(&b, &requests).unwrap();
    let mut client = db.postgres();
    client.batch_execute("ANALYZE taskhost_tasks").unwrap();
    let plan: Vec<String> = client
        .query(
            &format!("EXPLAIN {}", *crate::postgres::CLAIM),
            &[
                &"default",
                &db.now(),
                &None::<Vec<String>>,
                &Vec::<String>::new(),
                &1000i64,
                &"w",
                &(db.now() + Duration::seconds(60)),
                &uuid::Uuid::now_v7(),
                &1i64,
            ],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        !plan.contains("Seq Scan"),
        "the claim reads the table:\n{plan}"
    );
    assert!(plan.contains("Tid Scan"), "{plan}");
    assert!(plan.contains("taskhost_tasks_claim_idx"), "{plan}");
    assert_eq!(claim(&b, "w", 1000).len(), 1000);
}
