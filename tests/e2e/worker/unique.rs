//! Unique tasks on the database backend, through the real plugin file and real processes:
//! concurrent `enqueue --unique` from many processes stores one task and every caller gets its
//! id; the READY/RUNNING scope frees the key once a worker process finished the task, a period
//! holds it after; derived keys meet for the same arguments only; and a backend that cannot
//! enforce a key refuses the task by name.

use super::env::{description, wait_with_deadline, Env, Store};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use taskhost::{task, task_backends, Error, TaskOptions, Unique, UniqueScope};
use taskhost_plugin_api::ListRequest;

/// A task of this test binary, enqueued (not run) to check the typed API.
#[task]
fn unique_invoice(customer: u32, lines: Vec<String>) -> u32 {
    customer + lines.len() as u32
}

/// The stored results of the worker app's task `name`.
fn stored(name: &str) -> Vec<String> {
    let request = ListRequest {
        task_path: Some(format!("taskhost_worker_app::{name}")),
        ..ListRequest::default()
    };
    task_backends()
        .get("default")
        .unwrap()
        .list_results(&request)
        .unwrap()
        .iter()
        .map(|r| r.id().to_string())
        .collect()
}

/// `processes` worker-app processes, started together, each running `enqueue … args`; their
/// outputs (`<id> <status>[ duplicate]`), in start order.
fn enqueue_concurrently(
    env: &Env,
    processes: usize,
    args: impl Fn(usize) -> Vec<String>,
) -> Vec<String> {
    let children: Vec<_> = (0..processes)
        .map(|i| {
            let mut all = vec![
                "enqueue".to_string(),
                "taskhost_worker_app::record_key".into(),
            ];
            all.extend(args(i));
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            env.command(&all).spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = wait_with_deadline(child);
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        })
        .collect()
}

/// Every output names the same id; exactly one enqueue stored it (not `duplicate`).
fn assert_one_task(outputs: &[String]) -> String {
    let ids: HashSet<&str> = outputs
        .iter()
        .map(|o| o.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "every caller gets the one task: {outputs:#?}");
    let fresh = outputs
        .iter()
        .filter(|o| !o.ends_with(" duplicate"))
        .count();
    assert_eq!(fresh, 1, "one enqueue stored it: {outputs:#?}");
    ids.into_iter().next().unwrap().to_string()
}

