//! Back-pressure (PostgreSQL only): a worker whose result writes are slow must not keep
//! claiming. Every claimed task whose result the store has not acknowledged is RUNNING under
//! the worker's lease, and each is a re-run if the worker dies; the worker holds at most its
//! cap (`2 × concurrency + prefetch`, the default adaptive prefetch counted at its ceiling) of
//! them, so a kill -9 re-runs at most that many.

use super::support::*;
use crate::worker::env::{Env, Store, POSTGRES_URL};
use std::time::Duration;

/// Concurrency of the worker under test (the default prefetch).
const CONCURRENCY: usize = 4;

/// Make every write that takes tasks out of RUNNING in `schema` sleep 0.3 s, once per
/// transaction: the worker's result writes become slow, its claims stay fast.
fn slow_down_result_writes(db: &mut postgres::Client, schema: &str) {
    db.batch_execute(&format!(
        "CREATE FUNCTION {schema}.slow_finish() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING'
                AND current_setting('taskhost_test.slept', true) IS DISTINCT FROM 'yes' THEN
                 PERFORM set_config('taskhost_test.slept', 'yes', true);
                 PERFORM pg_sleep(0.3);
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER slow_finish BEFORE UPDATE ON {schema}.taskhost_tasks
             FOR EACH ROW EXECUTE FUNCTION {schema}.slow_finish();"
    ))
    .unwrap();
}

/// Tasks RUNNING under `worker`'s lease.
fn held_by(db: &mut postgres::Client, schema: &str, worker: &str) -> usize {
    let row = db
        .query_one(
            &format!(
                "SELECT count(*) FROM {schema}.taskhost_tasks \
                 WHERE status = 'RUNNING' AND lease_owner = $1"
            ),
            &[&worker],
        )
        .unwrap();
    row.get::<_, i64>(0) as usize
}

#[test]
fn a_worker_with_slow_result_writes_holds_at_most_its_cap_and_a_kill_reruns_at_most_that() {
    let cap = cap(CONCURRENCY, DEFAULT_PREFETCH);
    let tasks = size(1_000, 4_000);
    let env = Env::new(Store::Postgres, "max_attempts = 100");
    let schema = env.schema.clone().unwrap();
    let ids = enqueue_work(&env, 0..tasks, 2);
    let mut db = postgres::Client::connect(POSTGRES_URL, postgres::NoTls).unwrap();
    slow_down_result_writes(&mut db, &schema);
    let worker = "backpressure-victim";
    let (mut victim, victim_log) = spawn_logged(
        &env,
        worker,
        &["--concurrency", "4", "--lease", "2", "--worker-id", worker],
    );
    // Sample what the worker holds while its results are written slowly, until 40 tasks have
    // finished (a worker without back-pressure holds hundreds by then).
    let (mut held_max, mut samples) = (0, 0);
    wait_until("40 tasks finished under slow result writes", || {
        let held = held_by(&mut db, &schema, worker);
        held_max = held_max.max(held);
        samples += 1;
        let finished = status_counts()
            .get(&taskhost::TaskResultStatus::Successful)
            .copied()
            .unwrap_or(0);
        finished >= 40
    });
    let held_at_kill = held_by(&mut db, &schema, worker);
    held_max = held_max.max(held_at_kill);
    let _ = victim.kill();
    let _ = victim.wait();
    let victim_logs = std::fs::read_to_string(&victim_log).unwrap_or_default();
    // The rescue: fast writes again, and a worker that runs what the killed one left.
    db.batch_execute(&format!(
        "DROP TRIGGER slow_finish ON {schema}.taskhost_tasks"
    ))
    .unwrap();
    let pool = Pool::start(&env, 1, &["--concurrency", "4", "--lease", "2"]);
    until_all_finished(
        size(Duration::from_secs(120), Duration::from_secs(600)),
        || {},
    );
    let leases_lost = leases_lost(&(victim_logs + &pool.logs()));
    pool.stop();
    let runs = Runs::read(&env);
    let lost = lost(&ids, &runs);
    let bound = bound(1, cap, leases_lost);
    Figures::new("backpressure", Store::Postgres)
        .add("tasks", tasks)
        .add("concurrency", CONCURRENCY)
        .add("cap", cap)
        .add("result_write_ms", 300)
        .add("samples", samples)
        .add("held_max", held_max)
        .add("held_at_kill", held_at_kill)
        .add("lost", lost)
        .add("duplicates", runs.duplicates())
        .add("leases_lost", leases_lost)
        .add("bound", bound)
        .print();
    assert!(
        held_max <= cap,
        "worker held {held_max} tasks RUNNING, more than its cap of {cap} (2 × concurrency + prefetch)"
    );
    assert_eq!(lost, 0);
    assert!(
        runs.duplicates() <= bound,
        "{} duplicates > {bound} (kills × cap + leases lost)",
        runs.duplicates()
    );
}
