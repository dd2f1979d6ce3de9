//! Django's `tests/tasks/test_immediate_backend.py` (`ImmediateBackendTestCase` with
//! `QUEUES = []`, and `ImmediateBackendTransactionTestCase`), plus the transaction,
//! signal and bad-input cases on the Immediate backend.

use super::tasks::{
    calculate_meaning_of_life, complex_exception, complex_return_value, enqueue_meaning_of_life,
    failing_task_value_error, get_task_id, noop_task, noop_task_async, panicking_task,
    test_context, ValueError, PANIC_MESSAGE, VALUE_ERROR_MESSAGE,
};
use super::{default_on, taskhost_records, SignalLog, DUMMY, IMMEDIATE};
use chrono::Utc;
use serde_json::json;
use std::panic::{catch_unwind, AssertUnwindSafe};
use taskhost::{
    aatomic, atomic, default_task_backend, Error, TaskOptions, TaskResult, TaskResultStatus,
};
use taskhost_e2e::{logs, TestConfig};
use taskhost_plugin_api::TaskDescription;

/// `ImmediateBackendTestCase`'s settings: `default` on the Immediate backend, any queue.
fn settings() -> TestConfig {
    default_on(IMMEDIATE, "")
}

const NOT_SUPPORTED: &str = "This backend does not support retrieving or refreshing results.";

/// What Django's `test_enqueue_task` checks of a successful run.
fn assert_ran_once<R>(result: &TaskResult<R>, task: &TaskDescription) {
    assert_eq!(result.status(), TaskResultStatus::Successful);
    assert!(result.is_finished());
    let enqueued = result.enqueued_at().expect("enqueued_at");
    let started = result.started_at().expect("started_at");
    let finished = result.finished_at().expect("finished_at");
    assert_eq!(result.last_attempted_at(), Some(started));
    assert!(started >= enqueued);
    assert!(finished >= started);
    // Django: `return_value` is None; a unit return is stored as JSON null.
    assert!(result.raw_return_value().is_none_or(|v| v.is_null()));
    assert_eq!(result.task(), task);
    assert!(result.kwargs().is_empty());
    assert_eq!(result.attempts(), 1);
    assert_eq!(result.worker_ids().len(), 1);
    assert!(result.errors().is_empty());
}

/// What Django's `test_catches_exception` checks of a failed run.
fn assert_failed<R: serde::de::DeserializeOwned + std::fmt::Debug>(
    result: &TaskResult<R>,
    task: &TaskDescription,
) {
    assert_eq!(result.status(), TaskResultStatus::Failed);
    assert_eq!(
        result.return_value().unwrap_err(),
        Error::NoReturnValue("Task failed")
    );
    assert_eq!(result.raw_return_value(), None);
    assert!(result.is_finished());
    let enqueued = result.enqueued_at().expect("enqueued_at");
    let started = result.started_at().expect("started_at");
    let finished = result.finished_at().expect("finished_at");
    assert_eq!(result.last_attempted_at(), Some(started));
    assert!(started >= enqueued && finished >= started);
    assert_eq!(result.task(), task);
    assert!(result.args().is_empty() && result.kwargs().is_empty());
    assert_eq!(result.errors().len(), 1);
}

// Mirrors test_using_correct_backend.
#[test]
fn the_default_alias_is_an_immediate_backend_without_options() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    assert_eq!(backend.class_name(), "ImmediateBackend");
    assert_eq!(backend.alias(), "default");
    assert!(backend.options().is_empty());
    assert!(backend.supports_async_task() && backend.supports_priority());
    assert!(!backend.supports_defer() && !backend.supports_get_result());
}

// Mirrors test_enqueue_task.
#[test]
fn enqueue_runs_sync_and_async_tasks_at_once() {
    let _s = settings();
    let result = noop_task.enqueue(1, 3).unwrap();
    assert_ran_once(&result, &noop_task.description());
    assert_eq!(result.args(), [json!(1), json!(3)]);
    result.return_value().unwrap();

    let first_worker = result.worker_ids()[0].clone();

    let result = noop_task_async.enqueue(1, 3).unwrap();
    assert_ran_once(&result, &noop_task_async.description());
    assert_eq!(result.args(), [json!(1), json!(3)]);
    // Django: one worker id per backend instance.
    assert_eq!(result.worker_ids(), [first_worker]);
}

// Mirrors test_enqueue_task_async.
#[tokio::test]
async fn aenqueue_runs_sync_and_async_tasks_at_once() {
    let _s = settings();
    let result = noop_task.aenqueue(1, 3).await.unwrap();
    assert_ran_once(&result, &noop_task.description());
    let result = noop_task_async.aenqueue(1, 3).await.unwrap();
    assert_ran_once(&result, &noop_task_async.description());
}

