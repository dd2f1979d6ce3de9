// The crash scenarios run on both databases; `include!`d once per database by `crash_suite!`
// (mod.rs), with `STORE` and the support helpers in scope.

use crate::worker::env::{output_text, wait_for_file_line, wait_with_deadline};
use serde_json::json;
use std::time::{Duration, Instant};
use taskhost::{task, TaskResultStatus};

/// kill -9 of a random worker every few seconds while 4 workers drain the queue.
#[test]
fn kill_9_storm_loses_nothing_and_duplicates_stay_within_the_in_flight_bound() {
    kill_9_storm("kill9_storm", &[]);
}

/// The same storm with workers that prefetch: the tasks waiting in a killed worker are rescued
/// too (nothing lost), and since they never ran, the duplicates stay within the same bound.
#[test]
fn kill_9_storm_with_prefetching_workers_loses_nothing_either() {
    kill_9_storm("kill9_storm_prefetch", &["--prefetch", "16"]);
}

fn kill_9_storm(name: &str, extra_args: &[&str]) {
    let mut rng = Rng::seeded(name, STORE);
    let (tasks, workers, concurrency) = (size(800, 10_000), 4, 4);
    // The backend's defaults (`max_attempts = 1`): a killed worker's tasks are READY again, not
    // FAILED — before `max_rescues`, every task a killed worker held ended FAILED here.
    let env = Env::new(STORE, "");
    let ids = enqueue_work(&env, 0..tasks, 30);
    let started = Instant::now();
    let mut args = vec!["--concurrency", "4", "--lease", "2"];
    args.extend_from_slice(extra_args);
    let mut pool = Pool::start(&env, workers, &args);
    let recovery = drain_with_kills(
        &env,
        &mut pool,
        &mut rng,
        &ids,
        (300, 1_000),
        (1_000, 4_000),
    );
    let elapsed = started.elapsed();
    let leases_lost = leases_lost(&pool.logs());
    pool.stop();
    let runs = Runs::read(&env);
    let lost = lost(&ids, &runs);
    let kills = recovery.kills;
    let bound = bound(kills, cap(concurrency, prefetch_in(extra_args)), leases_lost);
    // Rescues counted per task (its `WorkerLost` errors): since decision 017 only for starts.
    let rescues: Vec<usize> = results()
        .iter()
        .map(|r| {
            r.errors()
                .iter()
                .filter(|e| e.exception_class_path == "taskhost::WorkerLost")
                .count()
        })
        .collect();
    Figures::new(name, STORE)
        .add("tasks", tasks)
        .add("workers", workers)
        .add("concurrency", concurrency)
        .add("lease_s", 2)
        .add("kills", kills)
        .add("lost", lost)
        .add("executions", runs.executions())
        .add("duplicates", runs.duplicates())
        .add("unfinished_at_kills", recovery.orphans)
        .add("leases_lost", leases_lost)
        .add("bound", bound)
        .add("recover_mean_ms", recovery.mean_ms())
        .add("recover_max_ms", recovery.max_ms())
        .add("rescues_counted", rescues.iter().sum::<usize>())
        .add("most_rescues_of_a_task", rescues.iter().max().copied().unwrap_or(0))
        .add("elapsed_s", elapsed.as_secs())
        .print();
    assert_eq!(lost, 0);
    assert!(kills >= 1);
    assert!(
        runs.duplicates() <= bound,
        "{} duplicates > {bound} (kills × cap + leases lost)",
        runs.duplicates()
    );
}

/// SIGTERM while 50 tasks run: they all finish, once, and the worker exits 0.
#[test]
fn sigterm_while_50_tasks_run_lets_them_finish_once_and_exits_0() {
    let env = Env::new(STORE, "");
    let ids = enqueue_work(&env, 0..50, 2_000);
    let (worker, _) = spawn_logged(&env, "worker", &["--concurrency", "50"]);
    wait_until("50 tasks running", || Runs::read(&env).executions() == 50);
    let signalled = Instant::now();
    signal(worker.id(), "TERM");
    let out = wait_with_deadline(worker);
    let stop = signalled.elapsed();
    let runs = Runs::read(&env);
    let lost = lost(&ids, &runs);
    Figures::new("sigterm_graceful", STORE)
        .add("tasks", 50)
        .add("task_ms", 2_000)
        .add("grace_period_s", 30)
        .add("signal_to_exit_ms", ms(stop))
        .add("lost", lost)
        .add("duplicates", runs.duplicates())
        .print();
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!((lost, runs.duplicates()), (0, 0));
    let done = env
        .log_lines()
        .iter()
        .filter(|l| l.starts_with("done "))
        .count();
    assert_eq!(done, 50);
    assert!(ids.iter().all(|id| result(id).attempts() == 1));
}

