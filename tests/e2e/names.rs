//! The names a task carries: queue names and task paths that break the host's rules are refused
//! before any plugin is called (on the Dummy backend, and on the database backend on SQLite and
//! PostgreSQL, where such names used to be stored or to fail with raw driver errors), and
//! names already in a store are printed escaped by `taskhost queues` and `taskhost results`.

use crate::worker::env::{Env, Store};
use serde_json::{json, Map, Value};
use std::fmt::Debug;
use taskhost::{task, task_backends, Backend, Error, TaskBackends, TaskOptions};
use taskhost_e2e::{config_with, TestConfig};
use taskhost_plugin_api::{QueueStats, TaskDescription};

/// The fixture: does nothing (never run here; its path is `e2e::names::noop`).
#[task]
pub fn noop(n: i64) {
    let _ = n;
}

const QUEUE_RULE: &str = "a queue name must be 1 to 255 bytes without control characters, \
    commas or leading or trailing whitespace, and not '*'";

const PATH_RULE: &str = "a task path must be at least two '::'-separated Rust identifiers \
    (e.g. my_app::tasks::send), at most 1024 bytes";

/// The bad queue names of the issue, each with the exact message it is refused with.
fn bad_queue_names() -> Vec<(String, String)> {
    vec![
        (
            "emails\0".to_string(),
            format!(
                "Invalid queue name 'emails\\0': {QUEUE_RULE} (it has the control character \\0 \
                 at byte offset 6)."
            ),
        ),
        (
            "q".repeat(8000),
            format!(
                "Invalid queue name '{}…': {QUEUE_RULE} (it is 8000 bytes).",
                "q".repeat(64)
            ),
        ),
    ]
}

/// Bad task paths, each with the exact message it is refused with.
fn bad_task_paths() -> Vec<(String, String)> {
    vec![
        (
            "app.tasks.send".to_string(),
            format!(
                "Invalid task path 'app.tasks.send': {PATH_RULE} (segment 1 'app.tasks.send' is \
                 not an identifier)."
            ),
        ),
        (
            "e2e::names::no\0op".to_string(),
            format!(
                "Invalid task path 'e2e::names::no\\0op': {PATH_RULE} (segment 3 'no\\0op' is not \
                 an identifier)."
            ),
        ),
        (
            format!("e2e::{}", "x".repeat(8000)),
            format!(
                "Invalid task path 'e2e::{}…': {PATH_RULE} (it is 8005 bytes).",
                "x".repeat(59)
            ),
        ),
    ]
}

#[track_caller]
fn assert_invalid_task<T: Debug>(result: Result<T, Error>, message: &str) {
    match result {
        Err(Error::InvalidTask(m)) => assert_eq!(m, message),
        other => panic!("expected InvalidTask({message:?}), got {other:?}"),
    }
}

/// How many results the `default` alias stores (Dummy: `results()`; database: queue stats).
fn stored(backend: &Backend) -> u64 {
    if backend.supports_queue_store() {
        let stats: Vec<QueueStats> = backend.queue_stats().unwrap();
        stats.iter().map(|s| s.count).sum()
    } else {
        backend.results().unwrap().len() as u64
    }
}

/// Every entry point refuses the bad queue names and bad task paths of the `default` alias
/// with the exact message, and stores nothing — a batch with one bad item included.
async fn every_entry_point_refuses_bad_names() {
    let backend = task_backends().get("default").unwrap();
    let good = noop.description();
    let one = || vec![json!(1)];
    for (name, message) in bad_queue_names() {
        assert_invalid_task(noop.using(TaskOptions::new().queue_name(&name)), &message);
        let bad = TaskDescription {
            queue_name: name.clone().into(),
            ..good.clone()
        };
        assert_invalid_task(backend.enqueue(&bad, &(1,)), &message);
        assert_invalid_task(backend.aenqueue(&bad, &(1,)).await, &message);
        assert_invalid_task(backend.enqueue_json(&bad, one(), Map::new()), &message);
        let batch = vec![
            (good.clone(), one()),
            (bad.clone(), one()),
            (good.clone(), one()),
        ];
        assert_invalid_task(backend.enqueue_many_json(batch), &message);
        // Inside a transaction scope (enqueue_on_commit): refused at the enqueue, not the commit.
        let scoped = taskhost::atomic(|| backend.enqueue(&bad, &(1,)));
        assert_invalid_task(scoped, &message);
    }
    for (path, message) in bad_task_paths() {
        let bad = TaskDescription {
            path: path.clone().into(),
            ..good.clone()
        };
        assert_invalid_task(backend.enqueue_json(&bad, one(), Map::new()), &message);
        let batch = vec![(good.clone(), one()), (bad, one())];
        assert_invalid_task(backend.enqueue_many_json(batch), &message);
    }
    assert_eq!(stored(&backend), 0, "nothing may be stored");
    // The names at the limits still go through.
    let longest = "q".repeat(taskhost::MAX_QUEUE_NAME_BYTES);
    noop.using(TaskOptions::new().queue_name(&longest))
        .unwrap()
        .enqueue(1)
        .unwrap();
    assert_eq!(stored(&backend), 1);
}