// Mirrors test_catches_exception (the ValueError case).
#[test]
fn an_error_returned_by_a_task_fails_the_run_and_logs_one_error() {
    let _s = settings();
    default_task_backend().unwrap();
    let (result, captured) = logs::capture("taskhost=debug", || {
        failing_task_value_error.enqueue().unwrap()
    });
    let errors: Vec<_> = taskhost_records(&captured)
        .into_iter()
        .filter(|r| r.level == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{}", captured.text());
    assert!(errors[0].text.contains(VALUE_ERROR_MESSAGE), "{errors:?}");

    assert_failed(&result, &failing_task_value_error.description());
    let error = &result.errors()[0];
    assert_eq!(
        error.exception_class_path,
        std::any::type_name::<ValueError>()
    );
    assert!(
        error.traceback.ends_with(&format!(
            "{}: {VALUE_ERROR_MESSAGE}\n",
            error.exception_class_path
        )),
        "{}",
        error.traceback
    );
}

// Mirrors test_catches_exception (the SystemExit case: Rust's abrupt, non-value failure is a
// panic). The panic is caught, the run is FAILED and the caller carries on.
#[test]
fn a_panicking_task_fails_the_run_and_the_caller_carries_on() {
    let _s = settings();
    default_task_backend().unwrap();
    let (result, captured) = logs::capture("taskhost=debug", || panicking_task.enqueue().unwrap());
    let errors: Vec<_> = taskhost_records(&captured)
        .into_iter()
        .filter(|r| r.level == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{}", captured.text());
    assert!(errors[0].text.contains(PANIC_MESSAGE), "{errors:?}");

    assert_failed(&result, &panicking_task.description());
    let error = &result.errors()[0];
    assert_eq!(error.exception_class_path, "panic");
    assert!(
        error
            .traceback
            .ends_with(&format!("panic: {PANIC_MESSAGE}\n")),
        "{}",
        error.traceback
    );
    // The caller carries on: the next enqueue works.
    assert_eq!(
        calculate_meaning_of_life.enqueue().unwrap().return_value(),
        Ok(42)
    );
}

// Mirrors test_complex_exception: the traceback keeps the error's cause chain.
#[test]
fn an_error_with_a_cause_keeps_the_chain_in_its_traceback() {
    let _s = settings();
    let result = complex_exception.enqueue().unwrap();
    assert_failed(&result, &complex_exception.description());
    let error = &result.errors()[0];
    assert_eq!(
        error.exception_class_path,
        std::any::type_name::<ValueError>()
    );
    assert!(
        error
            .traceback
            .contains("Caused by (innermost first):\n    This task failed\n"),
        "{}",
        error.traceback
    );
    assert!(
        error.traceback.ends_with("ValueError: This task failed\n"),
        "{}",
        error.traceback
    );
}

// Mirrors test_complex_return_value: a return value JSON cannot store fails the run.
#[test]
fn a_return_value_json_cannot_store_fails_the_run() {
    let _s = settings();
    let (result, captured) =
        logs::capture("taskhost=debug", || complex_return_value.enqueue().unwrap());
    assert!(taskhost_records(&captured)
        .iter()
        .any(|r| r.level == "ERROR"));
    assert_eq!(result.status(), TaskResultStatus::Failed);
    assert!(result.started_at().is_some() && result.finished_at().is_some());
    assert_eq!(result.raw_return_value(), None);
    let error = &result.errors()[0];
    assert_eq!(error.exception_class_path, "taskhost::UnsupportedValue");
    assert!(
        error.traceback.contains("Unsupported value: NaN"),
        "{}",
        error.traceback
    );
    assert!(
        error.traceback.contains("at return value"),
        "{}",
        error.traceback
    );
}

// Mirrors test_result.
#[test]
fn the_return_value_is_kept() {
    let _s = settings();
    let result = default_task_backend()
        .unwrap()
        .enqueue(&calculate_meaning_of_life.description(), &())
        .unwrap();
    assert_eq!(result.status(), TaskResultStatus::Successful);
    assert_eq!(result.cast::<i64>().return_value(), Ok(42));
}

// Mirrors test_result_async.
#[tokio::test]
async fn the_return_value_is_kept_with_aenqueue() {
    let _s = settings();
    let result = default_task_backend()
        .unwrap()
        .aenqueue(&calculate_meaning_of_life.description(), &())
        .await
        .unwrap();
    assert_eq!(result.status(), TaskResultStatus::Successful);
    assert_eq!(result.return_value(), Ok(json!(42)));
}

// Mirrors test_cannot_get_result.
#[tokio::test]
async fn get_result_is_not_supported() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    assert_eq!(
        backend.get_result("123").unwrap_err(),
        Error::NotSupported(NOT_SUPPORTED.into())
    );
    assert_eq!(
        backend.aget_result("123").await.unwrap_err(),
        Error::NotSupported(NOT_SUPPORTED.into())
    );
}

// Mirrors test_cannot_refresh_result.
#[tokio::test]
async fn refresh_is_not_supported() {
    let _s = settings();
    let mut result = calculate_meaning_of_life.aenqueue().await.unwrap();
    assert_eq!(
        result.arefresh().await.unwrap_err(),
        Error::NotSupported(NOT_SUPPORTED.into())
    );
    assert_eq!(
        result.refresh().unwrap_err(),
        Error::NotSupported(NOT_SUPPORTED.into())
    );
    // The result is left as it was.
    assert_eq!(result.return_value(), Ok(42));
}

// Mirrors test_cannot_pass_run_after.
#[test]
fn run_after_is_refused() {
    let _s = settings();
    let message = "Backend does not support run_after.";
    assert_eq!(
        failing_task_value_error
            .using(TaskOptions::new().run_after(Utc::now()))
            .unwrap_err(),
        Error::InvalidTask(message.into())
    );
    // A task made with run_after elsewhere is refused by validate_task and by enqueue.
    let deferred = {
        let _dummy = default_on(DUMMY, "");
        failing_task_value_error
            .using(TaskOptions::new().run_after(Utc::now()))
            .unwrap()
    };
    let backend = default_task_backend().unwrap();
    assert_eq!(
        backend.validate_task(&deferred.description()).unwrap_err(),
        Error::InvalidTask(message.into())
    );
    assert_eq!(
        deferred.enqueue().unwrap_err(),
        Error::InvalidTask(message.into())
    );
}

// Mirrors test_enqueue_logs: exactly three records, each with the result id.
#[test]
fn a_successful_run_logs_enqueued_running_and_successful() {
    let _s = settings();
    default_task_backend().unwrap();
    let (result, captured) = logs::capture("taskhost=debug", || noop_task.enqueue(1, 3).unwrap());
    let records = taskhost_records(&captured);
    assert_eq!(records.len(), 3, "{}", captured.text());
    let id = result.id();
    let path = noop_task.module_path();
    assert_eq!(records[0].level, "DEBUG");
    assert_eq!(
        records[0].text,
        format!("Task id={id} path={path} enqueued backend=default")
    );
    assert_eq!(records[1].level, "INFO");
    assert_eq!(
        records[1].text,
        format!("Task id={id} path={path} state=RUNNING")
    );
    assert_eq!(records[2].level, "INFO");
    assert_eq!(
        records[2].text,
        format!("Task id={id} path={path} state=SUCCESSFUL")
    );
}

// Mirrors test_failed_logs.
#[test]
fn a_failed_run_logs_state_failed_at_error_level() {
    let _s = settings();
    default_task_backend().unwrap();
    let (result, captured) = logs::capture("taskhost=debug", || {
        failing_task_value_error.enqueue().unwrap()
    });
    let records = taskhost_records(&captured);
    assert_eq!(records.len(), 3, "{}", captured.text());
    assert!(records[0].text.contains("enqueued") && records[0].text.contains(result.id()));
    assert!(records[1].text.contains("state=RUNNING") && records[1].text.contains(result.id()));
    assert_eq!(records[2].level, "ERROR");
    assert!(records[2].text.contains("state=FAILED") && records[2].text.contains(result.id()));
    assert!(records[2].text.contains(VALUE_ERROR_MESSAGE));
}

// Mirrors test_successful_task_no_none_in_logs (6.1; `..._no_none_type_in_logs` on main).
#[test]
fn a_successful_run_logs_no_none() {
    let _s = settings();
    default_task_backend().unwrap();
    let (result, captured) = logs::capture("taskhost=debug", || noop_task.enqueue(1, 3).unwrap());
    assert_eq!(result.status(), TaskResultStatus::Successful);
    let text = captured.text();
    assert!(!text.is_empty());
    assert!(!text.contains("None"), "{text}");
    assert!(!text.contains("null"), "{text}");
}

// Mirrors test_takes_context.
#[test]
fn a_task_taking_context_sees_its_own_result() {
    let _s = settings();
    let result = get_task_id.enqueue().unwrap();
    assert_eq!(result.return_value().unwrap(), result.id());
}

// Mirrors test_context: the first run is attempt 1.
#[test]
fn the_context_says_attempt_1_during_the_first_run() {
    let _s = settings();
    let result = test_context.enqueue(1).unwrap();
    assert_eq!(result.status(), TaskResultStatus::Successful);
    // And the fixture really checks: expecting attempt 2 fails the run.
    let result = test_context.enqueue(2).unwrap();
    assert_eq!(result.status(), TaskResultStatus::Failed);
    assert_eq!(result.errors()[0].exception_class_path, "panic");
}

/// The settings of Django's `test_validate_on_enqueue`: only `queue-1` is allowed.
fn only_queue_1() -> TestConfig {
    TestConfig::new(&format!(
        "[tasks.default]\nbackend = \"{IMMEDIATE}\"\nqueues = [\"queue-1\"]\n"
    ))
}

const UNKNOWN_QUEUE: &str = "Queue 'unknown_queue' is not valid for backend.";

// Mirrors test_validate_on_enqueue: a task valid when made is checked again at enqueue.
#[test]
fn enqueue_validates_again_against_the_config_in_force() {
    let _s = settings();
    let task = noop_task
        .using(TaskOptions::new().queue_name("unknown_queue"))
        .unwrap();
    let _changed = only_queue_1();
    assert_eq!(
        task.enqueue(1, 3).unwrap_err(),
        Error::InvalidTask(UNKNOWN_QUEUE.into())
    );
}

// Mirrors test_validate_on_aenqueue.
#[tokio::test]
async fn aenqueue_validates_again_against_the_config_in_force() {
    let _s = settings();
    let task = noop_task
        .using(TaskOptions::new().queue_name("unknown_queue"))
        .unwrap();
    let _changed = only_queue_1();
    assert_eq!(
        task.aenqueue(1, 3).await.unwrap_err(),
        Error::InvalidTask(UNKNOWN_QUEUE.into())
    );
}

// Mirrors ImmediateBackendTransactionTestCase.test_doesnt_wait_until_transaction_commit_by_default
// (taskhost waits by default; `enqueue_on_commit = false` gives Django's behaviour).
#[test]
fn with_enqueue_on_commit_off_the_task_runs_inside_the_scope() {
    let _s = default_on(IMMEDIATE, "enqueue_on_commit = false");
    let result = atomic(|| {
        let result = noop_task.enqueue(1, 3)?;
        assert!(result.enqueued_at().is_some());
        assert_eq!(result.status(), TaskResultStatus::Successful);
        Ok::<_, Error>(result)
    })
    .unwrap();
    assert_eq!(result.status(), TaskResultStatus::Successful);
}

// Not in Django's suite (enqueue_on_commit, SPEC §6): by default an enqueue inside a scope
// returns a READY result at once and runs the task once, at the commit, with that result's id.
#[test]
fn by_default_an_enqueue_in_a_scope_runs_once_at_the_commit() {
    let _s = settings();
    let signals = SignalLog::start();
    let result = atomic(|| {
        let result = noop_task.enqueue(1, 3)?;
        assert_eq!(result.status(), TaskResultStatus::Ready);
        assert_eq!(result.enqueued_at(), None);
        assert!(signals.of(result.id()).is_empty(), "nothing ran yet");
        Ok::<_, Error>(result)
    })
    .unwrap();
    let finished: Vec<_> = signals
        .of(result.id())
        .into_iter()
        .filter(|s| s.signal == "task_finished")
        .collect();
    assert_eq!(finished.len(), 1, "ran exactly once");
    assert_eq!(finished[0].status, TaskResultStatus::Successful);
    // The caller's copy is the READY result of the enqueue; the Immediate backend keeps no
    // results to refresh it from.
    assert_eq!(result.status(), TaskResultStatus::Ready);
}

// Not in Django's suite: a scope rolled back (by Err, or by a panic) never runs the task.
#[test]
fn a_rolled_back_scope_never_runs_the_task() {
    let _s = settings();
    let signals = SignalLog::start();
    let mut id = String::new();
    let rolled_back: Result<(), Error> = atomic(|| {
        id = noop_task.enqueue(1, 3)?.id().to_string();
        Err(Error::InvalidTask("roll back".into()))
    });
    assert!(rolled_back.is_err());
    assert!(signals.of(&id).is_empty());

    let mut id = String::new();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        atomic(|| {
            id = noop_task.enqueue(1, 3)?.id().to_string();
            if !id.is_empty() {
                panic!("roll back by panic");
            }
            Ok::<_, Error>(())
        })
    }));
    assert!(panicked.is_err());
    assert!(!id.is_empty());
    assert!(signals.of(&id).is_empty());
}