/// A second SIGTERM stops at once: every running task is handed back, none stays RUNNING.
#[test]
fn a_second_sigterm_stops_at_once_and_hands_back_all_50_running_tasks() {
    let env = Env::new(STORE, "");
    // Sync tasks that would sleep for 10 minutes: the process must not wait for their threads.
    let ids = enqueue_work(&env, 0..50, 600_000);
    let (worker, log) = spawn_logged(&env, "worker", &["--concurrency", "50"]);
    wait_until("50 tasks running", || Runs::read(&env).executions() == 50);
    signal(worker.id(), "TERM");
    wait_for_file_line(&log, |l| l.contains("shutting down gracefully"));
    let forced = Instant::now();
    signal(worker.id(), "TERM");
    let out = wait_with_deadline(worker);
    let stop = forced.elapsed();
    let released = ids
        .iter()
        .filter(|id| {
            let r = result(id);
            r.status() == TaskResultStatus::Ready && r.attempts() == 0
        })
        .count();
    let counts = status_counts();
    Figures::new("sigterm_forced", STORE)
        .add("tasks", 50)
        .add("second_signal_to_exit_ms", ms(stop))
        .add("released", released)
        .add(
            "running_after",
            counts.get(&TaskResultStatus::Running).unwrap_or(&0),
        )
        .print();
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(out.status.success(), "{printed}");
    assert_eq!(released, 50, "{counts:?}\n{printed}");
    assert!(printed.contains("50 released"), "{printed}");
}

/// A worker paused past its lease; another rescues and finishes the task; the paused one's late
/// completion is refused by the fencing token.
#[test]
fn a_paused_workers_late_write_after_a_rescue_changes_nothing() {
    let env = Env::new(STORE, "");
    let id = env.enqueue("crash_work", json!(["k", 3_000]));
    let (paused, paused_log) = spawn_logged(&env, "paused", &["--lease", "1"]);
    let paused_pid = paused.id();
    env.wait_for_line(|l| l == format!("run k {paused_pid}"));
    signal(paused_pid, "STOP");
    let stopped = Instant::now();
    let (rescuer, _) = spawn_logged(&env, "rescuer", &["--lease", "1", "--max-tasks", "1"]);
    let rescuer_pid = rescuer.id();
    let out = wait_with_deadline(rescuer);
    assert!(out.status.success(), "{}", output_text(&out));
    let rescued = result(&id);
    let takeover = stopped.elapsed();
    signal(paused_pid, "CONT");
    wait_for_file_line(&paused_log, |l| l.contains("its result was discarded"));
    let after = result(&id);
    signal(paused_pid, "TERM");
    let out = wait_with_deadline(paused);
    Figures::new("sigstop_fencing", STORE)
        .add("lease_s", 1)
        .add("paused_to_rescued_ms", ms(takeover))
        .add("late_write_applied", after.data() != rescued.data())
        .print();
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(rescued.status(), TaskResultStatus::Successful);
    assert_eq!(rescued.attempts(), 2);
    assert_eq!(rescued.raw_return_value(), Some(&json!(rescuer_pid)));
    assert_eq!(
        rescued.errors()[0].exception_class_path,
        "taskhost::WorkerLost"
    );
    assert!(env.log_lines().contains(&format!("done k {paused_pid}")));
    assert_eq!(
        after.data(),
        rescued.data(),
        "the late write changed the result"
    );
}

