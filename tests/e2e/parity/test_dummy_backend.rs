//! Django's `tests/tasks/test_dummy_backend.py` (`DummyBackendTestCase` with `QUEUES = []`,
//! and `DummyBackendTransactionTestCase`), plus the transaction and bad-input cases on
//! the Dummy backend, where what was stored can be looked at.

use super::tasks::{calculate_meaning_of_life, get_task_id, noop_task, noop_task_async, sleep_for};
use super::{default_on, taskhost_records, SignalLog, DUMMY, PANICKING};
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use taskhost::{
    aatomic, atomic, default_task_backend, Error, TaskOptions, TaskResult, TaskResultStatus,
};
use taskhost_e2e::{logs, TestConfig};
use taskhost_plugin_api::{Json, TaskDescription, TaskResultData};

/// `DummyBackendTestCase`'s settings: `default` on a fresh Dummy backend, any queue.
fn settings() -> TestConfig {
    default_on(DUMMY, "")
}

/// The Dummy backend's extension operation that replaces a stored result (a test hook).
const UPDATE: &str = "taskhost.backends.dummy.update";

/// The ids of the results the default backend stores, in enqueue order.
fn stored_ids() -> Vec<String> {
    default_task_backend()
        .unwrap()
        .results()
        .unwrap()
        .iter()
        .map(|r| r.id().to_string())
        .collect()
}

/// What Django's `test_enqueue_task` checks of a stored result.
fn assert_stored_ready<R: serde::de::DeserializeOwned + std::fmt::Debug>(
    result: &TaskResult<R>,
    task: &TaskDescription,
) {
    assert_eq!(result.status(), TaskResultStatus::Ready);
    assert!(!result.is_finished());
    assert!(result.enqueued_at().is_some());
    assert_eq!(result.started_at(), None);
    assert_eq!(result.finished_at(), None);
    assert_eq!(result.last_attempted_at(), None);
    assert_eq!(
        result.return_value().unwrap_err(),
        Error::NoReturnValue("Task has not finished yet")
    );
    assert_eq!(result.task(), task);
    assert!(result.kwargs().is_empty());
    assert_eq!(result.attempts(), 0);
    let stored: Vec<TaskResultData> = default_task_backend()
        .unwrap()
        .results()
        .unwrap()
        .iter()
        .map(|r| r.data().clone())
        .collect();
    assert!(stored.contains(result.data()));
}

// Mirrors test_using_correct_backend.
#[test]
fn the_default_alias_is_a_dummy_backend() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    assert_eq!(backend.class_name(), "DummyBackend");
    assert_eq!(backend.alias(), "default");
    assert!(backend.supports_defer() && backend.supports_async_task());
    assert!(backend.supports_priority() && !backend.supports_get_result());
}

// Mirrors test_enqueue_task.
#[test]
fn enqueue_stores_a_ready_result_and_runs_nothing() {
    let _s = settings();
    let result = noop_task.enqueue(1, 3).unwrap();
    assert_stored_ready(&result, &noop_task.description());
    assert_eq!(result.args(), [json!(1), json!(3)]);
    let result = noop_task_async.enqueue(1, 3).unwrap();
    assert_stored_ready(&result, &noop_task_async.description());
    assert_eq!(stored_ids().len(), 2);
}

// Mirrors test_enqueue_task_async.
#[tokio::test]
async fn aenqueue_stores_a_ready_result_and_runs_nothing() {
    let _s = settings();
    let result = noop_task.aenqueue(1, 3).await.unwrap();
    assert_stored_ready(&result, &noop_task.description());
    let result = noop_task_async.aenqueue(1, 3).await.unwrap();
    assert_stored_ready(&result, &noop_task_async.description());
}

// Mirrors test_get_result.
#[test]
fn get_result_returns_the_stored_result() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    let result = backend.enqueue(&noop_task.description(), &(1, 3)).unwrap();
    assert_eq!(backend.get_result(result.id()).unwrap(), result);
}

