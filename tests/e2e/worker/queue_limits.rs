//! Queue limits (the database backend's option `queues`), through real worker processes and the
//! real plugin file on both stores: a concurrency limit across workers, a rate limit, unlimited
//! queues next to them, and a bad limit refused with the key named.

use super::env::{output_text, terminate, wait_with_deadline, Env, Store};
use serde_json::json;
use std::collections::HashMap;
use taskhost::TaskResultStatus;

/// Wait until every task in `ids` is SUCCESSFUL.
fn wait_all_successful(env: &Env, ids: &[String]) {
    for id in ids {
        env.wait_for_result(id, |r| r.status() == TaskResultStatus::Successful);
    }
}

/// Stop the workers (SIGTERM) and check they exit cleanly.
fn stop(workers: Vec<std::process::Child>) {
    for worker in &workers {
        terminate(worker);
    }
    for worker in workers {
        let out = wait_with_deadline(worker);
        assert!(out.status.success(), "{}", output_text(&out));
    }
}

/// The most tasks whose key starts with `prefix` that ran at once, from the `start`/`end`
/// lines `record_and_sleep` appends (in the order they happened, across processes).
fn most_at_once(lines: &[String], prefix: &str) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for line in lines {
        match line.split_once(' ') {
            Some(("start", key)) if key.starts_with(prefix) => {
                now += 1;
                most = most.max(now);
            }
            Some(("end", key)) if key.starts_with(prefix) => now -= 1,
            _ => {}
        }
    }
    most
}

/// 3 workers × concurrency 8 on a queue limited to 2: never more than 2 of its tasks run at
/// once (the store counts a task from its claim to its result, which encloses the run the
/// task records), every task runs once; 6 tasks of an unlimited queue served by the same
/// workers are claimed together and overlap beyond 2.
fn a_concurrency_limit_holds_across_workers(store: Store) {
    let env = Env::new(
        store,
        "[tasks.default.options.queues.limited]\nconcurrency = 2\n",
    );
    let free: Vec<String> = (0..6)
        .map(|i| {
            env.enqueue_on(
                "record_and_sleep",
                json!([format!("free{i}"), 400]),
                "free",
                0,
            )
        })
        .collect();
    let limited: Vec<String> = (0..12)
        .map(|i| {
            env.enqueue_on(
                "record_and_sleep",
                json!([format!("lim{i}"), 100]),
                "limited",
                0,
            )
        })
        .collect();
    let workers: Vec<_> = (0..3)
        .map(|_| env.spawn_worker(&["--queue", "free,limited", "--concurrency", "8"]))
        .collect();
    wait_all_successful(&env, &limited);
    wait_all_successful(&env, &free);
    stop(workers);
    let lines = env.log_lines();
    let mut starts: HashMap<&str, usize> = HashMap::new();
    for line in &lines {
        if let Some(key) = line.strip_prefix("start ") {
            *starts.entry(key).or_default() += 1;
        }
    }
    assert_eq!(starts.len(), 18, "{lines:?}");
    assert!(
        starts.values().all(|&n| n == 1),
        "a task ran twice: {lines:?}"
    );
    let most = most_at_once(&lines, "lim");
    assert!(most <= 2, "{most} limited tasks ran at once: {lines:?}");
    assert!(
        most_at_once(&lines, "free") > 2,
        "the unlimited queue was held back: {lines:?}"
    );
}

/// A rate limit of 3 per 500 ms over 2 workers × concurrency 4: in every 500 ms window from
/// any claim, at most 3 claims of the queue (from the stored start times, which without a
/// prefetch are the claims' times).
fn a_rate_limit_holds_across_workers(store: Store) {
    let env = Env::new(
        store,
        "[tasks.default.options.queues.metered]\nrate = { limit = 3, per = \"500ms\" }\n",
    );
    let ids: Vec<String> = (0..12)
        .map(|i| env.enqueue_on("record_key", json!([format!("m{i}")]), "metered", 0))
        .collect();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            env.spawn_worker(&[
                "--queue",
                "metered",
                "--concurrency",
                "4",
                "--prefetch",
                "0",
            ])
        })
        .collect();
    wait_all_successful(&env, &ids);
    stop(workers);
    let mut starts: Vec<_> = ids
        .iter()
        .map(|id| {
            env.result(id)
                .started_at()
                .expect("a finished task has a start")
        })
        .collect();
    starts.sort();
    let per = chrono::Duration::milliseconds(500);
    for (i, from) in starts.iter().enumerate() {
        let within = starts[i..].iter().filter(|s| **s < *from + per).count();
        assert!(
            within <= 3,
            "{within} starts within 500 ms of {from}: {starts:?}"
        );
    }
    // 12 starts at 3 per window span at least 3 windows.
    assert!(starts[11] - starts[0] >= per * 3, "{starts:?}");
}

