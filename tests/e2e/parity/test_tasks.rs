//! Django's `tests/tasks/test_tasks.py` (`TaskTestCase`): tasks, `using`, validation, results.
//!
//! Django's settings for the whole case: `default` on the Dummy backend with queues
//! `["default", "queue_1"]`, `immediate` on the Immediate backend with any queue, and `missing`
//! on a backend that cannot be imported. [`settings`] puts the same in force.

use super::tasks::{
    calculate_meaning_of_life, failing_task_value_error, noop_task, noop_task_async,
    noop_task_from_bare_decorator, sleep_for, ValueError, VALUE_ERROR_MESSAGE,
};
use super::{DUMMY, IMMEDIATE};
use chrono::{SubsecRound, Utc};
use serde_json::json;
use std::sync::Arc;
use taskhost::{
    default_task_backend, find_task, task_backends, Error, Task, TaskOptions, TaskResultStatus,
    DEFAULT_TASK_QUEUE_NAME, TASK_MAX_PRIORITY, TASK_MIN_PRIORITY,
};
use taskhost_e2e::TestConfig;
use taskhost_plugin_api::{TaskDescription, TaskResultData};

/// `TaskTestCase`'s settings (a fresh Dummy backend, so `setUp`'s `clear()` is implied).
fn settings() -> TestConfig {
    TestConfig::new(&format!(
        "[tasks.default]\nbackend = \"{DUMMY}\"\nqueues = [\"default\", \"queue_1\"]\n\
         [tasks.immediate]\nbackend = \"{IMMEDIATE}\"\nqueues = []\n\
         [tasks.missing]\nbackend = \"does.not.exist\"\n"
    ))
}

fn invalid_task(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::InvalidTask(message)) => message,
        other => panic!("expected InvalidTask, got {other:?}"),
    }
}

fn invalid_backend(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::InvalidTaskBackend { message, .. }) => message,
        other => panic!("expected InvalidTaskBackend, got {other:?}"),
    }
}

const PRIORITY_MESSAGE: &str = "priority must be a whole number between -100 and 100.";

// Mirrors test_using_correct_backend.
#[test]
fn default_task_backend_is_the_backend_of_the_default_alias() {
    let _s = settings();
    let default = default_task_backend().unwrap();
    assert!(Arc::ptr_eq(
        &default,
        &task_backends().get("default").unwrap()
    ));
    assert_eq!(default.class_name(), "DummyBackend");
    assert_eq!(default.backend_name(), DUMMY);
}

// Mirrors test_task_decorator.
#[test]
fn every_form_of_the_attribute_makes_a_task() {
    let _: &Task<(i64, i64), ()> = noop_task.task();
    let _: &Task<(i64, i64), ()> = noop_task_async.task();
    let _: &Task<(), ()> = noop_task_from_bare_decorator.task();
    for (definition, is_async) in [
        (noop_task.definition(), false),
        (noop_task_async.definition(), true),
        (noop_task_from_bare_decorator.definition(), false),
    ] {
        assert_eq!(definition.is_async(), is_async);
        assert_eq!(definition.priority, 0);
        assert_eq!(definition.queue_name, DEFAULT_TASK_QUEUE_NAME);
        assert_eq!(definition.backend, "default");
        assert!(!definition.takes_context);
    }
}

// Mirrors test_enqueue_task.
#[test]
fn enqueue_stores_a_ready_result_on_the_dummy_backend() {
    let _s = settings();
    let result = noop_task.enqueue(1, 3).unwrap();
    assert_eq!(result.status(), TaskResultStatus::Ready);
    assert_eq!(result.task(), &noop_task.description());
    assert_eq!(result.args(), [json!(1), json!(3)]);
    assert!(result.kwargs().is_empty());
    let stored: Vec<TaskResultData> = default_task_backend()
        .unwrap()
        .results()
        .unwrap()
        .iter()
        .map(|r| r.data().clone())
        .collect();
    assert_eq!(stored, [result.data().clone()]);

    let no_args = calculate_meaning_of_life.enqueue().unwrap();
    assert!(no_args.args().is_empty() && no_args.kwargs().is_empty());
}

// Mirrors test_enqueue_task_async.
#[tokio::test]
async fn aenqueue_stores_a_ready_result_on_the_dummy_backend() {
    let _s = settings();
    let result = noop_task.aenqueue(1, 3).await.unwrap();
    assert_eq!(result.status(), TaskResultStatus::Ready);
    assert_eq!(result.task(), &noop_task.description());
    assert_eq!(result.args(), [json!(1), json!(3)]);
    assert!(result.kwargs().is_empty());
    let stored = default_task_backend().unwrap().results().unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].data(), result.data());
}

