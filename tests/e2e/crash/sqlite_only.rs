//! Only SQLite: eight worker processes on one database file, killed mid-write.

use super::support::*;
use crate::worker::env::{Env, Store};
use std::time::Instant;
use taskhost::TaskResultStatus;

#[test]
fn eight_workers_on_one_file_killed_mid_write_lose_nothing_and_never_fail_on_locks() {
    let mut rng = Rng::seeded("sqlite_8_workers", Store::Sqlite);
    let (tasks, workers, concurrency) = (size(6_000, 10_000), 8, 2);
    let env = Env::new(Store::Sqlite, "");
    // Tasks that take no time: the workers do little else than write to the file.
    let ids = enqueue_work(&env, 0..tasks, 0);
    let started = Instant::now();
    let mut pool = Pool::start(&env, workers, &["--concurrency", "2", "--lease", "2"]);
    let recovery = drain_with_kills(&env, &mut pool, &mut rng, &ids, (200, 800), (500, 2_000));
    let elapsed = started.elapsed();
    let kills = recovery.kills;
    let logs = pool.logs();
    let locked_logged = logs.matches("database is locked").count();
    let bound = bound(
        kills,
        cap(concurrency, DEFAULT_PREFETCH),
        leases_lost(&logs),
    );
    pool.stop();
    let runs = Runs::read(&env);
    let lost = lost(&ids, &runs);
    let stored = results();
    let failed = stored
        .iter()
        .filter(|r| r.status() == TaskResultStatus::Failed)
        .count();
    let locked_errors = stored
        .iter()
        .flat_map(|r| r.errors())
        .filter(|e| e.traceback.contains("locked"))
        .count();
    let db = rusqlite::Connection::open(env.dir.path().join("tasks.db")).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    Figures::new("sqlite_8_workers", Store::Sqlite)
        .add("tasks", tasks)
        .add("workers", workers)
        .add("concurrency", concurrency)
        .add("kills", kills)
        .add("lost", lost)
        .add("failed", failed)
        .add("locked_task_errors", locked_errors)
        .add("locked_log_lines", locked_logged)
        .add("duplicates", runs.duplicates())
        .add("bound", bound)
        .add("recover_max_ms", recovery.max_ms())
        .add("integrity_check", &integrity)
        .add("elapsed_s", elapsed.as_secs())
        .print();
    assert_eq!((lost, failed, locked_errors), (0, 0, 0));
    assert_eq!(integrity, "ok");
    assert!(kills >= 1);
    assert!(runs.duplicates() <= bound);
}