// Mirrors test_get_result_async.
#[tokio::test]
async fn aget_result_returns_the_stored_result() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    let result = backend
        .aenqueue(&noop_task.description(), &(1, 3))
        .await
        .unwrap();
    assert_eq!(backend.aget_result(result.id()).await.unwrap(), result);
}

// Mirrors test_get_missing_result; also a malformed id and a well-formed unknown one.
#[tokio::test]
async fn get_result_of_an_unknown_or_malformed_id_is_task_result_does_not_exist() {
    let _s = settings();
    noop_task.enqueue(1, 3).unwrap();
    let backend = default_task_backend().unwrap();
    for id in [
        "123",
        "not a uuid",
        "0190d8a4-0000-7000-8000-000000000000",
        "",
    ] {
        let expected = Error::TaskResultDoesNotExist(id.to_string());
        assert_eq!(backend.get_result(id).unwrap_err(), expected);
        assert_eq!(backend.aget_result(id).await.unwrap_err(), expected);
        assert_eq!(noop_task.get_result(id).unwrap_err(), expected);
    }
}

/// Play a worker: mark the stored result `id` SUCCESSFUL with `value`.
fn finish_stored(id: &str, value: Value) {
    let backend = default_task_backend().unwrap();
    let mut stored = backend.get_result(id).unwrap().data().clone();
    stored.status = TaskResultStatus::Successful;
    stored.return_value = Some(Json::encode(&value).unwrap());
    let () = backend.call_ext_json(UPDATE, &stored).unwrap();
}

// Mirrors test_refresh_result: a change to the stored result is seen by refresh().
#[test]
fn refresh_sees_a_change_to_the_stored_result() {
    let _s = settings();
    let mut result = calculate_meaning_of_life.enqueue().unwrap();
    finish_stored(result.id(), json!(42));
    assert_eq!(result.status(), TaskResultStatus::Ready);
    result.refresh().unwrap();
    assert_eq!(result.status(), TaskResultStatus::Successful);
    assert_eq!(result.return_value(), Ok(42));
}

// Not in Django's suite: refresh copies Django's TASK_REFRESH_ATTRS only; the task, id, args,
// kwargs and backend of the caller's copy stay as they were.
#[test]
fn refresh_copies_only_the_refreshed_fields() {
    let _s = settings();
    let mut result = noop_task.enqueue(1, 3).unwrap();
    let backend = default_task_backend().unwrap();
    let mut stored = backend.get_result(result.id()).unwrap().data().clone();
    stored.args = Json::encode(&json!(["changed"])).unwrap();
    stored.task.priority = 50;
    stored.worker_ids = vec!["w1".into()];
    stored.status = TaskResultStatus::Running;
    let () = backend.call_ext_json(UPDATE, &stored).unwrap();
    result.refresh().unwrap();
    assert_eq!(result.status(), TaskResultStatus::Running);
    assert_eq!(result.worker_ids(), ["w1"]);
    assert_eq!(result.args(), [json!(1), json!(3)]);
    assert_eq!(result.task().priority, 0);
}

// Mirrors test_refresh_result_async.
#[tokio::test]
async fn arefresh_sees_a_change_to_the_stored_result() {
    let _s = settings();
    let mut result = calculate_meaning_of_life.aenqueue().await.unwrap();
    finish_stored(result.id(), json!(42));
    assert_eq!(result.status(), TaskResultStatus::Ready);
    result.arefresh().await.unwrap();
    assert_eq!(result.status(), TaskResultStatus::Successful);
}

// Mirrors test_enqueue_logs: one record, with the id.
#[test]
fn enqueue_logs_one_record() {
    let _s = settings();
    default_task_backend().unwrap();
    let (result, captured) = logs::capture("taskhost=debug", || noop_task.enqueue(1, 3).unwrap());
    let records = taskhost_records(&captured);
    assert_eq!(records.len(), 1, "{}", captured.text());
    assert_eq!(records[0].level, "DEBUG");
    assert_eq!(
        records[0].text,
        format!(
            "Task id={} path={} enqueued backend=default",
            result.id(),
            noop_task.module_path()
        )
    );
}

// Mirrors test_errors.
#[test]
fn a_stored_result_has_no_errors() {
    let _s = settings();
    let result = calculate_meaning_of_life.enqueue().unwrap();
    assert!(result.errors().is_empty());
}

