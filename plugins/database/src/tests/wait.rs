//! `taskhost.wait_finished`: waits woken by completions and rescues, several waits of one
//! process, retries that do not wake, and bad requests.

use super::api::*;
use super::harness::{on_both_databases, Kind, TestDb};
use serde_json::json;
use taskhost_plugin_api::{
    Backend, ErrorKind, PluginError, TaskResultStatus, WaitFinishedResponse, WAIT_FINISHED,
};

on_both_databases!(
    waits_of_one_process_each_return_when_their_task_finishes,
    a_rescue_that_fails_a_task_wakes_its_wait,
    a_failure_that_will_be_retried_does_not_end_a_wait,
    a_finished_result_answers_at_once_and_bad_requests_are_refused,
);

/// `taskhost.wait_finished` for `ids`, at most `timeout_secs`.
fn wait(
    b: &crate::DatabaseBackend,
    ids: &[&str],
    timeout_secs: f64,
) -> Result<WaitFinishedResponse, PluginError> {
    let request = json!({ "ids": ids, "timeout_secs": timeout_secs }).to_string();
    let answer = b.call_ext(WAIT_FINISHED, &request)?;
    Ok(serde_json::from_str(&answer).unwrap())
}

/// Three waits in one backend share its LISTEN connection (PostgreSQL) or watch (SQLite); each
/// returns with its own task, completed by another backend instance (another worker). On
/// PostgreSQL a wait reads the store once when it starts, once when its completion is
/// announced, and at most once more (the listening starting while it had begun); on SQLite the
/// `-done` file names no ids, so a wait reads the store once more per completion batch.
fn waits_of_one_process_each_return_when_their_task_finishes(db: TestDb) {
    let (waiter, _) = db.backend();
    let (worker, _) = db.backend();
    let ids: Vec<String> = (0..3)
        .map(|_| enqueue(&worker, "default").id.to_string())
        .collect();
    let claimed = claim(&worker, "w1", 3);
    assert_eq!(claimed.len(), 3);
    let most = match db.kind {
        Kind::Postgres => 3,
        Kind::Sqlite => 1 + claimed.len() as u64,
    };
    std::thread::scope(|s| {
        let waits: Vec<_> = ids
            .iter()
            .map(|id| {
                let waiter = &waiter;
                s.spawn(move || wait(waiter, &[id], 60.0).unwrap())
            })
            .collect();
        // Long enough for the waits to block first (the test passes either way).
        std::thread::sleep(std::time::Duration::from_millis(200));
        for task in &claimed {
            db.tick();
            assert!(complete(&worker, &[success(task, json!(1))])[0].applied);
        }
        for (id, wait) in ids.iter().zip(waits) {
            let answer = wait.join().unwrap();
            assert_eq!(answer.finished, std::slice::from_ref(id));
            assert!(answer.pending.is_empty());
            assert!(answer.checks <= most, "{answer:?}");
        }
    });
}

fn a_rescue_that_fails_a_task_wakes_its_wait(db: TestDb) {
    let (waiter, _) = db.backend();
    let (worker, _) = db
        .try_backend("default", json!({"max_rescues": 1}))
        .unwrap();
    let poison = enqueue(&worker, "default");
    claim(&worker, "w1", 1);
    std::thread::scope(|s| {
        let wait = s.spawn(|| wait(&waiter, &[&poison.id], 60.0).unwrap());
        // Long enough for the wait to block first (the test passes either way).
        std::thread::sleep(std::time::Duration::from_millis(200));
        db.advance_secs(61);
        assert_eq!(rescue(&worker), 1);
        let answer = wait.join().unwrap();
        assert_eq!(answer.finished, [poison.id.to_string()]);
        assert!(answer.checks <= 3, "{answer:?}");
    });
    assert_eq!(
        get(&waiter, &poison.id).unwrap().status,
        TaskResultStatus::Failed
    );
}

/// A failed attempt with a retry makes the task READY again: no announcement, and a wait that
/// times out read the store once.
fn a_failure_that_will_be_retried_does_not_end_a_wait(db: TestDb) {
    let (b, _) = db.backend();
    let task = enqueue(&b, "default");
    let claimed = claim(&b, "w1", 1).remove(0);
    let retry_at = db.now() + chrono::Duration::seconds(5);
    assert!(complete(&b, &[failure(&claimed, Some(retry_at))])[0].applied);
    let answer = wait(&b, &[&task.id], 0.3).unwrap();
    assert_eq!(
        (answer.finished.len(), answer.pending, answer.checks),
        (0, vec![task.id.to_string()], 1)
    );
}

