//! Enqueueing in bulk, signals, listing, statistics and pruning.

use super::api::*;
use super::harness::{on_both_databases, Kind, TestDb};
use crate::DatabaseBackend;
use chrono::Duration;
use serde_json::{json, Value};
use taskhost_plugin_api::{
    Backend, Completion, ErrorKind, Json, Signal, TaskOutcome, TaskResultData, TaskResultStatus,
    Text,
};

on_both_databases!(
    enqueue_stores_a_ready_result_and_signals_it,
    enqueue_many_stores_ten_thousand_rows_in_one_go,
    enqueue_many_with_a_stored_id_stores_nothing,
    arguments_are_stored_as_the_json_text_sent,
    results_are_listed_oldest_first,
    list_results_filters_newest_first,
    queue_stats_count_per_queue_and_status,
    prune_deletes_only_old_finished_results,
    prune_works_through_a_limit_at_a_time,
    list_page_walks_the_store_newest_id_first_by_cursor,
    list_page_refuses_bad_requests,
    finished_per_minute_counts_each_minute_and_status,
);

fn enqueue_stores_a_ready_result_and_signals_it(db: TestDb) {
    let (b, host) = db.backend();
    let mut request = task(
        "app::tasks::send",
        "emails",
        -7,
        Some(db.now() + Duration::hours(1)),
    );
    request.task.takes_context = true;
    request.task.is_async = true;
    request.task.max_attempts = Some(4);
    request.task.timeout_secs = Some(2.5);
    let now = db.now();
    let r = enqueue_request(&b, request.clone());
    assert_eq!(r.id, request.id);
    assert_eq!(r.status, TaskResultStatus::Ready);
    assert!(r.enqueued_at.unwrap() >= now);
    assert_eq!(
        (r.started_at, r.finished_at, r.last_attempted_at),
        (None, None, None)
    );
    assert_eq!(
        (r.args.clone(), r.kwargs.clone()),
        (request.args.clone(), request.kwargs.clone())
    );
    assert_eq!(r.task, request.task);
    assert_eq!(r.backend, "default");
    assert!(r.worker_ids.is_empty() && r.errors.is_empty() && r.return_value.is_none());
    assert_stored(db.kind, &get(&b, &r.id).unwrap(), &r);
    assert_eq!(host.signals(), vec![(Signal::TASK_ENQUEUED, r)]);
    assert!(host.runs().is_empty(), "a queue store never runs a task");
}

fn enqueue_many_stores_ten_thousand_rows_in_one_go(db: TestDb) {
    let (b, host) = db.backend();
    let requests: Vec<_> = (0..10_000)
        .map(|i| task("t::bulk", "default", i % 3, None))
        .collect();
    let started = std::time::Instant::now();
    let results = enqueue_many(&b, &requests).unwrap();
    eprintln!(
        "{:?}: enqueue_many of 10k rows took {:?}",
        db.kind,
        started.elapsed()
    );
    assert_eq!(results.len(), 10_000);
    assert!(results.iter().zip(&requests).all(|(r, q)| r.id == q.id));
    assert_eq!(host.signals().len(), 10_000);
    let stats = stats(&b);
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].count, 10_000);
    let last = get(&b, &requests[9_999].id).unwrap();
    assert_stored(db.kind, &last, &results[9_999]);
}