// Mirrors test_validate_disallowed_async_task (Django mocks supports_async_task=False; here the
// alias uses a plugin that does not declare it).
#[test]
fn an_async_task_is_refused_by_a_backend_without_async_support() {
    let _s = default_on(PANICKING, "");
    let backend = default_task_backend().unwrap();
    assert!(!backend.supports_async_task());
    let expected = Error::InvalidTask("Backend does not support async Tasks.".into());
    assert_eq!(
        backend
            .validate_task(&noop_task_async.description())
            .unwrap_err(),
        expected
    );
    assert_eq!(noop_task_async.validate().unwrap_err(), expected);
    assert_eq!(noop_task_async.enqueue(1, 3).unwrap_err(), expected);
}

// Mirrors test_check.
#[test]
fn check_reports_no_problems() {
    let _s = settings();
    assert_eq!(default_task_backend().unwrap().check().unwrap(), []);
}

// Mirrors test_takes_context: a task taking context is stored READY like any other.
#[test]
fn a_task_taking_context_is_stored_ready() {
    let _s = settings();
    let result = get_task_id.enqueue().unwrap();
    assert_eq!(result.status(), TaskResultStatus::Ready);
    assert!(result.args().is_empty());
}

// Mirrors test_clear.
#[test]
fn clear_drops_every_result() {
    let _s = settings();
    let result = calculate_meaning_of_life.enqueue().unwrap();
    let backend = default_task_backend().unwrap();
    assert_eq!(stored_ids(), [result.id()]);
    backend.clear().unwrap();
    assert!(stored_ids().is_empty());
    assert_eq!(
        backend.get_result(result.id()).unwrap_err(),
        Error::TaskResultDoesNotExist(result.id().to_string())
    );
    assert_eq!(
        backend.get_result(result.id()).unwrap_err().to_string(),
        result.id()
    );
}

fn only_queue_1() -> TestConfig {
    TestConfig::new(&format!(
        "[tasks.default]\nbackend = \"{DUMMY}\"\nqueues = [\"queue-1\"]\n"
    ))
}

const UNKNOWN_QUEUE: &str = "Queue 'unknown_queue' is not valid for backend.";

// Mirrors test_validate_on_enqueue.
#[test]
fn enqueue_validates_again_against_the_config_in_force() {
    let task = {
        let _s = settings();
        noop_task
            .using(TaskOptions::new().queue_name("unknown_queue"))
            .unwrap()
    };
    let _changed = only_queue_1();
    assert_eq!(
        task.enqueue(1, 3).unwrap_err(),
        Error::InvalidTask(UNKNOWN_QUEUE.into())
    );
    assert!(stored_ids().is_empty());
}

// Mirrors test_validate_on_aenqueue.
#[tokio::test]
async fn aenqueue_validates_again_against_the_config_in_force() {
    let task = {
        let _s = settings();
        noop_task
            .using(TaskOptions::new().queue_name("unknown_queue"))
            .unwrap()
    };
    let _changed = only_queue_1();
    assert_eq!(
        task.aenqueue(1, 3).await.unwrap_err(),
        Error::InvalidTask(UNKNOWN_QUEUE.into())
    );
}

