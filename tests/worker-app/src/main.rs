//! Test fixture: an application with tasks and the `taskhost` CLI mounted, so the end-to-end
//! tests can run real worker processes (`taskhost-worker-app worker --backend db …`) and kill
//! them. Tasks record each execution by appending a line to the file named by
//! `$TASKHOST_TEST_LOG`, so tests count executions across processes.
//!
//! It registers application state (a [`Greeter`] and a [`RunCounter`]) through
//! `cli_main!(state = ..)`, unless `$TASKHOST_TEST_STATE` says `none` (build an empty state) or
//! `fail` (the builder fails); each build is recorded in `$TASKHOST_TEST_STATE_LOG`.

mod traces;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use taskhost::{task, AppState, State};

/// Append `line` to `$TASKHOST_TEST_LOG` in one write (whole lines even across processes).
fn record(line: &str) {
    record_in("TASKHOST_TEST_LOG", line);
}

/// Append `line` to the file named by the environment variable `var`, if it is set.
fn record_in(var: &str, line: &str) {
    let Some(path) = std::env::var_os(var) else {
        return;
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// Records its key and returns it.
#[task(queue_name = "default")]
fn record_key(key: String) -> String {
    record(&key);
    key
}

/// Enqueues `record_key(key)` from inside the worker: a task that starts another.
#[task]
fn enqueue_record_key(key: String) -> Result<String, taskhost::Error> {
    Ok(record_key.enqueue(key)?.id().to_string())
}

/// Records its key, then sleeps `ms` milliseconds.
#[task]
fn record_and_sleep(key: String, ms: u64) -> String {
    record(&format!("start {key}"));
    std::thread::sleep(Duration::from_millis(ms));
    record(&format!("end {key}"));
    key
}

/// The async form of `record_and_sleep`.
#[task]
async fn async_record_and_sleep(key: String, ms: u64) -> String {
    record(&format!("start {key}"));
    tokio::time::sleep(Duration::from_millis(ms)).await;
    record(&format!("end {key}"));
    key
}

/// Records its attempt; sleeps `ms` on the first attempt only (so a killed first run can be
/// rescued and finish quickly). Allows 3 attempts.
#[task(max_attempts = 3, takes_context)]
fn slow_first_attempt(context: taskhost::TaskContext, key: String, ms: u64) -> usize {
    record(&format!("start {key} {}", context.attempt()));
    if context.attempt() == 1 {
        std::thread::sleep(Duration::from_millis(ms));
    }
    record(&format!("end {key} {}", context.attempt()));
    context.attempt()
}

/// Why a task failed on purpose.
#[derive(Debug, thiserror::Error)]
#[error("failing on purpose: {0}")]
struct OnPurpose(String);

/// Fails every time (up to 3 attempts).
#[task(max_attempts = 3)]
fn always_fails(key: String) -> Result<(), OnPurpose> {
    record(&format!("attempt {key}"));
    Err(OnPurpose(key))
}

/// Fails while fewer than `failures` attempts were made, then succeeds (up to 5 attempts).
#[task(max_attempts = 5, takes_context)]
fn flaky(context: taskhost::TaskContext, key: String, failures: usize) -> Result<usize, OnPurpose> {
    record(&format!("attempt {key} {}", context.attempt()));
    if context.attempt() <= failures {
        return Err(OnPurpose(format!("{key} attempt {}", context.attempt())));
    }
    Ok(context.attempt())
}

/// Takes longer than its timeout.
#[task(timeout = 0.2)]
async fn too_slow(key: String) -> String {
    record(&format!("start {key}"));
    tokio::time::sleep(Duration::from_secs(30)).await;
    key
}

/// The crash suite's unit of work: records `run <key> <pid>`, sleeps `ms` milliseconds, records
/// `done <key> <pid>`, and returns this process's id (so a test can tell which worker's result
/// was stored). Counting `run` lines counts executions, across processes.
#[task]
fn crash_work(key: String, ms: u64) -> u32 {
    let pid = std::process::id();
    record(&format!("run {key} {pid}"));
    std::thread::sleep(Duration::from_millis(ms));
    record(&format!("done {key} {pid}"));
    pid
}

/// Ends the whole process (a poison task).
#[task(max_attempts = 2)]
fn abort_process(key: String) {
    record(&format!("abort {key}"));
    std::process::abort();
}

/// Application state: the greeting `$TASKHOST_TEST_GREETING` held when the state was built
/// (default `hello`).
struct Greeter {
    greeting: String,
}

/// Application state: runs counted across every task run of this process (one shared value).
#[derive(Default)]
struct RunCounter {
    runs: AtomicU64,
}

/// Greets `name` with the registered [`Greeter`].
#[task]
fn greet(greeter: State<Greeter>, name: String) -> String {
    format!("{}, {name}", greeter.greeting)
}

/// The async form of `greet`, counting its runs in the registered [`RunCounter`]: returns
/// `<greeting>, <name> (run <n> in <pid>)`.
#[task]
async fn async_greet(name: String, greeter: State<Greeter>, runs: State<RunCounter>) -> String {
    let run = runs.runs.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::task::yield_now().await;
    let pid = std::process::id();
    format!("{}, {name} (run {run} in {pid})", greeter.greeting)
}

/// Records `start <key>`, then works in steps until it is asked to stop (at most 60 s),
/// checking `context.is_cancelled()` between steps; records `stopped <key> <cancelled>` and
/// returns its key.
#[task(takes_context)]
fn wait_for_cancel(context: taskhost::TaskContext, key: String) -> String {
    record(&format!("start {key}"));
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !context.is_cancelled() && std::time::Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(20));
    }
    record(&format!("stopped {key} {}", context.is_cancelled()));
    key
}

/// The async form of `wait_for_cancel`: races `context.cancelled()` against 60 s.
#[task(takes_context)]
async fn wait_for_cancel_async(context: taskhost::TaskContext, key: String) -> String {
    record(&format!("start {key}"));
    tokio::select! {
        _ = context.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_secs(60)) => {}
    }
    record(&format!("stopped {key} {}", context.is_cancelled()));
    key
}

/// The application state, built by the commands that run or check tasks; records
/// `state built <pid>` in `$TASKHOST_TEST_STATE_LOG`.
fn app_state() -> Result<AppState, String> {
    record_in(
        "TASKHOST_TEST_STATE_LOG",
        &format!("state built {}", std::process::id()),
    );
    match std::env::var("TASKHOST_TEST_STATE").as_deref() {
        Ok("none") => Ok(AppState::new()),
        Ok("fail") => Err("TASKHOST_TEST_STATE=fail: the greeting service is down".to_string()),
        _ => {
            let greeting =
                std::env::var("TASKHOST_TEST_GREETING").unwrap_or_else(|_| "hello".to_string());
            Ok(AppState::new()
                .with(Greeter { greeting })
                .with(RunCounter::default()))
        }
    }
}

/// Runs in a span of its own, inside the run's span (the trace test follows it).
#[task(queue_name = "default")]
fn traced(n: i64) -> i64 {
    tracing::info_span!("traced.inside").in_scope(|| n + 1)
}

fn main() -> std::process::ExitCode {
    let _traces = traces::install();
    taskhost_cli::cli_main!(state = app_state)
}
