//! Behaviour only SQLite has: idle workers woken by the watch on the database's `-wal` file.

use super::env::{description, output_text, wait_with_deadline, Env, Store};
use serde_json::{json, Value};
use std::io::Read;
use std::process::Child;
use std::time::{Duration, Instant};
use taskhost::{task_backends, TaskResultStatus};

/// The workers' poll interval: far longer than [`WOKEN_WITHIN`], so a task can only start in
/// time if the wake-up worked.
const INTERVAL: &str = "30";
/// How long after its enqueue a task must have run.
const WOKEN_WITHIN: Duration = Duration::from_secs(10);

/// Wait until the result `id` is SUCCESSFUL; after [`WOKEN_WITHIN`], stop the worker and fail
/// with its output.
fn run_within_wake_deadline(env: &Env, worker: &mut Child, id: &str, how: &str) {
    let start = Instant::now();
    loop {
        let result = env.result(id);
        if result.status() == TaskResultStatus::Successful {
            return;
        }
        if start.elapsed() > WOKEN_WITHIN {
            let _ = worker.kill();
            let mut output = String::new();
            if let Some(mut stderr) = worker.stderr.take() {
                let _ = stderr.read_to_string(&mut output);
            }
            panic!(
                "the task enqueued by {how} did not run within {WOKEN_WITHIN:?} (the worker \
                 polls every {INTERVAL} s): the idle worker was not woken; status {:?}, log: \
                 {:?}; worker stderr:\n{output}",
                result.status(),
                env.log_lines()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Enqueue `record_key(key)` with the backend's transactional insert, on the test's own
/// connection `app` (as an application's own SQL would).
fn enqueue_with_own_sql(app: &mut rusqlite::Connection, key: &str) -> String {
    let backend = task_backends().get("default").unwrap();
    let doc: Value = backend
        .call_ext_json(
            "taskhost.backends.database.transactional_insert_sql",
            &json!({}),
        )
        .unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    let tx = app.transaction().unwrap();
    tx.execute(
        doc["sql"].as_str().unwrap(),
        rusqlite::params![
            id,
            description("record_key", "default", 0).path.as_str(),
            json!([key]).to_string(),
            "default",
            0,
            None::<i64>,
            None::<i64>,
            None::<String>,
            None::<i64>,
            None::<i64>
        ],
    )
    .unwrap();
    tx.commit().unwrap();
    id
}

#[test]
fn an_idle_sqlite_worker_is_woken_by_enqueues_long_before_its_poll_interval() {
    let env = Env::new(Store::Sqlite, "");
    // Kept open for the whole test: closing a second SQLite copy's connection to the file
    // would drop the plugin's POSIX locks in this process (see the README).
    taskhost::default_task_backend().unwrap().check().unwrap();
    let mut app = rusqlite::Connection::open(env.dir.path().join("tasks.db")).unwrap();
    let mut worker = env.spawn_worker(&["--interval", INTERVAL, "--max-tasks", "3"]);
    // The worker's first claim may take this one; after it the worker is idle.
    let first = env.enqueue("record_key", json!(["enqueue"]));
    run_within_wake_deadline(&env, &mut worker, &first, "an enqueue");
    let second = env.enqueue_many("record_key", vec![json!(["bulk"])]);
    run_within_wake_deadline(&env, &mut worker, &second[0], "a bulk enqueue");
    let third = enqueue_with_own_sql(&mut app, "own sql");
    run_within_wake_deadline(&env, &mut worker, &third, "the application's own SQL");
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.log_lines(), ["enqueue", "bulk", "own sql"]);
}