// Mirrors DummyBackendTransactionTestCase.test_doesnt_wait_until_transaction_commit_by_default
// (taskhost waits by default; `enqueue_on_commit = false` gives Django's behaviour).
#[test]
fn with_enqueue_on_commit_off_an_enqueue_in_a_scope_is_stored_at_once() {
    let _s = default_on(DUMMY, "enqueue_on_commit = false");
    atomic(|| {
        let result = noop_task.enqueue(1, 3)?;
        assert!(result.enqueued_at().is_some());
        assert_eq!(stored_ids(), [result.id()]);
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(stored_ids().len(), 1);
}

// Not in Django's suite (enqueue_on_commit, SPEC §6): by default an enqueue inside a scope is
// stored once, at the outermost commit, under the id of the result it returned.
#[test]
fn by_default_an_enqueue_in_a_scope_is_stored_at_the_commit() {
    let _s = settings();
    let mut result = atomic(|| {
        let result = noop_task.enqueue(1, 3)?;
        assert_eq!(result.status(), TaskResultStatus::Ready);
        assert_eq!(result.enqueued_at(), None);
        assert!(stored_ids().is_empty());
        Ok::<_, Error>(result)
    })
    .unwrap();
    assert_eq!(stored_ids(), [result.id()]);
    assert_eq!(result.enqueued_at(), None);
    result.refresh().unwrap();
    assert!(result.enqueued_at().is_some());
    // Committing another scope does not store it again.
    atomic(|| Ok::<_, Error>(())).unwrap();
    assert_eq!(stored_ids().len(), 1);
}

// Not in Django's suite: inside a scope, validation and argument errors are reported by the
// enqueue itself, not at the commit (the task is checked before it waits for the commit).
#[test]
fn errors_inside_a_scope_are_reported_at_the_enqueue() {
    let _s = TestConfig::new(&format!(
        "[tasks.default]\nbackend = \"{DUMMY}\"\nqueues = [\"default\"]\n"
    ));
    let task = {
        let _any_queue = settings();
        noop_task
            .using(TaskOptions::new().queue_name("elsewhere"))
            .unwrap()
    };
    atomic(|| {
        assert_eq!(
            task.enqueue(1, 3).unwrap_err(),
            Error::InvalidTask("Queue 'elsewhere' is not valid for backend.".into())
        );
        assert!(matches!(
            sleep_for.enqueue(f64::NAN),
            Err(Error::UnsupportedValue(_))
        ));
        Ok::<_, Error>(())
    })
    .unwrap();
    assert!(stored_ids().is_empty());
}

// Not in Django's suite: a scope rolled back by Err stores nothing.
#[test]
fn a_scope_rolled_back_by_err_stores_nothing() {
    let _s = settings();
    let rolled_back: Result<(), Error> = atomic(|| {
        noop_task.enqueue(1, 3)?;
        Err(Error::InvalidTask("roll back".into()))
    });
    assert!(rolled_back.is_err());
    assert!(stored_ids().is_empty());
}

// Not in Django's suite: a scope rolled back by a panic stores nothing; the panic goes on.
#[test]
fn a_scope_rolled_back_by_a_panic_stores_nothing() {
    let _s = settings();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        atomic(|| {
            let result = noop_task.enqueue(1, 3)?;
            if result.status() == TaskResultStatus::Ready {
                panic!("roll back by panic");
            }
            Ok::<_, Error>(())
        })
    }));
    assert!(panicked.is_err());
    assert!(stored_ids().is_empty());
    assert!(!taskhost::in_atomic_block());
}

// Not in Django's suite: nested scopes are savepoints. An inner rollback drops only its own
// enqueues; the outer commit stores the rest, in order.
#[test]
fn an_inner_rollback_keeps_the_outer_enqueues() {
    let _s = settings();
    let (before, committed_inner, after) = atomic(|| {
        let before = noop_task.enqueue(1, 0)?;
        let inner: Result<(), Error> = atomic(|| {
            noop_task.enqueue(2, 0)?;
            Err(Error::InvalidTask("inner rollback".into()))
        });
        assert!(inner.is_err());
        let committed_inner = atomic(|| noop_task.enqueue(3, 0))?;
        let after = noop_task.enqueue(4, 0)?;
        assert!(stored_ids().is_empty());
        Ok::<_, Error>((before, committed_inner, after))
    })
    .unwrap();
    assert_eq!(
        stored_ids(),
        [before.id(), committed_inner.id(), after.id()]
    );
    let args: Vec<Value> = default_task_backend()
        .unwrap()
        .results()
        .unwrap()
        .iter()
        .map(|r| r.args()[0].clone())
        .collect();
    assert_eq!(args, [json!(1), json!(3), json!(4)]);
}

