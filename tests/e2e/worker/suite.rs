// The worker behaviour suite; `include!`d once per database by `worker_suite!` (mod.rs), with
// `STORE` and the `env` helpers in scope.

use super::env::{output_text, terminate, wait_for_file_line, wait_with_deadline};
use serde_json::json;
use std::collections::HashMap;
use taskhost::TaskResultStatus;

#[test]
fn a_batch_worker_runs_ready_tasks_by_priority_then_enqueue_order() {
    let env = Env::new(STORE, "");
    let low = env.enqueue_on("record_key", json!(["low"]), "default", -10);
    let first = env.enqueue_on("record_key", json!(["first"]), "default", 5);
    let high = env.enqueue_on("record_key", json!(["high"]), "default", 50);
    let second = env.enqueue_on("record_key", json!(["second"]), "default", 5);
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.log_lines(), ["high", "first", "second", "low"]);
    for id in [low, first, high, second] {
        let r = env.result(&id);
        assert_eq!(r.status(), TaskResultStatus::Successful);
        assert_eq!(r.attempts(), 1);
        assert!(r.started_at() >= r.enqueued_at() && r.finished_at() >= r.started_at());
    }
    assert!(output_text(&out).contains("No more tasks to run for worker_id="), "{}", output_text(&out));
}