// Not in Django's suite: the async scope, with aenqueue.
#[tokio::test]
async fn aatomic_runs_an_aenqueued_task_at_the_commit_only() {
    let _s = settings();
    let signals = SignalLog::start();
    let committed = aatomic(async {
        let result = noop_task_async.aenqueue(1, 3).await?;
        assert_eq!(result.status(), TaskResultStatus::Ready);
        assert!(signals.of(result.id()).is_empty());
        Ok::<_, Error>(result)
    })
    .await
    .unwrap();
    let statuses: Vec<_> = signals
        .of(committed.id())
        .into_iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(
        statuses,
        [
            TaskResultStatus::Ready,
            TaskResultStatus::Running,
            TaskResultStatus::Successful
        ]
    );

    let mut id = String::new();
    let rolled_back: Result<(), Error> = aatomic(async {
        id = noop_task_async.aenqueue(1, 3).await?.id().to_string();
        Err(Error::InvalidTask("roll back".into()))
    })
    .await;
    assert!(rolled_back.is_err());
    assert!(signals.of(&id).is_empty());
}

// Not in Django's suite (Django's signals, §5): enqueued, started, finished, in that order, each
// sent by the backend class.
#[test]
fn the_signals_go_out_in_order_from_the_backend_class() {
    let _s = settings();
    let signals = SignalLog::start();
    let result = noop_task.enqueue(1, 3).unwrap();
    let seen = signals.of(result.id());
    let summary: Vec<_> = seen
        .iter()
        .map(|s| (s.signal, s.sender.as_str(), s.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("task_enqueued", "ImmediateBackend", TaskResultStatus::Ready),
            (
                "task_started",
                "ImmediateBackend",
                TaskResultStatus::Running
            ),
            (
                "task_finished",
                "ImmediateBackend",
                TaskResultStatus::Successful
            ),
        ]
    );
    assert!(seen.iter().all(|s| s.enqueued));
    assert!(!seen[1].finished && seen[2].finished);

    let failed = failing_task_value_error.enqueue().unwrap();
    let last = signals.of(failed.id()).pop().unwrap();
    assert_eq!(
        (last.signal, last.status),
        ("task_finished", TaskResultStatus::Failed)
    );
}