fn enqueue_many_with_a_stored_id_stores_nothing(db: TestDb) {
    let (b, host) = db.backend();
    let stored = enqueue(&b, "default");
    let mut again = task("t::x", "default", 0, None);
    again.id = stored.id.clone();
    let err = enqueue_many(&b, &[task("t::new", "default", 0, None), again]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
    assert_eq!(
        err.message(),
        format!("A result with id '{}' is already stored.", stored.id)
    );
    assert_eq!(all(&b).len(), 1);
    assert_eq!(host.signals().len(), 1);
}

/// Arguments and return values are stored as the JSON text the host sent, whatever its
/// spacing, key order or escapes, and read back as that value: SQLite hands back the very
/// text, PostgreSQL its `jsonb` rendering of it.
fn arguments_are_stored_as_the_json_text_sent(db: TestDb) {
    let (b, _) = db.backend();
    let mut request = task("t::text", "default", 0, None);
    let args = r#"[ 1.5, "é\n\u00e9", {"z": null, "a": [true]}, 18446744073709551615 ]"#;
    request.args = Json::from_text(args).unwrap();
    request.kwargs = Json::from_text(r#"{ "b" : 2, "a" : 1 }"#).unwrap();
    let enqueued = enqueue_request(&b, request.clone());
    assert_eq!(
        (&enqueued.args, &enqueued.kwargs),
        (&request.args, &request.kwargs)
    );
    let claimed = claim(&b, "w", 1).remove(0);
    let stored = get(&b, &enqueued.id).unwrap();
    assert_eq!(
        (&stored.args, &stored.kwargs),
        (&claimed.result.args, &claimed.result.kwargs)
    );
    assert_eq!(value_of(&stored.args), value_of(&request.args));
    assert_eq!(value_of(&stored.kwargs), json!({"a": 1, "b": 2}));
    let kwargs = match db.kind {
        Kind::Sqlite => {
            assert_eq!(stored.args.as_str(), args);
            request.kwargs.as_str()
        }
        Kind::Postgres => r#"{"a": 1, "b": 2}"#,
    };
    assert_eq!(stored.kwargs.as_str(), kwargs);
    let value = Json::from_text(r#"{"sum": [1, 2.5, "x"], "n": null}"#).unwrap();
    let done = Completion {
        outcome: TaskOutcome::Successful {
            return_value: value.clone(),
        },
        ..success(&claimed, Value::Null)
    };
    assert!(complete(&b, &[done])[0].applied);
    let returned = get(&b, &enqueued.id).unwrap().return_value.unwrap();
    assert_eq!(value_of(&returned), value_of(&value));
    if db.kind == Kind::Sqlite {
        assert_eq!(returned, value);
    }
}

/// Oldest first by enqueue time: the ids (UUID v7, made in order) are enqueued in reverse.
fn results_are_listed_oldest_first(db: TestDb) {
    let (b, _) = db.backend();
    let mut requests: Vec<_> = (0..3).map(|_| task("t::x", "default", 0, None)).collect();
    requests.reverse();
    let ids: Vec<Text> = requests
        .into_iter()
        .map(|r| {
            db.tick();
            enqueue_request(&b, r).id
        })
        .collect();
    let (other, _) = db.try_backend("other", json!({})).unwrap();
    enqueue(&other, "default");
    assert_eq!(all(&b).into_iter().map(|r| r.id).collect::<Vec<_>>(), ids);
}

fn list_results_filters_newest_first(db: TestDb) {
    let (b, _) = db.backend();
    let a = enqueue(&b, "default");
    db.tick();
    let e1 = enqueue(&b, "emails");
    db.tick();
    let e2 = enqueue_request(&b, task("t::other", "emails", 0, None));
    let done = claim_with(&b, &claim_request("w", Some(&["default"]), 1)).remove(0);
    complete(&b, &[success(&done, json!(1))]);
    let list = |filter: Value| list(&b, filter);
    assert_eq!(
        list(json!({})),
        vec![e2.id.clone(), e1.id.clone(), a.id.clone()]
    );
    assert_eq!(
        list(json!({"queue_name": "emails"})),
        vec![e2.id.clone(), e1.id.clone()]
    );
    assert_eq!(list(json!({"status": "SUCCESSFUL"})), vec![a.id.clone()]);
    assert_eq!(list(json!({"task_path": "t::other"})), vec![e2.id.clone()]);
    assert_eq!(list(json!({"limit": 1})), vec![e2.id.clone()]);
    assert_eq!(
        list(json!({"status": "READY", "queue_name": "default"})),
        Vec::<String>::new()
    );
}

fn queue_stats_count_per_queue_and_status(db: TestDb) {
    let (b, _) = db.backend();
    let first = enqueue(&b, "emails");
    enqueue(&b, "emails");
    enqueue(&b, "default");
    let running = claim_with(&b, &claim_request("w", Some(&["default"]), 1));
    assert_eq!(running.len(), 1);
    let stats = stats(&b);
    let summary: Vec<(&str, TaskResultStatus, u64)> = stats
        .iter()
        .map(|s| (s.queue_name.as_str(), s.status, s.count))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("default", TaskResultStatus::Running, 1),
            ("emails", TaskResultStatus::Ready, 2)
        ]
    );
    assert_eq!(stats[1].oldest_enqueued_at, first.enqueued_at);
    assert_eq!(stats[0].oldest_enqueued_at, None);
}

fn prune_deletes_only_old_finished_results(db: TestDb) {
    let (b, _) = db.backend();
    let finish = |queue: &str, ok: bool| -> Text {
        enqueue(&b, queue);
        let t = claim_with(&b, &claim_request("w", Some(&[queue]), 1)).remove(0);
        let c = if ok {
            success(&t, json!(1))
        } else {
            failure(&t, None)
        };
        assert!(complete(&b, &[c])[0].applied);
        t.result.id
    };
    let old_ok = finish("default", true);
    let old_failed = finish("default", false);
    let old_other_queue = finish("reports", true);
    db.advance_secs(10 * 86_400);
    let cutoff = db.now() - Duration::days(1);
    let new_ok = finish("default", true);
    enqueue(&b, "default");
    let running = claim(&b, "w", 1).remove(0).result.id;
    let ready = enqueue(&b, "default").id;
    let prune = |request: Value| -> u64 { prune(&b, request).unwrap() };
    let default_only = json!({"finished_before": cutoff, "queues": ["default"]});
    let mut dry = default_only.clone();
    dry["dry_run"] = json!(true);
    assert_eq!(prune(dry), 2);
    assert!(get(&b, &old_ok).is_ok(), "a dry run deletes nothing");
    assert_eq!(
        prune(json!({"finished_before": cutoff, "statuses": ["FAILED"], "queues": ["default"]})),
        1
    );
    assert!(get(&b, &old_failed).is_err());
    assert_eq!(prune(default_only), 1);
    assert!(get(&b, &old_ok).is_err());
    assert!(get(&b, &old_other_queue).is_ok(), "other queues are kept");
    assert_eq!(
        prune(json!({"finished_before": cutoff, "failed_finished_before": cutoff})),
        1
    );
    for kept in [&new_ok, &ready, &running] {
        assert!(get(&b, kept).is_ok(), "{kept} must be kept");
    }
    let err = super::api::prune(&b, json!({"statuses": ["READY"]})).unwrap_err();
    assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
    assert_eq!(
        err.message(),
        "prune only deletes finished results (FAILED, SUCCESSFUL), not READY."
    );
    assert_eq!(
        prune(json!({})),
        1,
        "no cut-off: every finished result of the alias"
    );
    assert!(get(&b, &new_ok).is_err());
    assert!(get(&b, &ready).is_ok() && get(&b, &running).is_ok());
}

fn prune_works_through_a_limit_at_a_time(db: TestDb) {
    let (b, _) = db.backend();
    let finish = |queue: &str, n: usize, ok: bool| {
        for _ in 0..n {
            enqueue(&b, queue);
        }
        let claimed = claim_with(&b, &claim_request("w", Some(&[queue]), n as u32));
        assert_eq!(claimed.len(), n);
        let completions: Vec<_> = claimed
            .iter()
            .map(|t| match ok {
                true => success(t, json!(1)),
                false => failure(t, None),
            })
            .collect();
        assert!(complete(&b, &completions).iter().all(|a| a.applied));
    };
    finish("default", 15, true);
    finish("default", 10, false);
    finish("reports", 1, true);
    enqueue(&b, "default");
    let running = claim(&b, "w", 1).remove(0).result.id;
    let ready = enqueue(&b, "default").id;
    db.advance_secs(60);
    let prune = |limit: Option<u64>, dry_run: bool| -> u64 {
        let request = json!({
            "finished_before": db.now(), "queues": ["default"], "limit": limit, "dry_run": dry_run,
        });
        super::api::prune(&b, request).unwrap()
    };
    assert_eq!(prune(None, true), 25);
    assert_eq!(
        prune(Some(10), true),
        10,
        "a dry run's count is capped at the limit"
    );
    assert_eq!(prune(Some(30), true), 25);
    let deleted: Vec<u64> = (0..4).map(|_| prune(Some(10), false)).collect();
    assert_eq!(deleted, vec![10, 10, 5, 0]);
    assert_eq!(prune(None, true), 0);
    assert!(get(&b, &ready).is_ok() && get(&b, &running).is_ok());
    let stats = stats(&b);
    let summary: Vec<(&str, TaskResultStatus, u64)> = stats
        .iter()
        .map(|s| (s.queue_name.as_str(), s.status, s.count))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("default", TaskResultStatus::Ready, 1),
            ("default", TaskResultStatus::Running, 1),
            ("reports", TaskResultStatus::Successful, 1),
        ],
        "only the matching finished rows are gone"
    );
}