#[test]
fn concurrent_workers_run_every_task_exactly_once() {
    let env = Env::new(STORE, "");
    let runs = (0..300).map(|i| json!([format!("k{i}")])).collect();
    let ids = env.enqueue_many("record_key", runs);
    let workers: Vec<_> = (0..3)
        .map(|_| env.spawn_worker(&["--batch", "--concurrency", "4"]))
        .collect();
    for worker in workers {
        let out = wait_with_deadline(worker);
        assert!(out.status.success(), "{}", output_text(&out));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in env.log_lines() {
        *seen.entry(line).or_default() += 1;
    }
    assert_eq!(seen.len(), 300);
    assert!(seen.values().all(|&n| n == 1), "duplicates: {seen:?}");
    for id in &ids {
        assert_eq!(env.result(id).status(), TaskResultStatus::Successful);
    }
}

#[test]
fn sync_and_async_tasks_run_concurrently_up_to_the_concurrency() {
    let env = Env::new(STORE, "");
    let a = env.enqueue("record_and_sleep", json!(["sync", 300]));
    let b = env.enqueue("async_record_and_sleep", json!(["async", 300]));
    let out = env.run_worker(&["--batch", "--concurrency", "2"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let lines = env.log_lines();
    // Both started before either ended: they overlapped.
    let first_end = lines.iter().position(|l| l.starts_with("end")).unwrap();
    assert_eq!(lines[..first_end].iter().filter(|l| l.starts_with("start")).count(), 2, "{lines:?}");
    assert_eq!(env.result(&a).return_value().unwrap(), json!("sync"));
    assert_eq!(env.result(&b).return_value().unwrap(), json!("async"));
}

#[test]
fn max_tasks_stops_the_worker() {
    let env = Env::new(STORE, "");
    for i in 0..5 {
        env.enqueue("record_key", json!([format!("k{i}")]));
    }
    let out = env.run_worker(&["--max-tasks", "2"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.log_lines().len(), 2);
    assert!(output_text(&out).contains("Run maximum tasks (2)"), "{}", output_text(&out));
}

#[test]
fn workers_take_only_their_queues() {
    let env = Env::new(STORE, "");
    for q in ["a", "b", "c"] {
        env.enqueue_on("record_key", json!([q]), q, 0);
    }
    let out = env.run_worker(&["--batch", "--queue", "a,b"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let mut lines = env.log_lines();
    lines.sort();
    assert_eq!(lines, ["a", "b"]);
    env.enqueue_on("record_key", json!(["d"]), "d", 0);
    let out = env.run_worker(&["--batch", "--queue", "*", "--exclude-queues", "c"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.log_lines().last().map(String::as_str), Some("d"));
    assert!(!env.log_lines().contains(&"c".to_string()));
}

#[test]
fn a_deferred_task_waits_for_its_run_after() {
    let env = Env::new(STORE, "");
    let backend = taskhost::task_backends().get("default").unwrap();
    let mut later = super::env::description("record_key", "default", 0);
    later.run_after = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    let deferred = backend.enqueue_json(&later, vec![json!("later")], Default::default()).unwrap();
    let mut due = super::env::description("record_key", "default", 0);
    due.run_after = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
    let now = backend.enqueue_json(&due, vec![json!("due")], Default::default()).unwrap();
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.log_lines(), ["due"]);
    assert_eq!(env.result(deferred.id()).status(), TaskResultStatus::Ready);
    assert_eq!(env.result(now.id()).status(), TaskResultStatus::Successful);
}

#[test]
fn failed_attempts_are_retried_with_backoff_up_to_max_attempts() {
    let env = Env::new(STORE, "");
    let flaky = env.enqueue("flaky", json!(["f", 2]));
    let doomed = env.enqueue("always_fails", json!(["x"]));
    let out = env.run_worker(&["--retry-backoff", "0.01", "--max-tasks", "6"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let ok = env.result(&flaky);
    assert_eq!(ok.status(), TaskResultStatus::Successful);
    assert_eq!(ok.attempts(), 3);
    assert_eq!(ok.errors().len(), 2);
    assert_eq!(ok.return_value().unwrap(), json!(3));
    let failed = env.result(&doomed);
    assert_eq!(failed.status(), TaskResultStatus::Failed);
    assert_eq!(failed.attempts(), 3);
    assert_eq!(failed.errors().len(), 3);
    assert!(failed.errors()[2].traceback.ends_with("failing on purpose: x\n"), "{:?}", failed.errors());
}

#[test]
fn a_task_over_its_timeout_fails_and_the_worker_carries_on() {
    let env = Env::new(STORE, "");
    let slow = env.enqueue("too_slow", json!(["slow"]));
    let next = env.enqueue("record_key", json!(["next"]));
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let failed = env.result(&slow);
    assert_eq!(failed.status(), TaskResultStatus::Failed);
    assert_eq!(failed.errors()[0].exception_class_path, "taskhost::TaskTimeout");
    assert_eq!(env.result(&next).status(), TaskResultStatus::Successful);
}

#[test]
fn an_unknown_task_path_fails_clearly_and_the_worker_carries_on() {
    let env = Env::new(STORE, "");
    let unknown = env.enqueue("no_such_task", json!([]));
    let next = env.enqueue("record_key", json!(["next"]));
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let failed = env.result(&unknown);
    assert_eq!(failed.status(), TaskResultStatus::Failed);
    assert_eq!(failed.errors()[0].exception_class_path, "taskhost::UnknownTask");
    assert!(failed.errors()[0].traceback.contains("'taskhost_worker_app::no_such_task' is not registered"));
    assert_eq!(env.result(&next).status(), TaskResultStatus::Successful);
}

#[test]
fn a_killed_workers_task_is_rescued_after_its_lease_and_run_again() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("slow_first_attempt", json!(["k", 60_000]));
    let mut doomed = env.spawn_worker(&["--lease", "1"]);
    env.wait_for_line(|l| l == "start k 1");
    doomed.kill().unwrap(); // SIGKILL: no chance to release anything
    let _ = doomed.wait();
    assert_eq!(env.result(&id).status(), TaskResultStatus::Running);
    let out = env.run_worker(&["--lease", "1", "--max-tasks", "1"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let rescued = env.result(&id);
    assert_eq!(rescued.status(), TaskResultStatus::Successful);
    assert_eq!(rescued.attempts(), 2);
    assert_eq!(rescued.return_value().unwrap(), json!(2));
    assert_eq!(rescued.errors()[0].exception_class_path, "taskhost::WorkerLost");
}

#[test]
fn sigterm_lets_the_running_task_finish_then_exits_0() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("record_and_sleep", json!(["k", 1_000]));
    let worker = env.spawn_worker(&[]);
    env.wait_for_line(|l| l == "start k");
    terminate(&worker);
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(env.log_lines().contains(&"end k".to_string()));
    assert_eq!(env.result(&id).status(), TaskResultStatus::Successful);
    assert!(output_text(&out).contains("shutting down gracefully"), "{}", output_text(&out));
}

#[test]
fn a_second_sigterm_stops_at_once_and_releases_the_running_task() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("async_record_and_sleep", json!(["k", 60_000]));
    let stderr = env.dir.path().join("worker.stderr");
    let mut cmd = env.command(&["worker", "--interval", "0.05", "--no-startup-delay"]);
    cmd.stderr(std::fs::File::create(&stderr).unwrap());
    let worker = cmd.spawn().unwrap();
    env.wait_for_line(|l| l == "start k");
    terminate(&worker);
    // The second signal only after the worker has acted on the first (signals can coalesce).
    super::env::wait_for_file_line(&stderr, |l| l.contains("shutting down gracefully"));
    terminate(&worker);
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
    let released = env.result(&id);
    assert_eq!(released.status(), TaskResultStatus::Ready, "{}", output_text(&out));
    assert_eq!(released.attempts(), 0);
    assert!(output_text(&out).contains("1 released"), "{}", output_text(&out));
}

#[test]
fn prefetched_tasks_run_in_claim_order_and_record_when_they_really_started() {
    let env = Env::new(STORE, "");
    let ids: Vec<String> = (0..5)
        .map(|i| env.enqueue_on("record_and_sleep", json!([format!("k{i}"), 20]), "default", 10 - i))
        .collect();
    // One claim takes all five; they run one at a time, in claim order.
    let out = env.run_worker(&["--batch", "--prefetch", "8"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let starts: Vec<String> = env.log_lines().into_iter().filter(|l| l.starts_with("start")).collect();
    assert_eq!(starts, ["start k0", "start k1", "start k2", "start k3", "start k4"]);
    let results: Vec<_> = ids.iter().map(|id| env.result(id)).collect();
    for pair in results.windows(2) {
        // Not the claim's time (the same for all five): each started once the one before it
        // had slept its 20 ms.
        let (before, after) = (pair[0].started_at().unwrap(), pair[1].started_at().unwrap());
        assert!(after - before >= chrono::Duration::milliseconds(20), "{before} then {after}");
        assert_eq!(pair[1].last_attempted_at(), pair[1].started_at());
    }
}

#[test]
fn sigterm_hands_back_prefetched_tasks_that_had_not_started() {
    let env = Env::new(STORE, "");
    let slow = env.enqueue_on("record_and_sleep", json!(["slow", 1_000]), "default", 50);
    let waiting: Vec<String> =
        (0..3).map(|i| env.enqueue("record_key", json!([format!("k{i}")]))).collect();
    let worker = env.spawn_worker(&["--prefetch", "5"]);
    env.wait_for_line(|l| l == "start slow");
    terminate(&worker);
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.result(&slow).status(), TaskResultStatus::Successful);
    for id in &waiting {
        let r = env.result(id);
        assert_eq!(r.status(), TaskResultStatus::Ready, "{}", output_text(&out));
        assert_eq!((r.attempts(), r.worker_ids().len()), (0, 0));
    }
    assert_eq!(env.log_lines(), ["start slow", "end slow"]);
    assert!(output_text(&out).contains("3 released"), "{}", output_text(&out));
}

/// The default (adaptive) prefetch does not hoard long tasks: a worker that has just drained
/// short tasks (its prefetch grown on them) and then finds long ones claims one per free slot,
/// and leaves the rest READY for another worker, which runs one at once.
#[test]
fn a_default_worker_leaves_the_long_tasks_it_cannot_start_to_an_idle_worker() {
    let env = Env::new(STORE, "");
    env.enqueue_many("record_key", (0..300).map(|i| json!([format!("s{i}")])).collect());
    let first = spawn_debug_worker(&env, "first");
    // After the short tasks: nothing runs, nothing waits, and the queue was found empty.
    wait_for_file_line(&first.1, |l| l.contains("Worker first is idle"));
    let long: Vec<String> = env.enqueue_many(
        "record_and_sleep",
        (0..4).map(|i| json!([format!("L{i}"), 60_000])).collect(),
    );
    let started = |env: &Env| -> Vec<String> {
        let lines = env.log_lines();
        lines.into_iter().filter(|l| l.starts_with("start L")).collect()
    };
    env.wait_for_line(|l| l.starts_with("start L"));
    let ready = |env: &Env| -> usize {
        long.iter()
            .filter(|id| env.result(id).status() == TaskResultStatus::Ready)
            .count()
    };
    assert_eq!(
        (started(&env).len(), ready(&env)),
        (1, 3),
        "the first worker claimed only the long task it runs"
    );
    let second = spawn_debug_worker(&env, "second");
    env.wait_for_line(|l| l != started(&env)[0] && l.starts_with("start L"));
    let owners: Vec<String> = long
        .iter()
        .map(|id| env.result(id))
        .filter(|r| r.status() == TaskResultStatus::Running)
        .map(|r| r.worker_ids().last().map(|w| w.as_str().to_string()).unwrap_or_default())
        .collect();
    let mut sorted = owners.clone();
    sorted.sort();
    assert_eq!(sorted, ["first", "second"], "one long task each: {owners:?}");
    assert_eq!(ready(&env), 2, "the other two are left for whoever is free");
    for (mut worker, _) in [first, second] {
        let _ = worker.kill();
        let _ = worker.wait();
    }
}

/// Short tasks a default worker claimed behind a long one (its prefetch grown on the short
/// ones before it) do not wait for it: once the long task has run past what the prefetch keeps
/// tasks waiting for, they are handed back, and an idle worker runs them while the long task
/// still runs. None runs twice, none has an attempt or a worker counted for the hand-back.
#[test]
fn a_default_worker_hands_back_the_short_tasks_waiting_behind_a_long_one() {
    let env = Env::new(STORE, "");
    let short = |range: std::ops::Range<usize>| -> Vec<serde_json::Value> {
        range.map(|i| json!([format!("s{i}")])).collect()
    };
    let mut shorts = env.enqueue_many("record_key", short(0..200));
    let long = env.enqueue("record_and_sleep", json!(["L", 120_000]));
    shorts.extend(env.enqueue_many("record_key", short(200..400)));
    let (first, first_log) = spawn_debug_worker(&env, "first");
    let mut workers = Killed(vec![first]);
    env.wait_for_line(|l| l == "start L");
    workers.0.push(spawn_debug_worker(&env, "second").0);
    for id in &shorts {
        env.wait_for_result(id, |r| r.status() == TaskResultStatus::Successful);
    }
    let lines = env.log_lines();
    assert!(!lines.iter().any(|l| l == "end L"), "the short tasks waited for the long one");
    assert_eq!(env.result(&long).status(), TaskResultStatus::Running);
    let mut runs: HashMap<&str, usize> = HashMap::new();
    for line in &lines {
        *runs.entry(line.as_str()).or_default() += 1;
    }
    assert_eq!(runs.len(), lines.len(), "a task ran twice: {runs:?}");
    assert_eq!(lines.len(), shorts.len() + 1, "400 short tasks and the start of the long one");
    let mut by_second = 0;
    for id in &shorts {
        let r = env.result(id);
        assert_eq!((r.attempts(), r.worker_ids().len()), (1, 1), "{id}");
        by_second += usize::from(r.worker_ids()[0].as_str() == "second");
    }
    assert!(by_second > 0, "the idle worker ran none of them");
    let first_log = std::fs::read_to_string(first_log).unwrap();
    assert!(first_log.contains("Worker first handed back"), "{first_log}");
}

/// Worker processes killed when the test ends, whether it passed or not.
struct Killed(Vec<std::process::Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for worker in &mut self.0 {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }
}

/// `worker --worker-id NAME` at the defaults, its debug log in `NAME.log` in the test's dir.
fn spawn_debug_worker(env: &Env, name: &str) -> (std::process::Child, std::path::PathBuf) {
    let log = env.dir.path().join(format!("{name}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let args = ["worker", "--no-startup-delay", "--interval", "0.05", "--worker-id", name];
    let child = env
        .command(&args)
        .env("RUST_LOG", "taskhost=debug")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    (child, log)
}

#[test]
fn worker_options_are_validated_like_django_tasks_db() {
    let env = Env::new(STORE, "");
    let cases: &[(&[&str], &str)] = &[
        (&["--exclude-queues", "a"], "--exclude-queues can only be used with --queue=*"),
        (&["--worker-id", ""], "Worker id must not be empty"),
        (&["--interval", "-1"], "Must be greater than zero"),
        (&["--interval", "inf"], "Must be a finite floating point value"),
        (&["--backend", "nope"], "The connection 'nope' doesn't exist."),
        (&["--backend", "dummy"], "Backend 'dummy' is not a queue-store backend"),
        (&["--prefetch", "100001"], "--prefetch must be at most 100000"),
        (&["--prefetch", "-1"], "unexpected argument '-1' found"),
        (
            &["--prefetch", "lots"],
            "--prefetch must be 'auto' or a number of tasks from 0 to 100000, got 'lots'",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["worker"];
        all.extend_from_slice(args);
        let out = wait_with_deadline(env.command(&all).spawn().unwrap());
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(output_text(&out).contains(message), "{args:?}: {}", output_text(&out));
    }
}

#[test]
fn results_queues_and_prune_inspect_the_store_without_task_code() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("record_key", json!(["k"]));
    env.enqueue_on("record_key", json!(["other"]), "emails", 0);
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let taskhost = taskhost_e2e::taskhost_bin();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&taskhost)
            .arg("--config")
            .arg(&env.config_file)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", output_text(&out));
        output_text(&out)
    };
    let listed = run(&["results", "list", "--status", "SUCCESSFUL"]);
    assert!(listed.contains(&id) && listed.contains("(1 result(s))"), "{listed}");
    let shown = run(&["results", "show", &id]);
    assert!(shown.contains("\"status\": \"SUCCESSFUL\""), "{shown}");
    let queues = run(&["queues"]);
    assert!(queues.lines().any(|l| l.starts_with("emails") && l.contains("READY")), "{queues}");
    let dry = run(&["prune", "--min-age-days", "0", "--dry-run"]);
    assert_eq!(dry.trim(), "Would delete 1 task result(s)");
    let pruned = run(&["prune", "--min-age-days", "0"]);
    assert_eq!(pruned.trim(), "Deleted 1 task result(s)");
    assert!(matches!(
        taskhost::task_backends().get("default").unwrap().get_result(&id),
        Err(taskhost::Error::TaskResultDoesNotExist(_))
    ));
}

#[test]
fn prune_deletes_in_batches_and_keeps_unfinished_rows() {
    let env = Env::new(STORE, "");
    let done: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|k| env.enqueue("record_key", json!([k])))
        .collect();
    let ready = env.enqueue_on("record_key", json!(["later"]), "emails", 0);
    let out = env.run_worker(&["--batch"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let out = std::process::Command::new(taskhost_e2e::taskhost_bin())
        .arg("--config")
        .arg(&env.config_file)
        .args(["prune", "--min-age-days", "0", "--batch-size", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(output_text(&out).trim(), "Deleted 3 task result(s)");
    let backend = taskhost::task_backends().get("default").unwrap();
    for id in &done {
        assert!(matches!(
            backend.get_result(id),
            Err(taskhost::Error::TaskResultDoesNotExist(_))
        ));
    }
    assert_eq!(
        backend.get_result(&ready).unwrap().status(),
        TaskResultStatus::Ready
    );
}