// Not in Django's suite: a task may enqueue another; on the Immediate backend the inner task
// runs (to completion) inside the outer one.
#[test]
fn a_task_can_enqueue_another_task() {
    let _s = settings();
    let signals = SignalLog::start();
    let outer = enqueue_meaning_of_life.enqueue().unwrap();
    assert_eq!(outer.status(), TaskResultStatus::Successful);
    let inner_id = outer.return_value().unwrap();
    assert_ne!(inner_id, outer.id());
    let inner = signals.summary(&inner_id);
    assert_eq!(inner.len(), 3);
    assert_eq!(inner[2].2, TaskResultStatus::Successful);
}

// The bad input on the Immediate backend: priorities out of range and unknown queues
// are refused before anything runs.
#[test]
fn bad_options_are_refused_before_anything_runs() {
    let _s = TestConfig::new(&format!(
        "[tasks.default]\nbackend = \"{IMMEDIATE}\"\nqueues = [\"default\"]\n"
    ));
    for priority in [-101, 101] {
        assert_eq!(
            noop_task
                .using(TaskOptions::new().priority(priority))
                .unwrap_err(),
            Error::InvalidTask("priority must be a whole number between -100 and 100.".into())
        );
    }
    assert_eq!(
        noop_task
            .using(TaskOptions::new().queue_name("emails"))
            .unwrap_err(),
        Error::InvalidTask("Queue 'emails' is not valid for backend.".into())
    );
}

// Not in Django's suite (issue 18: waiting for a result): the Immediate backend's results are
// finished when the enqueue returns, so `wait` returns at once without asking the backend; a
// result deferred to the commit cannot be waited on (nothing to read it from).
#[test]
fn wait_returns_a_finished_result_at_once_and_cannot_wait_on_a_deferred_one() {
    let _s = settings();
    let mut result = calculate_meaning_of_life.enqueue().unwrap();
    let value = result
        .wait(std::time::Duration::ZERO)
        .unwrap()
        .return_value()
        .unwrap();
    assert_eq!(value, 42);
    let mut deferred = atomic(|| noop_task.enqueue(1, 3)).unwrap();
    assert_eq!(
        deferred
            .wait(std::time::Duration::from_secs(5))
            .unwrap_err(),
        Error::NotSupported(NOT_SUPPORTED.into())
    );
}