/// A task that aborts its worker process, at the backend's defaults: each crash re-queues it
/// (a lost worker is not the task's failure, whatever its `max_attempts = 2` says), until the
/// `max_rescues`-th (default 3) counted one ends it FAILED; the rest run. A crash as it started
/// from a worker's prefetch, before the store knew of the start, is not counted, once at most
/// (decision 017). A task that ran beside it in the
/// same process every time it crashed (at most concurrency − 1 of them) is rescued as often and
/// shares its fate: the store cannot tell which of the tasks a dead process held killed it.
#[test]
fn a_poison_task_fails_after_max_rescues_and_the_other_tasks_flow() {
    let mut rng = Rng::seeded("poison", STORE);
    let (others, concurrency) = (size(100, 1_000), 2);
    let env = Env::new(STORE, "");
    let at = rng.below(others);
    let mut ids = enqueue_work(&env, 0..at, 10);
    let poison = env.enqueue("abort_process", json!(["poison"]));
    ids.extend(enqueue_work(&env, at..others, 10));
    let started = Instant::now();
    let mut pool = Pool::start(&env, 2, &["--concurrency", "2", "--lease", "1"]);
    let (mut crashes, mut failed_after) = (0, None);
    until_all_finished(
        size(Duration::from_secs(120), Duration::from_secs(600)),
        || {
            crashes += pool.replace_exited();
            if failed_after.is_none() && result(&poison).status() == TaskResultStatus::Failed {
                failed_after = Some(started.elapsed());
            }
        },
    );
    let bound = bound(crashes, cap(concurrency, DEFAULT_PREFETCH), leases_lost(&pool.logs()));
    pool.stop();
    let runs = Runs::read(&env);
    let lost = lost(&ids, &runs);
    let collateral = beside_every_crash(&ids, &result(&poison));
    let aborts = env
        .log_lines()
        .iter()
        .filter(|l| l.starts_with("abort "))
        .count();
    let failed = result(&poison);
    Figures::new("poison", STORE)
        .add("tasks", others + 1)
        .add("poison_position", at)
        .add("crashes", crashes)
        .add("poison_attempts", failed.attempts())
        .add("poison_failed_after_ms", failed_after.map_or(0, ms))
        .add("lost", lost - collateral)
        .add("beside_every_crash", collateral)
        .add("duplicates", runs.duplicates())
        .add("bound", bound)
        .print();
    assert_eq!(failed.status(), TaskResultStatus::Failed);
    // Three counted crashes; one more when its first crash came as it started from a worker's
    // prefetch, before the store knew of its start (decision 017's bound: max_rescues + 1).
    assert_eq!(failed.attempts(), 3);
    assert_eq!(aborts, crashes);
    assert!((3..=4).contains(&crashes), "{crashes} crashes");
    assert!(collateral < concurrency, "{collateral} tasks beside every crash");
    let errors = failed.errors();
    assert!(errors
        .iter()
        .all(|e| e.exception_class_path == "taskhost::WorkerLost"));
    assert!(
        errors[2].traceback.contains(
            "Attempt 3 was lost; rescue 3 of 3: that is the limit (the backend's max_rescues), \
             so it FAILED"
        ),
        "{errors:?}"
    );
    assert_eq!(lost - collateral, 0);
    assert!(runs.duplicates() <= bound);
}

/// How many of `ids` are FAILED by rescues alone from the very processes `poison` crashed:
/// each of their attempts was lost, in a worker that was running the poison task then.
fn beside_every_crash(ids: &[String], poison: &taskhost::TaskResult) -> usize {
    let crashed = poison.worker_ids();
    results()
        .iter()
        .filter(|r| ids.iter().any(|id| id == r.id()))
        .filter(|r| {
            r.status() == TaskResultStatus::Failed
                && r.errors()
                    .iter()
                    .all(|e| e.exception_class_path == "taskhost::WorkerLost")
                && r.worker_ids().iter().all(|w| crashed.contains(w))
        })
        .count()
}

/// The task the rollback scenario enqueues on the application's own connection.
#[task]
fn enqueued_in_a_transaction(n: usize) -> usize {
    n
}

/// 1,000 enqueues inside the application's transactions that roll back or are abandoned
/// mid-way leave nothing; the few committed ones are all there.
#[test]
fn a_thousand_rolled_back_or_abandoned_transactional_enqueues_leave_nothing() {
    let mut rng = Rng::seeded("rollback", STORE);
    let env = Env::new(STORE, "");
    taskhost::default_task_backend().unwrap().check().unwrap();
    let mut app = App::connect(STORE, &env);
    let (mut rolled_back, mut abandoned, mut committed) = (0, 0, Vec::new());
    let mut n = 0;
    while rolled_back + abandoned < 1_000 {
        let insert = enqueued_in_a_transaction
            .transactional_enqueue((n,))
            .unwrap();
        n += 1;
        match rng.below(50) {
            0 => {
                app.run(&insert, Ending::Commit);
                committed.push(insert.id);
            }
            1..=9 => {
                app.run(&insert, Ending::Abandoned);
                abandoned += 1;
            }
            _ => {
                app.run(&insert, Ending::Rollback);
                rolled_back += 1;
            }
        }
    }
    let mut visible: Vec<String> = results().iter().map(|r| r.id().to_string()).collect();
    visible.sort();
    committed.sort();
    Figures::new("rollback", STORE)
        .add("rolled_back", rolled_back)
        .add("abandoned", abandoned)
        .add("committed", committed.len())
        .add("visible", visible.len())
        .print();
    assert_eq!(
        visible, committed,
        "exactly the committed enqueues are visible"
    );
}