macro_rules! unique_suite {
    ($module:ident, $store:expr) => {
        mod $module {
            use super::*;
            const STORE: Store = $store;

            /// Many processes enqueue the same derived key (same arguments), then the same
            /// explicit key with different arguments, at once: one row each time, and every
            /// process got its id.
            #[test]
            fn unique_enqueues_from_many_processes_store_one_task() {
                let env = Env::new(STORE, "");
                let derived = enqueue_concurrently(&env, 8, |_| {
                    vec!["--args".into(), r#"["race"]"#.into(), "--unique".into()]
                });
                let id = assert_one_task(&derived);
                assert_eq!(stored("record_key"), vec![id.clone()]);
                let explicit = enqueue_concurrently(&env, 8, |i| {
                    vec![
                        "--args".into(),
                        format!(r#"["caller {i}"]"#),
                        "--unique-key".into(),
                        "order-7".into(),
                    ]
                });
                let other = assert_one_task(&explicit);
                assert_ne!(other, id, "another key");
                let mut rows = stored("record_key");
                rows.sort();
                let mut expected = vec![id, other];
                expected.sort();
                assert_eq!(rows, expected, "one row per key");
            }

            /// READY/RUNNING scope: held until a worker process finished the task, then free.
            #[test]
            fn the_key_is_free_again_once_a_worker_finished_the_task() {
                let env = Env::new(STORE, "");
                let backend = task_backends().get("default").unwrap();
                let task = description("record_key", "default", 0);
                let unique = Unique::key("nightly");
                let enqueue = |arg: &str| {
                    backend
                        .enqueue_json_unique(&task, vec![json!(arg)], Default::default(), &unique)
                        .unwrap()
                };
                let first = enqueue("first");
                assert!(!first.is_duplicate());
                let second = enqueue("second");
                assert!(second.is_duplicate());
                assert_eq!(second.id(), first.id());
                assert_eq!(second.args(), &[json!("first")], "the holder's arguments");
                let out = env.run_worker(&["--batch"]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(env.log_lines(), vec!["first"]);
                let third = enqueue("third");
                assert!(!third.is_duplicate(), "finished: the key is free");
                assert_ne!(third.id(), first.id());
                assert_eq!(stored("record_key").len(), 2);
            }

            /// A period holds the key after the task finished.
            #[test]
            fn a_period_key_stays_held_after_the_task_finished() {
                let env = Env::new(STORE, "");
                let backend = task_backends().get("default").unwrap();
                let task = description("record_key", "default", 0);
                let unique = Unique::derived().scope(UniqueScope::For(Duration::from_secs(3600)));
                let first = backend
                    .enqueue_json_unique(&task, vec![json!("report")], Default::default(), &unique)
                    .unwrap();
                let out = env.run_worker(&["--batch"]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                env.wait_for_result(first.id(), |r| r.is_finished());
                let again = backend
                    .enqueue_json_unique(&task, vec![json!("report")], Default::default(), &unique)
                    .unwrap();
                assert!(again.is_duplicate());
                assert_eq!(again.id(), first.id());
                assert_eq!(again.status(), taskhost::TaskResultStatus::Successful);
                assert_eq!(stored("record_key").len(), 1);
            }

            /// Through the typed API: the same arguments meet (sync, async and in a batch),
            /// other arguments do not.
            #[test]
            fn derived_keys_meet_for_the_same_arguments_only() {
                let _env = Env::new(STORE, "");
                let task = unique_invoice.unique().unwrap();
                let first = task.enqueue(7, vec!["a".into()]).unwrap();
                assert!(!first.is_duplicate());
                let same = task.enqueue(7, vec!["a".into()]).unwrap();
                assert!(same.is_duplicate());
                assert_eq!(same.id(), first.id());
                let runtime = tokio::runtime::Runtime::new().unwrap();
                let same_async = runtime
                    .block_on(task.aenqueue(7, vec!["a".into()]))
                    .unwrap();
                assert_eq!(same_async.id(), first.id());
                let other = task.enqueue(7, vec!["b".into()]).unwrap();
                assert!(!other.is_duplicate());
                assert_ne!(other.id(), first.id());
                // The application's own insert carries no key: refused, not ignored.
                let err = task.transactional_enqueue((7, vec![])).unwrap_err();
                assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
                assert!(
                    err.to_string().contains("carries no uniqueness key"),
                    "{err}"
                );
                // Without unique(), the same arguments are a new task.
                let plain = unique_invoice.enqueue(7, vec!["a".into()]).unwrap();
                assert_ne!(plain.id(), first.id());
                // A batch: held keys and keys repeated within it.
                let runs = task
                    .enqueue_many([(7, vec!["a".to_string()]), (8, vec![]), (8, vec![])])
                    .unwrap();
                assert_eq!(runs[0].id(), first.id());
                assert!(runs[0].is_duplicate());
                assert!(!runs[1].is_duplicate());
                assert_eq!(runs[2].id(), runs[1].id());
                assert!(runs[2].is_duplicate());
                // An explicit key, held for a period, set through `using`.
                let keyed = unique_invoice
                    .using(
                        TaskOptions::new()
                            .unique_key("invoice-1")
                            .unique_scope(UniqueScope::For(Duration::from_secs(60))),
                    )
                    .unwrap();
                let a = keyed.enqueue(1, vec![]).unwrap();
                let b = keyed.enqueue(2, vec!["x".into()]).unwrap();
                assert_eq!(b.id(), a.id());
                assert_eq!(b.args(), &[json!(1), json!([])]);
            }
        }
    };
}

unique_suite!(sqlite, Store::Sqlite);
unique_suite!(postgres, Store::Postgres);

/// A backend that does not declare `supports_unique` (Dummy) refuses a unique task, naming
/// itself, before anything is enqueued.
#[test]
fn a_backend_without_supports_unique_refuses_a_unique_task_by_name() {
    let _env = Env::new(Store::Sqlite, "");
    let dummy = task_backends().get("dummy").unwrap();
    let mut task = description("record_key", "default", 0);
    task.backend = "dummy".into();
    let err = dummy
        .enqueue_json_unique(
            &task,
            vec![json!("x")],
            Default::default(),
            &Unique::derived(),
        )
        .unwrap_err();
    let Error::InvalidTask(message) = &err else {
        panic!("expected InvalidTask, got {err:?}")
    };
    assert!(
        message.starts_with(
            "Backend 'dummy' (taskhost.backends.dummy.DummyBackend) does not support unique tasks"
        ),
        "{message}"
    );
    assert!(dummy.results().unwrap().is_empty(), "nothing enqueued");
    let err = unique_invoice
        .using(TaskOptions::new().backend("dummy").unique())
        .unwrap_err();
    assert!(err.to_string().contains("Backend 'dummy'"), "{err}");
}
