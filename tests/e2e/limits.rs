//! Limits the host enforces before a plugin is called: `max_payload_bytes` per alias.

use serde_json::{json, Map, Value};
use taskhost::{task, task_backends, Error, TaskOptions};
use taskhost_e2e::TestConfig;
use taskhost_plugin_api::TaskDescription;

/// The typed bulk enqueue's fixture, on the alias `small` through `using` (never run here; its
/// path is `e2e::limits::big`).
#[task]
pub fn big(s: String) {
    let _ = s;
}

/// The configured limit: small, so the test moves few bytes.
const LIMIT: usize = 100;

fn description() -> TaskDescription {
    TaskDescription {
        path: "e2e::limits::big".into(),
        priority: 0,
        queue_name: "default".into(),
        backend: "small".into(),
        run_after: None,
        takes_context: false,
        is_async: false,
        max_attempts: None,
        timeout_secs: None,
    }
}

fn config() -> TestConfig {
    TestConfig::new(&format!(
        "[tasks.small]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n\
         max_payload_bytes = {LIMIT}\n"
    ))
}

/// One string argument whose args + kwargs JSON (`["x…x"]` and `{}`) is `size` bytes.
fn args_of_size(size: usize) -> (String, Vec<Value>) {
    let s = "x".repeat(size - 6);
    let args = vec![json!(s)];
    assert_eq!(
        serde_json::to_string(&args).unwrap().len() + "{}".len(),
        size
    );
    (s, args)
}

#[track_caller]
fn assert_refused(result: Result<impl std::fmt::Debug, Error>, size: usize) {
    match result {
        Err(Error::UnsupportedValue(message)) => {
            for part in [
                "'small'".to_string(),
                format!("{size} bytes"),
                format!("limit of {LIMIT} bytes"),
                "tasks.small.max_payload_bytes".to_string(),
            ] {
                assert!(message.contains(&part), "{part:?} not in: {message}");
            }
        }
        other => panic!("expected UnsupportedValue, got {other:?}"),
    }
}

#[test]
fn enqueue_at_the_limit_works_and_one_byte_over_is_refused() {
    let _c = config();
    let backend = task_backends().get("small").unwrap();
    let task = description();

    let (s, args) = args_of_size(LIMIT);
    backend.enqueue(&task, &(s,)).unwrap();
    backend
        .enqueue_json(&task, args.clone(), Map::new())
        .unwrap();
    backend
        .enqueue_many_json(vec![(task.clone(), args)])
        .unwrap();

    let (s, args) = args_of_size(LIMIT + 1);
    assert_refused(backend.enqueue(&task, &(s,)), LIMIT + 1);
    assert_refused(
        backend.enqueue_json(&task, args.clone(), Map::new()),
        LIMIT + 1,
    );
    // One oversized item refuses the whole batch, before any is enqueued.
    let (_, small) = args_of_size(10);
    assert_refused(
        backend.enqueue_many_json(vec![(task.clone(), small), (task.clone(), args)]),
        LIMIT + 1,
    );
}

#[test]
fn kwargs_count_towards_the_limit() {
    let _c = config();
    let backend = task_backends().get("small").unwrap();
    let task = description();
    let (_, args) = args_of_size(LIMIT - 9);
    // {"k":1} is 7 bytes where {} was 2: 5 more, still under; {"k":12345678} is 14: over.
    let mut kwargs = Map::new();
    kwargs.insert("k".into(), json!(1));
    backend.enqueue_json(&task, args.clone(), kwargs).unwrap();
    let mut kwargs = Map::new();
    kwargs.insert("k".into(), json!(12345678));
    assert_refused(backend.enqueue_json(&task, args, kwargs), LIMIT + 3);
}

#[tokio::test]
async fn aenqueue_is_limited_too() {
    let _c = config();
    let backend = task_backends().get("small").unwrap();
    let (s, _) = args_of_size(LIMIT + 1);
    assert_refused(backend.aenqueue(&description(), &(s,)).await, LIMIT + 1);
}

/// `Task::enqueue_many` writes each run's arguments as text and checks each run: at the limit
/// it is stored (and its arguments read back as given), one run over refuses the whole batch
/// before any is enqueued.
#[test]
fn task_enqueue_many_is_limited_per_run() {
    let _c = config();
    let backend = task_backends().get("small").unwrap();
    let task = big.using(TaskOptions::new().backend("small")).unwrap();
    let (at_limit, _) = args_of_size(LIMIT);
    let results = task.enqueue_many(vec![(at_limit.clone(),)]).unwrap();
    assert_eq!(results[0].args(), [json!(at_limit)]);
    let stored = backend.results().unwrap().len();

    let (small, _) = args_of_size(10);
    let (over, _) = args_of_size(LIMIT + 1);
    assert_refused(task.enqueue_many(vec![(small,), (over,)]), LIMIT + 1);
    assert_eq!(
        backend.results().unwrap().len(),
        stored,
        "none of the batch"
    );
}