fn assert_unsupported_value(result: Result<impl std::fmt::Debug, Error>, what: &str) {
    match result {
        Err(Error::UnsupportedValue(message)) => {
            assert!(message.starts_with("Unsupported value: "), "{message}");
            assert!(message.contains(what), "{message}");
            assert!(message.ends_with(" at args[0]"), "{message}");
        }
        other => panic!("expected UnsupportedValue, got {other:?}"),
    }
}

// Mirrors test_enqueue_with_invalid_argument (Rust refuses non-JSON types at compile time; a
// non-finite float is what gets through to enqueue).
#[test]
fn enqueue_refuses_an_argument_json_cannot_store() {
    let _s = settings();
    assert_unsupported_value(sleep_for.enqueue(f64::NAN), "NaN");
    assert_unsupported_value(sleep_for.enqueue(f64::INFINITY), "inf");
    assert!(default_task_backend()
        .unwrap()
        .results()
        .unwrap()
        .is_empty());
}

// Mirrors test_aenqueue_with_invalid_argument.
#[tokio::test]
async fn aenqueue_refuses_an_argument_json_cannot_store() {
    let _s = settings();
    assert_unsupported_value(sleep_for.aenqueue(f64::NAN).await, "NaN");
    assert!(default_task_backend()
        .unwrap()
        .results()
        .unwrap()
        .is_empty());
}

// Mirrors test_using_priority.
#[test]
fn using_priority_changes_the_copy_only() {
    let _s = settings();
    assert_eq!(noop_task.priority(), 0);
    let copy = noop_task.using(TaskOptions::new().priority(1)).unwrap();
    assert_eq!(copy.priority(), 1);
    assert_eq!(noop_task.priority(), 0);
}

// Mirrors test_using_queue_name.
#[test]
fn using_queue_name_changes_the_copy_only() {
    let _s = settings();
    assert_eq!(noop_task.queue_name(), DEFAULT_TASK_QUEUE_NAME);
    let copy = noop_task
        .using(TaskOptions::new().queue_name("queue_1"))
        .unwrap();
    assert_eq!(copy.queue_name(), "queue_1");
    assert_eq!(noop_task.queue_name(), DEFAULT_TASK_QUEUE_NAME);
}

// Mirrors test_using_run_after.
#[test]
fn using_run_after_changes_the_copy_only() {
    let _s = settings();
    let now = Utc::now();
    assert_eq!(noop_task.run_after(), None);
    let copy = noop_task.using(TaskOptions::new().run_after(now)).unwrap();
    // Stored to the microsecond, as every backend stores it.
    assert_eq!(copy.run_after(), Some(now.trunc_subsecs(6)));
    assert_eq!(noop_task.run_after(), None);
}

// Mirrors test_using_unknown_backend.
#[test]
fn using_an_unknown_alias_is_an_invalid_task_backend() {
    let _s = settings();
    assert_eq!(noop_task.backend(), "default");
    let message = invalid_backend(noop_task.using(TaskOptions::new().backend("unknown")));
    assert_eq!(message, "The connection 'unknown' doesn't exist.");
}

// Mirrors test_using_missing_backend (Django's reason is Python's ImportError text; ours names
// the library file and the dirs searched, and the alias).
#[test]
fn using_a_backend_that_cannot_be_loaded_is_an_invalid_task_backend() {
    let _s = settings();
    let message = invalid_backend(noop_task.using(TaskOptions::new().backend("missing")));
    assert!(
        message.starts_with("Could not find backend 'does.not.exist': "),
        "{message}"
    );
    assert!(
        message.contains("no library 'libdoes_not.so' in the plugin dirs searched"),
        "{message}"
    );
    assert!(message.ends_with("(alias 'missing')"), "{message}");
}

// Mirrors test_using_creates_new_instance.
#[test]
fn using_with_no_options_returns_an_equal_copy() {
    let _s = settings();
    let copy = noop_task.using(TaskOptions::new()).unwrap();
    assert_eq!(copy, noop_task);
    assert!(!std::ptr::eq(copy.task(), noop_task.task()));
}

// Mirrors test_chained_using.
#[test]
fn chained_using_keeps_earlier_options() {
    let _s = settings();
    let now = Utc::now();
    let run_after_task = noop_task.using(TaskOptions::new().run_after(now)).unwrap();
    assert_eq!(run_after_task.run_after(), Some(now.trunc_subsecs(6)));
    let priority_task = run_after_task
        .using(TaskOptions::new().priority(10))
        .unwrap();
    assert_eq!(priority_task.priority(), 10);
    assert_eq!(priority_task.run_after(), Some(now.trunc_subsecs(6)));
    assert_eq!(run_after_task.priority(), 0);
}

