// Waiting for a result (`TaskResult::wait`, `await_finished`, `taskhost.wait_finished`) while a
// real worker process runs it; `include!`d once per database by `worker_suite!` (mod.rs), with
// `STORE` and `Env` in scope.

use crate::worker::env::{output_text, wait_with_deadline, DEADLINE};
use serde_json::json;
use std::time::Duration;
use taskhost::{task_backends, Error, TaskResultStatus};
use taskhost_plugin_api::{WaitFinishedRequest, WaitFinishedResponse, WAIT_FINISHED};

/// `taskhost.wait_finished` on the test's backend, as the host calls it.
fn wait_finished(ids: &[&str], timeout_secs: f64) -> Result<WaitFinishedResponse, Error> {
    let request = WaitFinishedRequest {
        ids: ids.iter().map(|id| id.to_string()).collect(),
        timeout_secs,
    };
    task_backends()
        .get("default")
        .unwrap()
        .call_ext_json(WAIT_FINISHED, &request)
}

#[test]
fn wait_returns_the_result_once_the_worker_has_finished_it() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("record_and_sleep", json!(["waited", 300]));
    let mut result = env.result(&id);
    assert_eq!(result.status(), TaskResultStatus::Ready);
    let worker = env.spawn_worker(&["--max-tasks", "1"]);
    let value: String = result
        .wait(DEADLINE)
        .unwrap()
        .clone()
        .cast::<String>()
        .return_value()
        .unwrap();
    assert_eq!(value, "waited");
    assert_eq!(result.status(), TaskResultStatus::Successful);
    assert!(result.finished_at().is_some());
    // The task had ended when the wait returned.
    assert!(env.log_lines().contains(&"end waited".to_string()), "{:?}", env.log_lines());
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
    // A finished result returns at once, as it is.
    let before = result.clone();
    assert_eq!(*result.wait(Duration::ZERO).unwrap(), before);
}

/// The wait is woken by the store, not by reading the result again and again: while the task
/// runs (1.5 s) the backend reads the row once when the wait starts and once when the
/// completion is announced.
#[test]
fn a_wait_reads_the_store_only_when_woken_by_the_completion() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("record_and_sleep", json!(["slow", 1500]));
    let worker = env.spawn_worker(&["--max-tasks", "1"]);
    env.wait_for_line(|l| l == "start slow");
    let answer = wait_finished(&[&id], DEADLINE.as_secs_f64()).unwrap();
    assert_eq!(answer.finished, std::slice::from_ref(&id));
    assert!(answer.pending.is_empty());
    assert!(env.log_lines().contains(&"end slow".to_string()), "{:?}", env.log_lines());
    // 2 reads; one more allowed for a wake-up that concerned nothing (a lost connection).
    assert!(answer.checks <= 3, "the wait read the store {} times", answer.checks);
    assert_eq!(env.result(&id).status(), TaskResultStatus::Successful);
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
}

#[test]
fn a_wait_that_times_out_is_a_typed_error_naming_the_id_and_the_timeout() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("record_key", json!(["never run"]));
    let mut result = env.result(&id);
    let timeout = Duration::from_millis(300);
    let err = result.wait(timeout).unwrap_err();
    assert_eq!(
        err,
        Error::WaitTimeout {
            id: id.clone(),
            timeout
        }
    );
    let message = err.to_string();
    assert!(message.contains(&id) && message.contains("300ms"), "{message}");
    assert_eq!(result.status(), TaskResultStatus::Ready);
    // Nothing finished meanwhile: the store was read once, when the wait started.
    let answer = wait_finished(&[&id], 0.3).unwrap();
    assert_eq!((answer.finished.len(), answer.pending, answer.checks), (0, vec![id], 1));
}

#[test]
fn await_finished_returns_the_result_once_the_worker_has_finished_it() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("async_record_and_sleep", json!(["awaited", 200]));
    let mut result = env.result(&id);
    let worker = env.spawn_worker(&["--max-tasks", "1"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let finished = runtime
        .block_on(result.await_finished(DEADLINE))
        .unwrap()
        .clone();
    assert_eq!(finished.status(), TaskResultStatus::Successful);
    assert_eq!(finished.return_value().unwrap(), json!("awaited"));
    let timeout = Duration::from_millis(100);
    let other = env.enqueue("record_key", json!(["not awaited"]));
    let err = runtime
        .block_on(env.result(&other).await_finished(timeout))
        .unwrap_err();
    assert_eq!(err, Error::WaitTimeout { id: other, timeout });
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
}

#[test]
fn waiting_on_an_unknown_id_is_result_does_not_exist() {
    let _env = Env::new(STORE, "");
    let unknown = "01890a5d-ac96-774b-bcce-b302099a8057";
    let err = wait_finished(&[unknown], 5.0).unwrap_err();
    assert_eq!(err, Error::TaskResultDoesNotExist(unknown.to_string()));
    let err = wait_finished(&["not-a-uuid"], 5.0).unwrap_err();
    assert_eq!(err, Error::TaskResultDoesNotExist("not-a-uuid".to_string()));
    let err = wait_finished(&[], 5.0).unwrap_err();
    assert!(
        matches!(&err, Error::Backend { message, .. } if message.contains("at least one result id")),
        "{err:?}"
    );
}

#[test]
fn a_task_failed_by_the_worker_ends_the_wait_too() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("always_fails", json!(["doomed"]));
    let mut result = env.result(&id);
    let worker = env.spawn_worker(&["--max-tasks", "3", "--retry-backoff", "0.01"]);
    result.wait(DEADLINE).unwrap();
    assert_eq!(result.status(), TaskResultStatus::Failed);
    assert_eq!(result.errors().len(), 3);
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
}

/// A READY task cancelled while someone waits for it is finished (FAILED, cancelled): the
/// cancel wakes the wait, which returns at once rather than at its timeout.
#[test]
fn cancelling_a_ready_task_ends_the_wait_for_it() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("record_key", json!(["never"]));
    let waiting = {
        let request = WaitFinishedRequest {
            ids: vec![id.clone()],
            timeout_secs: DEADLINE.as_secs_f64(),
        };
        // The backend itself: the thread has no config of its own.
        let backend = task_backends().get("default").unwrap();
        std::thread::spawn(move || {
            backend.call_ext_json::<_, WaitFinishedResponse>(WAIT_FINISHED, &request)
        })
    };
    // Let the wait start listening first, so that the cancel is what wakes it.
    std::thread::sleep(Duration::from_millis(300));
    let mut result = env.result(&id);
    result.cancel().unwrap();
    let answer = waiting.join().unwrap().unwrap();
    assert_eq!(answer.finished, std::slice::from_ref(&id), "{answer:?}");
    assert!(result.is_cancelled());
    assert!(env.log_lines().is_empty(), "it never ran: {:?}", env.log_lines());
}