/// The ids of one `list_page` answer.
fn page(b: &DatabaseBackend, request: Value) -> Vec<String> {
    let answer = b
        .call_ext(crate::backend::LIST_PAGE, &request.to_string())
        .unwrap();
    let rows: Vec<TaskResultData> = serde_json::from_str(&answer).unwrap();
    rows.into_iter().map(|r| r.id.to_string()).collect()
}

fn list_page_walks_the_store_newest_id_first_by_cursor(db: TestDb) {
    let (b, _) = db.backend();
    let start = db.now();
    let mut ids: Vec<String> = (0..7)
        .map(|i| {
            db.tick();
            let queue = if i % 2 == 0 { "default" } else { "emails" };
            enqueue(&b, queue).id.to_string()
        })
        .collect();
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let ids = page(&b, json!({"limit": 3, "before_id": cursor}));
        assert!(ids.len() <= 3);
        seen.extend(ids.iter().cloned());
        match ids.len() {
            3 => cursor = ids.last().cloned(),
            _ => break,
        }
    }
    assert_eq!(seen, ids, "each result once, newest id first");

    // Filters, as list_results has them, and a time window on enqueued_at.
    let emails = page(&b, json!({"limit": 10, "queue_name": "emails"}));
    assert_eq!(emails, vec![ids[1].clone(), ids[3].clone(), ids[5].clone()]);
    let after_cursor = page(
        &b,
        json!({"limit": 10, "queue_name": "emails", "before_id": ids[1]}),
    );
    assert_eq!(after_cursor, vec![ids[3].clone(), ids[5].clone()]);
    let done = claim_with(&b, &claim_request("w", Some(&["emails"]), 1)).remove(0);
    complete(&b, &[success(&done, json!(1))]);
    assert_eq!(
        page(&b, json!({"limit": 10, "status": "SUCCESSFUL"})),
        vec![done.result.id.to_string()]
    );
    assert!(page(&b, json!({"limit": 10, "task_path": "t::none"})).is_empty());
    let third = start + Duration::microseconds(3);
    let window = json!({"limit": 10, "enqueued_after": third, "enqueued_before": third + Duration::microseconds(2)});
    assert_eq!(page(&b, window), vec![ids[3].clone(), ids[4].clone()]);
}