// Mirrors test_refresh_result.
#[tokio::test]
async fn refresh_and_arefresh_leave_an_unchanged_result_equal() {
    let _s = settings();
    let mut result = noop_task.aenqueue(1, 3).await.unwrap();
    let original = result.data().clone();
    result.refresh().unwrap();
    assert_eq!(result.data(), &original);
    result.arefresh().await.unwrap();
    assert_eq!(result.data(), &original);
}

// Mirrors test_invalid_priority (3.1 cannot be written: priority is an i32).
#[test]
fn using_refuses_a_priority_outside_minus_100_to_100() {
    let _s = settings();
    for priority in [
        TASK_MIN_PRIORITY - 1,
        TASK_MAX_PRIORITY + 1,
        i32::MIN,
        i32::MAX,
    ] {
        let message = invalid_task(noop_task.using(TaskOptions::new().priority(priority)));
        assert_eq!(message, PRIORITY_MESSAGE, "priority {priority}");
    }
    for priority in [100, -100, 0] {
        let copy = noop_task.using(TaskOptions::new().priority(priority));
        assert_eq!(copy.unwrap().priority(), priority);
    }
}

// Mirrors test_unknown_queue_name.
#[test]
fn using_refuses_a_queue_the_backend_does_not_list() {
    let _s = settings();
    let message = invalid_task(noop_task.using(TaskOptions::new().queue_name("queue-2")));
    assert_eq!(message, "Queue 'queue-2' is not valid for backend.");
    // `queues = []` turns queue validation off.
    let copy = noop_task
        .using(
            TaskOptions::new()
                .queue_name("queue-2")
                .backend("immediate"),
        )
        .unwrap();
    assert_eq!(copy.queue_name(), "queue-2");
}

// Mirrors test_call_task.
#[test]
fn call_runs_the_function_now() {
    assert_eq!(calculate_meaning_of_life.call(), 42);
}

// Mirrors test_call_task_async.
#[tokio::test]
async fn acall_runs_a_sync_function_now() {
    assert_eq!(calculate_meaning_of_life.acall().await, 42);
}

// Mirrors test_call_async_task.
#[tokio::test]
async fn acall_awaits_an_async_function() {
    let () = noop_task_async.acall(1, 3).await;
}

// Mirrors test_call_async_task_sync.
#[test]
fn call_of_an_async_function_runs_it_to_completion() {
    let () = noop_task_async.call(1, 3);
}

// Mirrors test_get_result.
#[test]
fn get_result_returns_an_equal_result() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    let result = backend.enqueue(&noop_task.description(), &(1, 3)).unwrap();
    let fetched = noop_task.get_result(result.id()).unwrap();
    assert_eq!(fetched.data(), result.data());
}

// Mirrors test_get_result_async.
#[tokio::test]
async fn aget_result_returns_an_equal_result() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    let result = backend
        .aenqueue(&noop_task.description(), &(1, 3))
        .await
        .unwrap();
    let fetched = noop_task.aget_result(result.id()).await.unwrap();
    assert_eq!(fetched.data(), result.data());
}

// Mirrors test_get_missing_result.
#[tokio::test]
async fn get_result_of_an_unknown_id_is_task_result_does_not_exist() {
    let _s = settings();
    assert_eq!(
        noop_task.get_result("123").unwrap_err(),
        Error::TaskResultDoesNotExist("123".into())
    );
    assert_eq!(
        noop_task.aget_result("123").await.unwrap_err(),
        Error::TaskResultDoesNotExist("123".into())
    );
}

fn mismatch_message() -> String {
    format!(
        "Task does not match (received '{}')",
        noop_task_async.module_path()
    )
}

// Mirrors test_get_incorrect_result.
#[test]
fn get_result_of_another_tasks_result_is_a_mismatch() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    let result = backend
        .enqueue(&noop_task_async.description(), &(1, 3))
        .unwrap();
    assert_eq!(
        noop_task.get_result(result.id()).unwrap_err(),
        Error::TaskResultMismatch(mismatch_message())
    );
}

// Mirrors test_get_incorrect_result_async.
#[tokio::test]
async fn aget_result_of_another_tasks_result_is_a_mismatch() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    let result = backend
        .aenqueue(&noop_task_async.description(), &(1, 3))
        .await
        .unwrap();
    assert_eq!(
        noop_task.aget_result(result.id()).await.unwrap_err(),
        Error::TaskResultMismatch(mismatch_message())
    );
}

