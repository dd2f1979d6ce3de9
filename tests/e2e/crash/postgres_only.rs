//! Only PostgreSQL: the workers' sessions terminated again and again mid-run, and (ignored by
//! default, it restarts the shared server) a real server restart.

use super::support::*;
use crate::worker::env::{Env, Store, POSTGRES_URL};
use std::process::Command;
use std::time::{Duration, Instant};

/// How a [`drain_while_cut`] run is set up.
struct Setup<'a> {
    /// The backend's options (TOML lines).
    options: &'a str,
    /// The workers' flags.
    worker_args: &'a [&'a str],
    /// Tasks each worker runs at once (what `worker_args` says, or the default 1).
    concurrency: usize,
    /// How long each task sleeps.
    task_ms: u64,
}

/// The tuned runs: short leases, retries allowed, 4 tasks at once per worker.
const TUNED: Setup = Setup {
    options: "max_attempts = 100",
    worker_args: &["--concurrency", "4", "--lease", "2"],
    concurrency: 4,
    task_ms: 30,
};

/// What a [`drain_while_cut`] run saw, for assertions of its own.
struct Seen {
    duplicates: usize,
    leases_lost: usize,
    worker_lost_errors: usize,
}

/// Drain `tasks` with 4 workers whose sessions carry the `application_name` given to `cut`,
/// while `cut` runs every `every` (returning how many sessions it ended); nothing may be lost,
/// and duplicates stay within the tasks in flight at each cut.
fn drain_while_cut(
    scenario: &str,
    rng: &mut Rng,
    setup: &Setup<'_>,
    tasks: usize,
    every: (u64, u64),
    max_cuts: usize,
    mut cut: impl FnMut(&str) -> u64,
) -> Seen {
    let (workers, concurrency) = (4, setup.concurrency);
    let app = format!("taskhost_crash_{}_{scenario}", std::process::id());
    let url = format!("{POSTGRES_URL}?application_name={app}");
    let env = Env::new_with_url(Store::Postgres, &url, setup.options);
    let ids = enqueue_work(&env, 0..tasks, setup.task_ms);
    let started = Instant::now();
    let pool = Pool::start(&env, workers, setup.worker_args);
    env.wait_for_line(|l| l.starts_with("run "));
    let (mut cuts, mut sessions, mut last_cut) = (0, 0, Instant::now());
    let mut next_cut = Instant::now();
    // After a cut: when it happened and how many runs had started; a new run means a claim
    // went through a new session (the time to resume).
    let (mut awaiting, mut resumed) = (None, Vec::new());
    let started_runs = || {
        env.log_lines()
            .iter()
            .filter(|l| l.starts_with("run "))
            .count()
    };
    until_all_finished(
        size(Duration::from_secs(120), Duration::from_secs(900)),
        || {
            if let Some((at, before)) = awaiting {
                if started_runs() > before {
                    resumed.push(ms(Instant::now() - at));
                    awaiting = None;
                }
            }
            if cuts < max_cuts && Instant::now() >= next_cut {
                sessions += cut(&app);
                cuts += 1;
                last_cut = Instant::now();
                awaiting = Some((last_cut, started_runs()));
                next_cut = last_cut + rng.millis(every.0, every.1);
            }
        },
    );
    let recovered = last_cut.elapsed();
    let elapsed = started.elapsed();
    let logs = pool.logs();
    let errors_logged = logs.matches("ERROR").count();
    let leases_lost = leases_lost(&logs);
    let refused_retries = logs.matches("the store refused it").count();
    pool.stop();
    let runs = Runs::read(&env);
    let lost = lost(&ids, &runs);
    let bound = bound(
        cuts * workers,
        cap(concurrency, prefetch_in(setup.worker_args)),
        leases_lost,
    );
    let worker_lost_errors = results()
        .iter()
        .flat_map(|r| r.errors())
        .filter(|e| e.exception_class_path == "taskhost::WorkerLost")
        .count();
    Figures::new(scenario, Store::Postgres)
        .add("tasks", tasks)
        .add("workers", workers)
        .add("concurrency", concurrency)
        .add("cuts", cuts)
        .add("sessions_ended", sessions)
        .add("lost", lost)
        .add("duplicates", runs.duplicates())
        .add("leases_lost", leases_lost)
        .add("refused_retries", refused_retries)
        .add("worker_lost_errors", worker_lost_errors)
        .add("bound", bound)
        .add("worker_error_lines", errors_logged)
        .add("resume_max_ms", resumed.iter().max().unwrap_or(&0))
        .add("last_cut_to_drained_ms", ms(recovered))
        .add("elapsed_s", elapsed.as_secs())
        .print();
    assert_eq!(lost, 0);
    assert!(cuts >= 1 && sessions > 0, "no session was ended");
    assert!(runs.duplicates() <= bound);
    Seen {
        duplicates: runs.duplicates(),
        leases_lost,
        worker_lost_errors,
    }
}