fn list_page_refuses_bad_requests(db: TestDb) {
    let (b, _) = db.backend();
    for (request, says) in [
        (json!({"limit": 0}), "limit must be 1 to 1000"),
        (json!({"limit": 1001}), "limit must be 1 to 1000"),
        (
            json!({"limit": 5, "colour": "red"}),
            "unknown field `colour`",
        ),
        (json!({"status": "READY"}), "missing field `limit`"),
    ] {
        let e = b
            .call_ext(crate::backend::LIST_PAGE, &request.to_string())
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_REQUEST, "{request}");
        assert!(e.message().contains(says), "{request}: {}", e.message());
    }
    if db.kind == Kind::Postgres {
        let e = b
            .call_ext(
                crate::backend::LIST_PAGE,
                r#"{"limit": 5, "before_id": "nope"}"#,
            )
            .unwrap_err();
        assert!(
            e.message().contains("'nope' is not a result id"),
            "{}",
            e.message()
        );
    }
}

fn finished_per_minute_counts_each_minute_and_status(db: TestDb) {
    let (b, _) = db.backend();
    for _ in 0..3 {
        enqueue(&b, "default");
    }
    let since = db.now() - Duration::minutes(59);
    let first = claim(&b, "w", 2);
    complete(
        &b,
        &[success(&first[0], json!(1)), failure(&first[1], None)],
    );
    db.advance_secs(120);
    let later = claim(&b, "w", 1);
    complete(&b, &[success(&later[0], json!(2))]);

    let counts = |since: chrono::DateTime<chrono::Utc>| -> Vec<(i64, String, u64)> {
        let answer = b
            .call_ext(
                crate::backend::FINISHED_PER_MINUTE,
                &json!({ "since": since }).to_string(),
            )
            .unwrap();
        let rows: Vec<Value> = serde_json::from_str(&answer).unwrap();
        rows.iter()
            .map(|r| {
                let minute: chrono::DateTime<chrono::Utc> =
                    serde_json::from_value(r["minute"].clone()).unwrap();
                assert_eq!(minute.timestamp() % 60, 0, "minutes start on the minute");
                (
                    minute.timestamp() / 60,
                    r["status"].as_str().unwrap().to_string(),
                    r["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let all = counts(since);
    let total = |status: &str| -> u64 { all.iter().filter(|c| c.1 == status).map(|c| c.2).sum() };
    assert_eq!((total("SUCCESSFUL"), total("FAILED")), (2, 1), "{all:?}");
    let minutes: Vec<i64> = all.iter().map(|c| c.0).collect();
    assert!(
        minutes.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {all:?}"
    );
    assert_eq!(
        minutes.last().unwrap() - minutes[0],
        2,
        "two minutes apart: {all:?}"
    );
    assert!(counts(db.now() + Duration::seconds(1)).is_empty());
}

/// Pages stay as quick deep in a large store as at its start: SQLite seeks the primary key's
/// index to the cursor and reads it backwards, with no sort (the same plan whatever the size).
#[test]
fn sqlite_pages_seek_the_primary_key_and_never_sort() {
    let db = TestDb::new(Kind::Sqlite).unwrap();
    let _backend = db.backend(); // creates the schema
    let conn = db.sqlite();
    for cursor in [false, true] {
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            crate::sqlite::SqliteStore::page_sql(cursor)
        );
        let mut stmt = conn.prepare(&sql).unwrap();
        let plan: Vec<String> = stmt
            .query_map(
                rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Null, 8)),
                |r| r.get::<_, String>(3),
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let index = "USING INDEX sqlite_autoindex_taskhost_tasks_1";
        assert!(plan.iter().any(|step| step.contains(index)), "{plan:?}");
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
        assert_eq!(
            plan.iter().any(|step| step.contains("(id<?)")),
            cursor,
            "{plan:?}"
        );
    }
}