// Not in Django's suite: Django's mismatch check compares the function only, so the result of a
// `using` copy matches the task it was made from.
#[test]
fn a_result_of_a_using_copy_matches_the_original_task() {
    let _s = settings();
    let copy = noop_task
        .using(TaskOptions::new().priority(5).queue_name("queue_1"))
        .unwrap();
    let result = copy.enqueue(1, 3).unwrap();
    let fetched = noop_task.get_result(result.id()).unwrap();
    assert_eq!(fetched.task().priority, 5);
    assert_eq!(fetched.task().queue_name, "queue_1");
}

// Mirrors test_get_backend.
#[test]
fn get_backend_resolves_the_tasks_alias() {
    let _s = settings();
    assert_eq!(noop_task.backend(), "default");
    assert_eq!(
        noop_task.get_backend().unwrap().class_name(),
        "DummyBackend"
    );
    let immediate_task = noop_task
        .using(TaskOptions::new().backend("immediate"))
        .unwrap();
    assert_eq!(immediate_task.backend(), "immediate");
    assert_eq!(
        immediate_task.get_backend().unwrap().class_name(),
        "ImmediateBackend"
    );
}

// Mirrors test_name.
#[test]
fn name_is_the_function_name() {
    assert_eq!(noop_task.name(), "noop_task");
    assert_eq!(noop_task_async.name(), "noop_task_async");
}

// Mirrors test_module_path (Rust paths use `::`; the registry plays import_string).
#[test]
fn module_path_finds_the_same_task_again() {
    assert_eq!(noop_task.module_path(), "e2e::parity::tasks::noop_task");
    assert_eq!(
        noop_task_async.module_path(),
        "e2e::parity::tasks::noop_task_async"
    );
    for task in [noop_task.definition(), noop_task_async.definition()] {
        let found = find_task(task.path).expect("registered");
        assert!(std::ptr::eq(found, task));
    }
}

// Mirrors test_pickle_task (6.1): a task travels as its description and is found again by path.
#[test]
fn a_task_description_round_trips_and_finds_the_task() {
    let _s = settings();
    let task = noop_task
        .using(TaskOptions::new().priority(3).run_after(Utc::now()))
        .unwrap();
    let text = serde_json::to_string(&task.description()).unwrap();
    let back: TaskDescription = serde_json::from_str(&text).unwrap();
    assert_eq!(back, task.description());
    assert!(std::ptr::eq(
        find_task(&back.path).unwrap(),
        noop_task.definition()
    ));
}

// Mirrors test_unpickle_arbitrary_string (6.1): a path that names no task finds nothing.
#[test]
fn a_path_that_names_no_task_finds_nothing() {
    assert!(find_task("does::not::exist::fake_task").is_none());
    assert!(find_task("does.not.exist.fake_task").is_none());
}

// Mirrors test_pickle_task_result (6.1): a result survives being stored and read back.
#[test]
fn a_task_result_round_trips_through_json() {
    let _s = settings();
    let result = noop_task.enqueue(1, 3).unwrap();
    let text = serde_json::to_string(result.data()).unwrap();
    let back: TaskResultData = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, result.data());
}

// Mirrors test_no_backends.
#[test]
fn enqueue_with_no_backends_configured_is_an_invalid_task_backend() {
    let _s = TestConfig::new("[tasks]\n");
    let message = invalid_backend(noop_task.enqueue(1, 3));
    assert_eq!(message, "The connection 'default' doesn't exist.");
}

// Mirrors test_task_error_invalid_exception / test_task_error_unknown_module as far as they
// apply: Rust cannot import a type by name, so a TaskError keeps the error's type path (which
// those tests corrupt before importing it).
#[test]
fn a_task_error_records_the_error_type_path() {
    let _s = settings();
    let immediate = failing_task_value_error
        .using(TaskOptions::new().backend("immediate"))
        .unwrap();
    let result = immediate.enqueue().unwrap();
    assert_eq!(result.backend(), "immediate");
    assert_eq!(result.errors().len(), 1);
    let error = &result.errors()[0];
    assert_eq!(
        error.exception_class_path,
        std::any::type_name::<ValueError>()
    );
    assert_eq!(error.exception_class_path, "e2e::parity::tasks::ValueError");
    assert!(error
        .traceback
        .ends_with(&format!("ValueError: {VALUE_ERROR_MESSAGE}\n")));
}
