//! Periodic tasks (`[tasks.<alias>.periodic]`), through real worker processes on both stores:
//! many workers enqueue each tick once, missed ticks follow each schedule's policy, a schedule
//! removed from the config stops, `taskhost periodic list`, and bad configs.

use super::env::{output_text, terminate, wait_with_deadline, Env, Store, DEADLINE};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};
use taskhost::{task_backends, TaskResult};
use taskhost_plugin_api::ListRequest;

const RECORD_KEY: &str = "taskhost_worker_app::record_key";

/// Where the periodic table starts in a test's config file.
const MARK: &str = "\n[tasks.default.periodic]\n";

/// Make `table` (TOML lines) the config's `[tasks.default.periodic]`, replacing any before.
fn set_periodic(env: &Env, table: &str) {
    let text = fs::read_to_string(&env.config_file).unwrap();
    let base = text.split(MARK).next().unwrap().to_string();
    fs::write(&env.config_file, format!("{base}{MARK}{table}\n")).unwrap();
}

/// Every result of `record_key` whose only argument is `key`.
fn results_of(key: &str) -> Vec<TaskResult> {
    let request = ListRequest {
        task_path: Some(RECORD_KEY.into()),
        limit: Some(100_000),
        ..Default::default()
    };
    task_backends()
        .get("default")
        .unwrap()
        .list_results(&request)
        .unwrap()
        .into_iter()
        .filter(|r| r.args() == [json!(key)])
        .collect()
}

/// How many times the tasks recorded `key`.
fn runs_of(env: &Env, key: &str) -> usize {
    env.log_lines().iter().filter(|l| *l == key).count()
}