#[tokio::test]
async fn bad_queue_names_and_task_paths_are_refused_on_the_dummy_backend() {
    let _c = TestConfig::new(
        "[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\nqueues = []\n",
    );
    every_entry_point_refuses_bad_names().await;
}

#[tokio::test]
async fn bad_queue_names_and_task_paths_are_refused_on_sqlite() {
    let _env = Env::new(Store::Sqlite, "");
    every_entry_point_refuses_bad_names().await;
}

#[tokio::test]
async fn bad_queue_names_and_task_paths_are_refused_on_postgres() {
    let _env = Env::new(Store::Postgres, "");
    every_entry_point_refuses_bad_names().await;
}

#[test]
fn a_bad_queue_name_in_the_config_file_names_the_key_and_the_item() {
    let text = "[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n\
                queues = [\"default\", \"a\\u0000b\"]\n";
    let result = taskhost::Config::from_toml_str(
        text,
        Some(std::path::Path::new("tasks.toml")),
        std::path::Path::new("/"),
    );
    match result {
        Err(Error::ImproperlyConfigured { key, message, .. }) => {
            assert_eq!(key.as_deref(), Some("tasks.default.queues"));
            assert_eq!(
                message,
                format!(
                    "tasks.toml: 'tasks.default.queues' item 1: Invalid queue name 'a\\0b': \
                     {QUEUE_RULE} (it has the control character \\0 at byte offset 1)."
                )
            );
        }
        other => panic!("expected ImproperlyConfigured, got {other:?}"),
    }
}

#[test]
fn a_bad_queue_name_in_a_config_built_in_code_is_refused_when_the_backend_loads() {
    let mut config =
        config_with("[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n");
    config.backends.get_mut("default").unwrap().queues = vec!["q".repeat(300)];
    match TaskBackends::new(config).get("default") {
        Err(Error::ImproperlyConfigured { key, message, .. }) => {
            assert_eq!(key.as_deref(), Some("tasks.default.queues"));
            assert_eq!(
                message,
                format!(
                    "'tasks.default.queues' item 0: Invalid queue name '{}…': {QUEUE_RULE} (it \
                     is 300 bytes).",
                    "q".repeat(64)
                )
            );
        }
        other => panic!("expected ImproperlyConfigured, got {other:?}"),
    }
}

/// A queue name and task path with control characters, written into a SQLite store behind the
/// host's back (as an older taskhost or another producer could have): the CLI prints them
/// escaped, never the raw bytes a terminal would act on.
#[test]
fn queues_and_results_print_stored_control_characters_escaped() {
    let env = Env::new(Store::Sqlite, "");
    let backend = task_backends().get("default").unwrap();
    let id = backend
        .enqueue_json(&noop.description(), vec![json!(1)], Map::new())
        .unwrap()
        .id()
        .to_string();
    let queue = "a\u{1b}[31mred\tq\u{9b}";
    let path = "e2e::names::noop\u{7}\r";
    let db = rusqlite::Connection::open(env.dir.path().join("tasks.db")).unwrap();
    let updated = db
        .execute(
            "UPDATE taskhost_tasks SET queue_name = ?1, task_path = ?2 WHERE id = ?3",
            (queue, path, &id),
        )
        .unwrap();
    assert_eq!(updated, 1);
    drop(db);

    let run = |args: &[&str]| -> String {
        let stdout = env.taskhost_stdout(args);
        for raw in ['\u{1b}', '\u{9b}', '\u{7}', '\r', '\t'] {
            assert!(
                !stdout.contains(raw),
                "{args:?} printed {raw:?} raw: {stdout:?}"
            );
        }
        stdout
    };
    let escaped_queue = r"a\u{1b}[31mred\tq\u{9b}";
    let queues = run(&["queues"]);
    assert!(
        queues
            .lines()
            .any(|l| l.starts_with(escaped_queue) && l.contains("READY")),
        "{queues}"
    );
    let listed = run(&["results", "list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not listed: {listed}"));
    assert!(line.contains(escaped_queue), "{line}");
    assert!(line.ends_with(r"e2e::names::noop\u{7}\r"), "{line}");
    let shown = run(&["results", "show", &id]);
    assert!(
        shown.contains(r#""queue_name": "a\u001b[31mred\tq\u009b""#),
        "{shown}"
    );
    assert!(
        shown.contains(r#""path": "e2e::names::noop\u0007\r""#),
        "{shown}"
    );
    let parsed: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(parsed["task"]["queue_name"], queue);
    // The rows stay reachable by the filters, which are not held to the naming rules.
    let filtered = run(&["results", "list", "--queue", queue]);
    assert!(filtered.contains("(1 result(s))"), "{filtered}");
    // `--format json` carries the real strings (escaped the JSON way).
    let listed: Value =
        serde_json::from_str(&run(&["results", "list", "--format", "json"])).unwrap();
    assert_eq!(listed[0]["task"]["queue_name"], queue);
    assert_eq!(listed[0]["task"]["path"], path);
    let stats: Value = serde_json::from_str(&run(&["queues", "--format", "json"])).unwrap();
    assert_eq!(stats[0]["queue_name"], queue);
}
