// Cancel and retry through real worker processes; `include!`d once per database by
// `cancel_suite!` (mod.rs), with `STORE` and the `env` helpers in scope.

use super::env::{output_text, spawn_logged, terminate, wait_with_deadline};
use serde_json::json;
use std::process::Command;
use taskhost::{Cancellation, Error, TaskResultStatus};

/// A READY task cancelled through the API is FAILED at once and never runs; the task beside it
/// runs.
#[test]
fn a_ready_task_cancelled_never_runs() {
    let env = Env::new(STORE, "");
    let doomed = env.enqueue("record_key", json!(["never"]));
    let kept = env.enqueue("record_key", json!(["runs"]));
    let mut result = env.result(&doomed);
    assert_eq!(result.cancel().unwrap(), Cancellation::Cancelled);
    assert_eq!(result.status(), TaskResultStatus::Failed);
    assert!(result.is_cancelled());
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.log_lines(), ["runs"]);
    let stored = env.result(&doomed);
    assert!(stored.is_cancelled() && stored.attempts() == 0, "{stored:?}");
    assert_eq!(env.result(&kept).status(), TaskResultStatus::Successful);
    // Cancelling it again, or a finished task, is a typed error naming the id and the alias.
    for id in [&doomed, &kept] {
        let err = env.result(id).cancel().unwrap_err();
        assert!(matches!(err, Error::AlreadyFinished { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(id.as_str()) && message.contains("'default'"), "{message}");
    }
}

/// A RUNNING task (sync and async) asked to stop is told through its context at the worker's
/// next heartbeat; it returns, and its result ends FAILED, cancelled, without a retry. The
/// worker carries on with the next task.
#[test]
fn a_running_task_sees_the_cancellation_at_the_heartbeat_and_ends_cancelled() {
    let env = Env::new(STORE, "");
    let sync = env.enqueue("wait_for_cancel", json!(["sync"]));
    let asynchronous = env.enqueue("wait_for_cancel_async", json!(["async"]));
    let (worker, log) = spawn_logged(&env, "worker", &["--lease", "1", "--concurrency", "2"]);
    env.wait_for_line(|l| l == "start sync");
    env.wait_for_line(|l| l == "start async");
    for id in [&sync, &asynchronous] {
        let mut result = env.result(id);
        assert_eq!(result.cancel().unwrap(), Cancellation::Requested);
        assert_eq!(result.status(), TaskResultStatus::Running);
    }
    for (id, key) in [(&sync, "sync"), (&asynchronous, "async")] {
        let ended = env.wait_for_result(id, |r| r.is_finished());
        assert!(ended.is_cancelled(), "{:?}", ended.errors());
        assert_eq!(ended.attempts(), 1);
        assert_eq!(ended.errors().len(), 1);
        let traceback = &ended.errors()[0].traceback;
        assert!(
            traceback.contains("told through its context and then returned successfully"),
            "{traceback}"
        );
        assert!(env.log_lines().contains(&format!("stopped {key} true")));
    }
    // The worker is still taking tasks.
    let next = env.enqueue("record_key", json!(["next"]));
    env.wait_for_result(&next, |r| r.status() == TaskResultStatus::Successful);
    terminate(&worker);
    let out = wait_with_deadline(worker);
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("cancelled while running"), "{printed}");
}

/// A task the worker claimed ahead (prefetch) and holds while another runs, cancelled and told
/// at a heartbeat before it got a slot, does not run: it ends cancelled "before it started".
#[test]
fn a_prefetched_task_cancelled_before_its_slot_does_not_run() {
    let env = Env::new(STORE, "");
    let first = env.enqueue("wait_for_cancel", json!(["first"]));
    let waiting = env.enqueue("record_key", json!(["waiting"]));
    let args = ["--lease", "1", "--concurrency", "1", "--prefetch", "4"];
    let (worker, log) = spawn_logged(&env, "worker", &args);
    env.wait_for_line(|l| l == "start first");
    let mut held = env.result(&waiting);
    assert_eq!(held.status(), TaskResultStatus::Running, "claimed with the first");
    assert_eq!(held.cancel().unwrap(), Cancellation::Requested);
    // The worker's heartbeat has told it…
    super::env::wait_for_file_line(&log, |l| {
        l.contains(&format!("Task id={waiting}: cancelled while running"))
    });
    // …before the slot frees up.
    env.result(&first).cancel().unwrap();
    let ended = env.wait_for_result(&waiting, |r| r.is_finished());
    assert!(ended.is_cancelled(), "{:?}", ended.errors());
    assert!(
        ended.errors()[0].traceback.contains("before it started; it did not run"),
        "{:?}",
        ended.errors()
    );
    env.wait_for_result(&first, |r| r.is_finished());
    assert!(!env.log_lines().contains(&"waiting".to_string()));
    terminate(&worker);
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", std::fs::read_to_string(&log).unwrap());
}

/// A FAILED task retried through the API is READY again with its history, and a worker runs
/// it again: `flaky` fails its first five attempts (all it has), and succeeds on the sixth.
#[test]
fn a_failed_task_retried_runs_again() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("flaky", json!(["f", 5]));
    let out = env.run_worker(&["--max-tasks", "5", "--retry-backoff", "0.01"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let mut result = env.result(&id);
    assert_eq!((result.status(), result.attempts()), (TaskResultStatus::Failed, 5));
    result.retry().unwrap();
    assert_eq!(result.status(), TaskResultStatus::Ready);
    assert_eq!((result.attempts(), result.errors().len()), (5, 5));
    let err = result.retry().unwrap_err();
    assert!(matches!(err, Error::NotFailed { status: TaskResultStatus::Ready, .. }), "{err:?}");
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let done = env.result(&id);
    assert_eq!(done.status(), TaskResultStatus::Successful);
    assert_eq!((done.attempts(), done.errors().len()), (6, 5));
    assert_eq!(done.return_value().unwrap(), json!(6));
    assert_eq!(env.log_lines().len(), 6);
}

/// `taskhost results cancel ID` and `results retry ID`: what they did, and errors naming the
/// id and the backend.
#[test]
fn the_cli_cancels_and_retries() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("record_key", json!(["cli"]));
    let out = env.taskhost_stdout(&["results", "cancel", &id]);
    assert!(out.contains(&format!("Cancelled task result '{id}' (it was READY)")), "{out}");
    assert!(env.result(&id).is_cancelled());
    let failed = |args: &[&str]| {
        let out = Command::new(taskhost_e2e::taskhost_bin())
            .arg("--config")
            .arg(&env.config_file)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let again = failed(&["results", "cancel", &id]);
    assert!(
        again.contains(&format!("Task result '{id}' of backend 'default' has already finished (FAILED)")),
        "{again}"
    );
    let out = env.taskhost_stdout(&["results", "retry", &id]);
    assert!(out.contains(&format!("Task result '{id}' is READY again")), "{out}");
    assert_eq!(env.result(&id).status(), TaskResultStatus::Ready);
    let not_failed = failed(&["results", "retry", &id]);
    assert!(not_failed.contains("is READY, not FAILED"), "{not_failed}");
    let ghost = "0190c0de-0000-7000-8000-00000000dead";
    let missing = failed(&["results", "cancel", ghost]);
    assert!(
        missing.contains(&format!("no task result with id '{ghost}' in backend 'default'")),
        "{missing}"
    );
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.log_lines(), ["cli"]);
}