// Not in Django's suite: an outer rollback drops what inner scopes committed.
#[test]
fn an_outer_rollback_drops_the_inner_commits() {
    let _s = settings();
    let rolled_back: Result<(), Error> = atomic(|| {
        atomic(|| noop_task.enqueue(1, 3))?;
        Err(Error::InvalidTask("outer rollback".into()))
    });
    assert!(rolled_back.is_err());
    assert!(stored_ids().is_empty());
}

// Not in Django's suite: the async scope stores at its commit, and not on rollback.
#[tokio::test]
async fn aatomic_stores_at_the_commit_only() {
    let _s = settings();
    let result = aatomic(async {
        let result = noop_task.aenqueue(1, 3).await?;
        assert!(stored_ids().is_empty());
        Ok::<_, Error>(result)
    })
    .await
    .unwrap();
    assert_eq!(stored_ids(), [result.id()]);

    let rolled_back: Result<(), Error> = aatomic(async {
        noop_task.aenqueue(1, 3).await?;
        // A sync scope inside an async one nests in it.
        atomic(|| noop_task.enqueue(2, 3))?;
        Err(Error::InvalidTask("roll back".into()))
    })
    .await;
    assert!(rolled_back.is_err());
    assert_eq!(stored_ids(), [result.id()]);
}

// Not in Django's suite (Django's signals, §5): the Dummy backend sends task_enqueued only,
// with enqueued_at set, from the backend class.
#[test]
fn the_dummy_backend_sends_task_enqueued_only() {
    let _s = settings();
    let signals = SignalLog::start();
    let result = noop_task.enqueue(1, 3).unwrap();
    let seen = signals.of(result.id());
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].signal, "task_enqueued");
    assert_eq!(seen[0].sender, "DummyBackend");
    assert_eq!(seen[0].status, TaskResultStatus::Ready);
    assert!(seen[0].enqueued);
}

// The bad input: arguments JSON cannot store are refused (nothing stored), and results
// are per backend instance: a new config starts empty.
#[test]
fn unstorable_arguments_are_refused_and_nothing_is_stored() {
    let _s = settings();
    match sleep_for.enqueue(f64::NEG_INFINITY) {
        Err(Error::UnsupportedValue(message)) => {
            assert!(message.contains("Unsupported value"), "{message}");
            assert!(message.contains("at args[0]"), "{message}");
        }
        other => panic!("expected UnsupportedValue, got {other:?}"),
    }
    assert!(stored_ids().is_empty());
    sleep_for.enqueue(0.5).unwrap();
    assert_eq!(stored_ids().len(), 1);
    let _fresh = settings();
    assert!(stored_ids().is_empty());
}

// Not in Django's suite (issue 18: waiting for a result): the Dummy backend never runs a task,
// so a wait ends when a change to the stored result (a test playing a worker) finishes it —
// woken by the change, not by polling — or fails at its timeout, naming the id and the timeout.
#[test]
fn wait_returns_when_a_change_finishes_the_stored_result_or_times_out() {
    use std::time::Duration;
    let _s = settings();
    let mut result = calculate_meaning_of_life.enqueue().unwrap();
    let timeout = Duration::from_millis(50);
    assert_eq!(
        result.wait(timeout).unwrap_err(),
        Error::WaitTimeout {
            id: result.id().to_string(),
            timeout
        }
    );
    let backend = default_task_backend().unwrap();
    let mut stored = backend.get_result(result.id()).unwrap().data().clone();
    let worker = std::thread::spawn(move || {
        // Long enough for the wait below to be blocked first (it passes either way).
        std::thread::sleep(Duration::from_millis(100));
        stored.status = TaskResultStatus::Successful;
        stored.return_value = Some(Json::encode(&42).unwrap());
        let () = backend.call_ext_json(UPDATE, &stored).unwrap();
    });
    assert_eq!(
        result.wait(Duration::from_secs(60)).unwrap().return_value(),
        Ok(42)
    );
    worker.join().unwrap();
    // A cleared store: the id is unknown.
    let mut gone = calculate_meaning_of_life.enqueue().unwrap();
    default_task_backend().unwrap().clear().unwrap();
    assert_eq!(
        gone.wait(Duration::from_secs(5)).unwrap_err(),
        Error::TaskResultDoesNotExist(gone.id().to_string())
    );
}