/// End every session named `app`; returns how many.
fn terminate_sessions(admin: &mut postgres::Client, app: &str) -> u64 {
    let row = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&app],
        )
        .unwrap();
    row.get::<_, i64>(0) as u64
}

#[test]
fn workers_reconnect_while_all_their_sessions_are_terminated_again_and_again() {
    let mut rng = Rng::seeded("pg_terminate_all", Store::Postgres);
    let mut admin = postgres::Client::connect(POSTGRES_URL, postgres::NoTls).unwrap();
    let (tasks, every) = (size(600, 10_000), size((300, 1_000), (1_000, 3_000)));
    drain_while_cut(
        "pg_terminate_all",
        &mut rng,
        &TUNED,
        tasks,
        every,
        usize::MAX,
        |app| terminate_sessions(&mut admin, app),
    );
}

/// The same cuts at the defaults a user runs (`max_attempts = 1`, 60 s leases, one task at a
/// time per worker) with short tasks, so that many claims and completions are in flight when a
/// session ends. No worker dies and no lease can run out, so nothing may be lost, FAILED,
/// rescued, run twice or reported as a lost lease: every write whose session ended with the
/// outcome unknown must find out what it did. Before claim ids, 9–15 tasks in 10,000 ended
/// FAILED with a `WorkerLost` error naming a live worker (a claim had committed, its retry
/// claimed other tasks, and these sat RUNNING until the lease ran out).
#[test]
fn nothing_is_lost_or_rerun_when_sessions_are_terminated_at_the_defaults() {
    let mut rng = Rng::seeded("pg_terminate_defaults", Store::Postgres);
    let mut admin = postgres::Client::connect(POSTGRES_URL, postgres::NoTls).unwrap();
    let (tasks, every) = (size(3_000, 10_000), size((200, 500), (300, 1_000)));
    let defaults = Setup {
        options: "",
        worker_args: &[],
        concurrency: 1,
        task_ms: 2,
    };
    let seen = drain_while_cut(
        "pg_terminate_defaults",
        &mut rng,
        &defaults,
        tasks,
        every,
        usize::MAX,
        |app| terminate_sessions(&mut admin, app),
    );
    assert_eq!(
        (seen.duplicates, seen.leases_lost, seen.worker_lost_errors),
        (0, 0, 0),
        "(duplicates, leases reported lost, WorkerLost errors)"
    );
}

/// Run `pg_ctlcluster` on the machine's cluster.
fn pg_ctlcluster(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster in /etc/postgresql")
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let status = Command::new("pg_ctlcluster")
        .arg("--skip-systemctl-redirect")
        .arg(version)
        .args(["main", action])
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

#[test]
#[ignore = "restarts the machine's PostgreSQL server, which other tests share; run it alone"]
fn workers_reconnect_after_a_postgres_server_restart() {
    let mut rng = Rng::seeded("pg_restart", Store::Postgres);
    let tasks = size(600, 10_000);
    drain_while_cut(
        "pg_restart",
        &mut rng,
        &TUNED,
        tasks,
        (1_000, 3_000),
        1,
        |app| {
            let mut admin = postgres::Client::connect(POSTGRES_URL, postgres::NoTls).unwrap();
            let sessions: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    &[&app],
                )
                .unwrap()
                .get(0);
            drop(admin);
            pg_ctlcluster("restart");
            wait_until("PostgreSQL accepting connections again", || {
                postgres::Client::connect(POSTGRES_URL, postgres::NoTls).is_ok()
            });
            sessions as u64
        },
    );
}
