//! Behaviour only PostgreSQL has: LISTEN/NOTIFY wake-up and surviving terminated sessions.

use super::env::{output_text, wait_with_deadline, Env, Store, POSTGRES_URL};
use serde_json::json;
use std::process::Command;
use taskhost::TaskResultStatus;

/// Run SQL with psql against the test database.
fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([POSTGRES_URL, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .expect("psql is needed to manage the PostgreSQL test sessions");
    assert!(out.status.success(), "psql failed: {}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_idle_worker_is_woken_by_notify_long_before_its_poll_interval() {
    let env = Env::new(Store::Postgres, "");
    // A 300 s poll interval: only the notification can start the task within the deadline.
    let worker = env.spawn_worker(&["--interval", "300", "--max-tasks", "1"]);
    let id = env.enqueue("record_key", json!(["woken"]));
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.result(&id).status(), TaskResultStatus::Successful);
}

#[test]
fn workers_reconnect_after_their_sessions_are_terminated() {
    let app = format!("taskhost_e2e_{}", std::process::id());
    let env = Env::new_with_url(
        Store::Postgres,
        &format!("{POSTGRES_URL}?application_name={app}"),
        "",
    );
    let worker = env.spawn_worker(&["--max-tasks", "2"]);
    let first = env.enqueue("record_key", json!(["before"]));
    env.wait_for_result(&first, |r| r.status() == TaskResultStatus::Successful);
    let killed = psql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{app}'"
    ));
    assert!(
        killed.trim().parse::<u32>().unwrap() > 0,
        "no session was terminated"
    );
    let second = env.enqueue("record_key", json!(["after"]));
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.result(&second).status(), TaskResultStatus::Successful);
    assert_eq!(env.log_lines(), ["before", "after"]);
}

/// Issue 18: a wait whose LISTEN session is terminated mid-wait reconnects, reads its row
/// again, and still returns once the worker finishes the task.
#[test]
fn a_wait_survives_its_listen_session_being_terminated() {
    use taskhost_plugin_api::{WaitFinishedRequest, WaitFinishedResponse, WAIT_FINISHED};
    let app = format!("taskhost_e2e_wait_{}", std::process::id());
    let env = Env::new_with_url(
        Store::Postgres,
        &format!("{POSTGRES_URL}?application_name={app}"),
        "",
    );
    let id = env.enqueue("record_and_sleep", json!(["listened", 1500]));
    let worker = env.spawn_worker(&["--max-tasks", "1"]);
    env.wait_for_line(|l| l == "start listened");
    let listen_sessions = format!(
        "FROM pg_stat_activity WHERE application_name = '{app}' \
         AND query LIKE 'LISTEN taskhost_finished;%'"
    );
    let killer = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + super::env::DEADLINE;
        // Once the wait listens (its session's last query starts with the LISTEN), end that
        // session.
        while psql(&format!("SELECT count(*) {listen_sessions}")).trim() == "0" {
            assert!(
                std::time::Instant::now() < deadline,
                "the wait never listened"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        psql(&format!(
            "SELECT count(pg_terminate_backend(pid)) {listen_sessions}"
        ))
    });
    let request = WaitFinishedRequest {
        ids: vec![id.clone()],
        timeout_secs: super::env::DEADLINE.as_secs_f64(),
    };
    let answer: WaitFinishedResponse = taskhost::task_backends()
        .get("default")
        .unwrap()
        .call_ext_json(WAIT_FINISHED, &request)
        .unwrap();
    assert_eq!(killer.join().unwrap().trim(), "1");
    assert_eq!(answer.finished, std::slice::from_ref(&id));
    assert_eq!(env.result(&id).status(), TaskResultStatus::Successful);
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
}