/// Decision 017: a worker that prefetches holds claimed tasks it has not started. Killed (kill
/// -9) again and again while it runs one long task with the others waiting behind it, the tasks
/// it held but never started are READY again each time with no rescue, attempt, worker id or
/// `WorkerLost` error counted; only the task each killed worker had started counts one (and
/// would end FAILED at its third, as decision 010's poison task does). Before the mend every
/// task held counted a rescue, so the waiting tasks ended FAILED after three kills.
#[test]
fn kill_9_of_a_prefetching_worker_counts_a_rescue_only_for_the_task_it_started() {
    let env = Env::new(STORE, "");
    let ids = enqueue_work(&env, 0..5, 600_000);
    // After each kill: a rescue (and an attempt) per start, none for being held.
    let check = |round: usize| {
        let runs = Runs::read(&env);
        assert_eq!(runs.executions(), round, "one task started per worker");
        for (i, id) in ids.iter().enumerate() {
            let r = result(id);
            let started = runs.of(&format!("k{i}")).len();
            assert!(
                r.errors()
                    .iter()
                    .all(|e| e.exception_class_path == "taskhost::WorkerLost"),
                "{:?}",
                r.errors()
            );
            assert_eq!(
                (r.errors().len(), r.attempts()),
                (started, started),
                "after kill {round}: k{i} (started {started} times) counted a rescue for being \
                 held: {:?}",
                r.errors()
            );
            let expected = match started {
                3.. => TaskResultStatus::Failed,
                _ => TaskResultStatus::Ready,
            };
            assert_eq!(r.status(), expected, "k{i} started {started} times");
        }
    };
    for round in 1..=4 {
        let args = ["--concurrency", "1", "--prefetch", "8", "--lease", "1"];
        let (mut worker, _) = spawn_logged(&env, &format!("prefetcher-{round}"), &args);
        let pid = worker.id();
        let ran_here = format!(" {pid}");
        wait_until("the worker holds every task left and runs one", || {
            env.log_lines()
                .iter()
                .any(|l| l.starts_with("run ") && l.ends_with(&ran_here))
                && ids
                    .iter()
                    .all(|id| result(id).status() != TaskResultStatus::Ready)
        });
        let _ = worker.kill();
        let _ = worker.wait();
        wait_until("the killed worker's tasks are rescued", || {
            let _ = taskhost::task_backends()
                .get("default")
                .and_then(|b| b.rescue());
            ids.iter()
                .all(|id| result(id).status() != TaskResultStatus::Running)
        });
        check(round);
    }
}

/// Decision 017's bound: a poison task prefetched behind another task aborts its worker the
/// moment it starts, before the store knows it started: that crash is not counted. From then on
/// a worker that prefetches it reports its start (`report_start`) before running it, so every
/// later crash counts: it ends FAILED after `max_rescues + 1` crashes (4), with 3 attempts and
/// 3 `WorkerLost` errors — and never runs forever uncounted.
#[test]
fn a_poison_task_prefetched_behind_another_ends_failed_after_one_uncounted_crash() {
    let env = Env::new(STORE, "");
    let poison = env.enqueue("abort_process", json!(["poison"]));
    let mut crashes = 0;
    while result(&poison).status() != TaskResultStatus::Failed {
        assert!(crashes < 6, "still {:?} after {crashes} crashes", result(&poison).status());
        // A task ahead of it (higher priority) takes the free slot: the poison task is
        // prefetched, and starts when that one ends.
        env.enqueue_on("crash_work", json!([format!("s{crashes}"), 300]), "default", 10);
        let args = ["--concurrency", "1", "--prefetch", "8", "--lease", "1"];
        let (worker, log) = spawn_logged(&env, &format!("poisoned-{crashes}"), &args);
        let out = wait_with_deadline(worker);
        assert!(
            !out.status.success(),
            "the poison task aborts its worker: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        crashes += 1;
        // Its lease expires (1 s) and the rescue hands it back (or fails it); then it is due.
        wait_until("the poison task is rescued and due", || {
            let _ = taskhost::task_backends()
                .get("default")
                .and_then(|b| b.rescue());
            let r = result(&poison);
            r.status() == TaskResultStatus::Failed
                || (r.status() == TaskResultStatus::Ready
                    && r.data().task.run_after.is_none_or(|at| at <= chrono::Utc::now()))
        });
    }
    let failed = result(&poison);
    let aborts = env
        .log_lines()
        .iter()
        .filter(|l| l.starts_with("abort "))
        .count();
    assert_eq!((crashes, aborts, failed.attempts()), (4, 4, 3));
    assert_eq!(failed.errors().len(), 3);
    assert!(
        failed.errors()[2].traceback.contains(
            "Attempt 3 was lost; rescue 3 of 3: that is the limit (the backend's max_rescues), \
             so it FAILED"
        ),
        "{:?}",
        failed.errors()
    );
}