/// A worker that found its queue at the limit starts the next task when the running one
/// finishes, not at its next poll: with a 300 s interval only the wake-up (PostgreSQL: the
/// completion's NOTIFY; SQLite: the watch on the `-wal` file) gets both tasks run within the
/// deadline.
fn a_worker_at_the_limit_starts_the_next_task_when_one_finishes(store: Store) {
    let env = Env::new(
        store,
        "[tasks.default.options.queues.one]\nconcurrency = 1\n",
    );
    let ids: Vec<String> = (0..2)
        .map(|i| env.enqueue_on("record_and_sleep", json!([format!("t{i}"), 1000]), "one", 0))
        .collect();
    let args = ["--queue", "one", "--interval", "300", "--max-tasks", "1"];
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(&args)).collect();
    for worker in workers {
        let out = wait_with_deadline(worker);
        assert!(out.status.success(), "{}", output_text(&out));
    }
    wait_all_successful(&env, &ids);
    assert_eq!(
        most_at_once(&env.log_lines(), "t"),
        1,
        "{:?}",
        env.log_lines()
    );
}

/// `taskhost queues` lists the limited queues with their limits and what uses them.
fn queues_lists_the_limits_and_their_use(store: Store) {
    let env = Env::new(
        store,
        "[tasks.default.options.queues.limited]\nconcurrency = 2\n\
         rate = { limit = 5, per = \"1h\" }\n",
    );
    let id = env.enqueue_on("record_and_sleep", json!(["slow", 5000]), "limited", 0);
    let worker = env.spawn_worker(&["--queue", "limited", "--max-tasks", "1"]);
    env.wait_for_line(|l| l == "start slow");
    let out = env.taskhost_stdout(&["queues"]);
    let row = out
        .lines()
        .find(|l| l.starts_with("limited ") && l.contains(" / 2"))
        .unwrap_or_else(|| panic!("no limits row: {out}"));
    assert!(row.contains("1 / 2"), "{out}");
    assert!(row.contains("1 / 5 per 3600 s"), "{out}");
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.result(&id).status(), TaskResultStatus::Successful);
    let out = env.taskhost_stdout(&["queues"]);
    assert!(out.contains("0 / 2"), "{out}");
}

/// A misspelt limit stops the worker with the key at fault named.
fn a_bad_limit_names_its_key(store: Store) {
    let env = Env::new(
        store,
        "[tasks.default.options.queues.emails]\nconcurency = 2\n",
    );
    let out = env.run_worker(&["--batch"]);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("option 'queues.emails': unknown field `concurency`"),
        "{text}"
    );
}

#[test]
fn sqlite_a_concurrency_limit_holds_across_workers() {
    a_concurrency_limit_holds_across_workers(Store::Sqlite);
}

#[test]
fn postgres_a_concurrency_limit_holds_across_workers() {
    a_concurrency_limit_holds_across_workers(Store::Postgres);
}

#[test]
fn sqlite_a_rate_limit_holds_across_workers() {
    a_rate_limit_holds_across_workers(Store::Sqlite);
}

#[test]
fn postgres_a_rate_limit_holds_across_workers() {
    a_rate_limit_holds_across_workers(Store::Postgres);
}

#[test]
fn sqlite_a_bad_limit_names_its_key() {
    a_bad_limit_names_its_key(Store::Sqlite);
}

#[test]
fn postgres_a_bad_limit_names_its_key() {
    a_bad_limit_names_its_key(Store::Postgres);
}

#[test]
fn sqlite_a_worker_at_the_limit_starts_the_next_task_when_one_finishes() {
    a_worker_at_the_limit_starts_the_next_task_when_one_finishes(Store::Sqlite);
}

#[test]
fn postgres_a_worker_at_the_limit_starts_the_next_task_when_one_finishes() {
    a_worker_at_the_limit_starts_the_next_task_when_one_finishes(Store::Postgres);
}

#[test]
fn sqlite_queues_lists_the_limits_and_their_use() {
    queues_lists_the_limits_and_their_use(Store::Sqlite);
}

#[test]
fn postgres_queues_lists_the_limits_and_their_use() {
    queues_lists_the_limits_and_their_use(Store::Postgres);
}