/// Wait until `key` was recorded at least `n` times.
fn wait_for_runs(env: &Env, key: &str, n: usize) {
    let start = Instant::now();
    while runs_of(env, key) < n {
        assert!(
            start.elapsed() < DEADLINE,
            "'{key}' ran {} times, not {n}, within {DEADLINE:?}",
            runs_of(env, key)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run `sql` on the test's store.
fn execute(env: &Env, store: Store, sql: &str) {
    match store {
        Store::Sqlite => {
            let conn = rusqlite::Connection::open(env.dir.path().join("tasks.db")).unwrap();
            conn.execute_batch(sql).unwrap();
        }
        Store::Postgres => {
            let mut client =
                ::postgres::Client::connect(super::env::POSTGRES_URL, ::postgres::NoTls).unwrap();
            let schema = env.schema.as_deref().unwrap();
            client
                .batch_execute(&format!("SET search_path = \"{schema}\"; {sql}"))
                .unwrap();
        }
    }
}

/// A time as the store keeps it, for SQL.
fn stored_time(store: Store, rfc3339: &str) -> String {
    let t: chrono::DateTime<chrono::Utc> = rfc3339.parse().unwrap();
    match store {
        Store::Sqlite => t.timestamp_micros().to_string(),
        Store::Postgres => format!("'{rfc3339}'::timestamptz"),
    }
}

/// `taskhost periodic list --format json`.
fn listed(env: &Env) -> Vec<Value> {
    let out = env.taskhost_stdout(&["periodic", "list", "--format", "json"]);
    serde_json::from_str::<Vec<Value>>(&out).unwrap()
}

fn many_workers_enqueue_each_tick_once(store: Store) {
    let env = Env::new(store, "");
    set_periodic(
        &env,
        &format!(
            "every = {{ task = \"{RECORD_KEY}\", cron = \"* * * * * *\", args = [\"tick\"], \
             missed = {{ backfill = 1000 }} }}"
        ),
    );
    // Started together: every one syncs, and every one wakes at each tick.
    let workers: Vec<_> = (0..3)
        .map(|_| env.spawn_worker(&["--concurrency", "2"]))
        .collect();
    wait_for_runs(&env, "tick", 5);
    for worker in &workers {
        terminate(worker);
    }
    for worker in workers {
        let out = wait_with_deadline(worker);
        assert!(out.status.success(), "{}", output_text(&out));
    }
    let ticks: Vec<_> = results_of("tick")
        .iter()
        .map(|r| {
            r.task()
                .run_after
                .expect("a periodic task is due at its tick")
        })
        .collect();
    let distinct: BTreeSet<_> = ticks.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ticks.len(),
        "a tick enqueued twice: {ticks:?}"
    );
    assert!(ticks.len() >= 5, "{ticks:?}");
    // Whole seconds, none left out between the first and the last (missed ones backfilled).
    let (first, last) = (*distinct.first().unwrap(), *distinct.last().unwrap());
    assert_eq!(first.timestamp_subsec_micros(), 0, "{first}");
    assert_eq!(
        (last - first).num_seconds() + 1,
        ticks.len() as i64,
        "ticks left out: {distinct:?}"
    );
    // Each ran at most once.
    assert!(runs_of(&env, "tick") <= ticks.len());
}

fn missed_ticks_follow_each_schedules_policy(store: Store) {
    let env = Env::new(store, "");
    // Noon on each 1 January of 2020 to 2024: every tick is in the past.
    let cron = "0 0 12 1 1 * 2020-2024";
    set_periodic(
        &env,
        &format!(
            "skipped = {{ task = \"{RECORD_KEY}\", cron = \"{cron}\", args = [\"skip\"] }}\n\
             once = {{ task = \"{RECORD_KEY}\", cron = \"{cron}\", args = [\"once\"], missed = \"once\" }}\n\
             backfilled = {{ task = \"{RECORD_KEY}\", cron = \"{cron}\", args = [\"backfill\"], missed = {{ backfill = 3 }} }}"
        ),
    );
    // The first start stores the schedules: ticks before that were never due.
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.log_lines(), Vec::<String>::new());
    let listed_first = listed(&env);
    assert_eq!(listed_first.len(), 3, "{listed_first:?}");
    assert!(listed_first.iter().all(|s| s["last_tick"].is_null()));
    // A store whose schedules last ticked in 2019: every tick since was missed.
    execute(
        &env,
        store,
        &format!(
            "UPDATE taskhost_schedules SET last_tick = {}",
            stored_time(store, "2019-06-01T00:00:00Z")
        ),
    );
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(runs_of(&env, "skip"), 0);
    assert_eq!(runs_of(&env, "once"), 1);
    assert_eq!(runs_of(&env, "backfill"), 3);
    let mut backfilled: Vec<_> = results_of("backfill")
        .iter()
        .map(|r| r.task().run_after.unwrap().to_rfc3339())
        .collect();
    backfilled.sort();
    assert_eq!(
        backfilled,
        [
            "2022-01-01T12:00:00+00:00",
            "2023-01-01T12:00:00+00:00",
            "2024-01-01T12:00:00+00:00"
        ]
    );
    assert_eq!(
        results_of("once")[0].task().run_after.unwrap().to_rfc3339(),
        "2024-01-01T12:00:00+00:00"
    );
    // Enqueued once: a later start finds nothing due.
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.log_lines().len(), 4, "{:?}", env.log_lines());
    // The list: every schedule last ticked at the 2024 tick (skipped or enqueued), none next.
    let listed = listed(&env);
    let names: Vec<_> = listed.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["backfilled", "once", "skipped"]);
    for s in &listed {
        assert_eq!(s["last_tick"], json!("2024-01-01T12:00:00Z"), "{s}");
        assert_eq!(s["next_tick"], Value::Null, "{s}");
        assert_eq!(s["task_path"], json!(RECORD_KEY), "{s}");
    }
    assert_eq!(listed[0]["missed"], json!("backfill 3"));
    assert_eq!(listed[2]["missed"], json!("skip"));
    assert!(listed[2]["last_task_id"].is_null(), "skipped: no task");
    let text = env.taskhost_stdout(&["periodic", "list"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("LAST TICK")
            && lines[0].contains("NEXT TICK"),
        "{text}"
    );
    assert!(lines[1].starts_with("backfilled "), "{text}");
    assert!(
        lines[1].contains("2024-01-01T12:00:00+00:00") && lines[1].ends_with("never"),
        "{text}"
    );
    assert_eq!(lines.last(), Some(&"(3 schedule(s))"), "{text}");
}