fn a_finished_result_answers_at_once_and_bad_requests_are_refused(db: TestDb) {
    let (b, _) = db.backend();
    let task = enqueue(&b, "default");
    let claimed = claim(&b, "w1", 1).remove(0);
    complete(&b, &[success(&claimed, json!("ok"))]);
    let answer = wait(&b, &[&task.id, &task.id], 3600.0).unwrap();
    assert_eq!(answer.finished, [task.id.to_string(), task.id.to_string()]);
    assert_eq!(answer.checks, 1);
    let unknown = "01890a5d-ac96-774b-bcce-b302099a8057";
    let err = wait(&b, &[&task.id, unknown], 1.0).unwrap_err();
    assert_eq!(
        (err.kind, err.message()),
        (ErrorKind::RESULT_DOES_NOT_EXIST, unknown)
    );
    let invalid = |request: &str| {
        let err = b.call_ext(WAIT_FINISHED, request).unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST, "{request}: {err:?}");
        err.message().to_string()
    };
    let message = invalid(&json!({"ids": [task.id], "timeout_secs": -1}).to_string());
    assert!(
        message.contains("zero or more seconds, got -1"),
        "{message}"
    );
    let message = invalid(&json!({"ids": [], "timeout_secs": 1}).to_string());
    assert!(message.contains("at least one result id"), "{message}");
    let message = invalid(r#"{"ids": ["x"], "timeout": 1}"#);
    assert!(
        message.starts_with("invalid taskhost.wait_finished payload"),
        "{message}"
    );
}

/// PostgreSQL: completions announce only while a process is registered as waiting; a wait
/// registers its LISTEN session and unregisters when it ends.
#[test]
fn postgres_completions_announce_only_while_someone_waits() {
    use ::postgres::fallible_iterator::FallibleIterator;
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let (b, _) = db.backend();
    let mut listener = db.postgres();
    listener.batch_execute("LISTEN taskhost_finished").unwrap();
    let unheard = enqueue(&b, "default");
    let heard = enqueue(&b, "default");
    let claimed = claim(&b, "w1", 2);
    // Nobody waits: no announcement.
    assert!(complete(&b, &[success(&claimed[0], json!(1))])[0].applied);
    // A process waits (as a wait's registration would say): the next completion announces.
    let mut other = db.postgres();
    other
        .batch_execute("INSERT INTO taskhost_waiters (pid) VALUES (pg_backend_pid())")
        .unwrap();
    assert!(complete(&b, &[success(&claimed[1], json!(2))])[0].applied);
    // The channel is the database's: other tests' announcements come too. Notifications
    // arrive in commit order, so the first completion's would come before the second's.
    let mut heard_before: Vec<String> = Vec::new();
    let mut notifications = listener.notifications();
    let mut iter = notifications.timeout_iter(std::time::Duration::from_secs(30));
    loop {
        let n = iter
            .next()
            .unwrap()
            .expect("the second completion was announced");
        let ids: Vec<String> = n.payload().split(',').map(str::to_string).collect();
        if ids.contains(&heard.id.to_string()) {
            break;
        }
        heard_before.extend(ids);
    }
    drop(iter);
    drop(notifications);
    assert!(
        !heard_before.contains(&unheard.id.to_string()),
        "{heard_before:?}"
    );
    other
        .batch_execute("DELETE FROM taskhost_waiters WHERE pid = pg_backend_pid()")
        .unwrap();
    // A wait registers while it waits, and unregisters when it ends (the last wait closes its
    // connection).
    let registered = |client: &mut ::postgres::Client| -> i64 {
        client
            .query_one("SELECT count(*) FROM taskhost_waiters", &[])
            .unwrap()
            .get(0)
    };
    let task = enqueue(&b, "default");
    let answer = wait(&b, &[&task.id], 0.2).unwrap();
    assert_eq!(answer.pending, [task.id.to_string()]);
    // Its registration ended with it.
    assert_eq!(registered(&mut listener), 0);
    // Registered while it waits: it returns when the task finishes.
    std::thread::scope(|s| {
        let waiting = s.spawn(|| wait(&b, &[&task.id], 60.0).unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while registered(&mut listener) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the wait never registered"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let claimed = claim(&b, "w1", 1).remove(0);
        complete(&b, &[success(&claimed, json!(3))]);
        assert_eq!(waiting.join().unwrap().finished, [task.id.to_string()]);
    });
    assert_eq!(registered(&mut listener), 0);
}