fn a_schedule_removed_from_the_config_stops(store: Store) {
    let env = Env::new(store, "");
    let every = |key: &str| {
        format!("{key} = {{ task = \"{RECORD_KEY}\", cron = \"* * * * * *\", args = [\"{key}\"] }}")
    };
    set_periodic(&env, &format!("{}\n{}", every("kept"), every("removed")));
    // A worker started with both keeps both in its config while it runs.
    let old = env.spawn_worker(&[]);
    wait_for_runs(&env, "removed", 1);
    // A worker started with the new config deletes the schedule from the store.
    set_periodic(&env, &every("kept"));
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let names: Vec<_> = listed(&env)
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["kept"]);
    let enqueued = results_of("removed").len();
    // The old worker goes on ticking: the kept schedule runs, the removed one is not enqueued.
    let kept = runs_of(&env, "kept");
    wait_for_runs(&env, "kept", kept + 3);
    assert_eq!(results_of("removed").len(), enqueued);
    terminate(&old);
    let out = wait_with_deadline(old);
    assert!(out.status.success(), "{}", output_text(&out));
}

fn bad_schedules_stop_the_worker_naming_the_key(store: Store) {
    let env = Env::new(store, "");
    set_periodic(
        &env,
        "daily = { task = \"taskhost_worker_app::no_such_task\", cron = \"0 7 * * *\" }",
    );
    let out = env.run_worker(&["--batch"]);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("tasks.default.periodic.daily")
            && text.contains("'taskhost_worker_app::no_such_task'")
            && text.contains("not registered"),
        "{text}"
    );
    // `check` (from the application's binary) says the same.
    let out = env.command(&["check"]).output().unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("error: tasks.default.periodic.daily: the task 'taskhost_worker_app::no_such_task' is not registered"),
        "{text}"
    );
    set_periodic(&env, &format!("\"{RECORD_KEY}\" = \"61 * * * *\""));
    let out = env.run_worker(&["--batch"]);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("\"61 * * * *\"") && text.contains(RECORD_KEY) && text.contains("cron"),
        "{text}"
    );
    set_periodic(
        &env,
        &format!(
            "daily = {{ task = \"{RECORD_KEY}\", cron = \"0 7 * * *\", timezone = \"Mars/Base\" }}"
        ),
    );
    let text = output_text(&env.run_worker(&["--batch"]));
    assert!(
        text.contains("\"Mars/Base\"") && text.contains("tasks.default.periodic.daily"),
        "{text}"
    );
    set_periodic(
        &env,
        &format!("daily = {{ task = \"{RECORD_KEY}\", crn = \"0 7 * * *\" }}"),
    );
    let text = output_text(&env.run_worker(&["--batch"]));
    assert!(
        text.contains("crn") && text.contains("tasks.default.periodic.daily"),
        "{text}"
    );
    assert_eq!(env.log_lines(), Vec::<String>::new());
}

/// The tests, once per store.
macro_rules! periodic_tests {
    ($module:ident, $store:expr) => {
        mod $module {
            use super::Store;

            #[test]
            fn many_workers_enqueue_each_tick_once() {
                super::many_workers_enqueue_each_tick_once($store);
            }

            #[test]
            fn missed_ticks_follow_each_schedules_policy() {
                super::missed_ticks_follow_each_schedules_policy($store);
            }

            #[test]
            fn a_schedule_removed_from_the_config_stops() {
                super::a_schedule_removed_from_the_config_stops($store);
            }

            #[test]
            fn bad_schedules_stop_the_worker_naming_the_key() {
                super::bad_schedules_stop_the_worker_naming_the_key($store);
            }
        }
    };
}

periodic_tests!(sqlite, Store::Sqlite);
periodic_tests!(postgres, Store::Postgres);
