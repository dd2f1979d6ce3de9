//! A worker on a failing store, through real worker processes: a broken store (a corrupt
//! SQLite file, a dropped table, a database that does not exist) ends it with exit code 1 and
//! a message saying what to do; a transient failure (a lock held too long) is logged and
//! retried until it passes; and a `--batch` worker gives up on one that does not pass.

use super::env::{
    output_text, spawn_logged, wait_for_file_line, wait_with_deadline, Env, Store, POSTGRES_URL,
};
use serde_json::json;
use std::io::{Seek, SeekFrom, Write};
use std::process::Output;
use taskhost::TaskResultStatus;

/// What every broken-store message ends with, for worker `id`.
fn broken(id: &str) -> String {
    format!(
        ". The store cannot be used and retrying will not help, so worker '{id}' stopped: \
         repair or restore the database (or its schema, or its permissions), then start the \
         worker again"
    )
}

/// Run `worker --batch --worker-id <id> <args>` to its end (bounded by the env's deadline).
fn run_batch(env: &Env, id: &str, args: &[&str]) -> Output {
    let mut all = vec!["--batch", "--worker-id", id];
    all.extend_from_slice(args);
    env.run_worker(&all)
}

/// The `error:` line a failed worker printed last.
fn error_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .rfind(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {}", output_text(out)))
        .to_string()
}

/// Assert that the worker exited 1 with `error: backend 'default' failed: <prefix>…<suffix>`.
fn assert_failed(out: &Output, prefix: &str, suffix: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", output_text(out));
    let line = error_line(out);
    let head = format!("error: backend 'default' failed: {prefix}");
    assert!(
        line.starts_with(&head) && line.ends_with(suffix),
        "{line}\nexpected: {head}…{suffix}"
    );
}

#[test]
fn a_batch_worker_exits_1_on_a_sqlite_file_whose_pages_were_overwritten() {
    let env = Env::new(Store::Sqlite, "");
    let runs = (0..2_000).map(|i| json!([format!("k{i}")])).collect();
    env.enqueue_many("record_key", runs);
    let path = env.dir.path().join("tasks.db");
    // Everything into the database file, then garbage over its pages past the schema's (the
    // connection stays open to the end: closing it in this process would drop the locks the
    // plugin's own copy of SQLite holds on the file).
    let db = rusqlite::Connection::open(&path).unwrap();
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let page = db
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64;
    let pages = db
        .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64;
    assert!(
        pages > 64,
        "the store is too small to corrupt its data only: {pages}"
    );
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(16 * page)).unwrap();
    file.write_all(&vec![0xA5; ((pages - 16) * page) as usize])
        .unwrap();
    file.sync_all().unwrap();
    let out = run_batch(&env, "w-corrupt", &[]);
    assert_failed(
        &out,
        "SQLite failed while ",
        &format!("database disk image is malformed{}", broken("w-corrupt")),
    );
    drop((file, db));
}

/// A SQLite store with one task, whose `taskhost_tasks` table was then dropped (the connection
/// that dropped it is kept open until the test ends).
fn sqlite_store_without_its_table() -> (Env, rusqlite::Connection) {
    let env = Env::new(Store::Sqlite, "");
    env.enqueue("record_key", json!(["never"]));
    let db = rusqlite::Connection::open(env.dir.path().join("tasks.db")).unwrap();
    db.execute_batch("DROP TABLE taskhost_tasks").unwrap();
    (env, db)
}

#[test]
fn a_batch_worker_exits_1_when_the_sqlite_tasks_table_was_dropped() {
    let (env, db) = sqlite_store_without_its_table();
    let out = run_batch(&env, "w-dropped", &[]);
    assert_failed(
        &out,
        "SQLite failed while ",
        &format!("no such table: taskhost_tasks{}", broken("w-dropped")),
    );
    drop(db);
}

#[test]
fn a_worker_without_batch_stops_on_a_broken_store_too() {
    let (env, db) = sqlite_store_without_its_table();
    let out = env.run_worker(&["--worker-id", "w-service"]);
    assert_failed(
        &out,
        "SQLite failed while ",
        &format!("no such table: taskhost_tasks{}", broken("w-service")),
    );
    drop(db);
}

#[test]
fn a_batch_worker_exits_1_when_the_postgres_tasks_table_was_dropped() {
    let env = Env::new(Store::Postgres, "");
    env.enqueue("record_key", json!(["never"]));
    let schema = env.schema.clone().unwrap();
    let mut db = postgres::Client::connect(POSTGRES_URL, postgres::NoTls).unwrap();
    db.batch_execute(&format!("DROP TABLE {schema}.taskhost_tasks CASCADE"))
        .unwrap();
    let out = run_batch(&env, "w-pg-dropped", &[]);
    assert_failed(
        &out,
        "PostgreSQL failed while ",
        &format!(
            "relation \"taskhost_tasks\" does not exist{}",
            broken("w-pg-dropped")
        ),
    );
}

#[test]
fn a_store_broken_while_a_task_runs_lets_the_task_finish_then_the_worker_exits_1() {
    let env = Env::new(Store::Postgres, "");
    env.enqueue("record_and_sleep", json!(["slow", 1_000]));
    let schema = env.schema.clone().unwrap();
    let (worker, log) = spawn_logged(&env, "worker", &["--worker-id", "w-mid-run"]);
    env.wait_for_line(|l| l == "start slow");
    let mut db = postgres::Client::connect(POSTGRES_URL, postgres::NoTls).unwrap();
    db.batch_execute(&format!("DROP TABLE {schema}.taskhost_tasks CASCADE"))
        .unwrap();
    let out = wait_with_deadline(worker);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(env.log_lines(), ["start slow", "end slow"]);
    let line = text
        .lines()
        .rfind(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {text}"));
    assert!(
        line.starts_with("error: backend 'default' failed: PostgreSQL failed while ")
            && line.ends_with(&format!(
                "relation \"taskhost_tasks\" does not exist{}",
                broken("w-mid-run")
            )),
        "{line}"
    );
}

#[test]
fn a_worker_exits_1_at_once_when_its_postgres_database_does_not_exist() {
    let db = format!("taskhost_no_such_db_{}", std::process::id());
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let env = Env::new_with_url(Store::Postgres, &url, "");
    let out = run_batch(&env, "w-no-db", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let line = error_line(&out);
    assert_eq!(
        line,
        format!(
            "error: Backend 'taskhost.backends.database.DatabaseBackend' (alias 'default') could \
             not be created: DatabaseBackend 'default': could not connect to PostgreSQL at url \
             '{url}': database \"{db}\" does not exist. Check that the server is running and \
             that `url` names the right host, port, user, password and database."
        )
    );
}

/// The worker's URL with a 100 ms `lock_timeout`: a claim that waits for a lock fails fast
/// with "lock not available" (55P03), a transient error.
fn lock_timeout_url() -> String {
    format!("{POSTGRES_URL}?options=-c%20lock_timeout%3D100")
}

#[test]
fn a_worker_logs_and_retries_a_locked_postgres_table_then_drains_it() {
    let env = Env::new_with_url(Store::Postgres, &lock_timeout_url(), "");
    let ids = env.enqueue_many("record_key", vec![json!(["a"]), json!(["b"])]);
    let schema = env.schema.clone().unwrap();
    let mut db = postgres::Client::connect(POSTGRES_URL, postgres::NoTls).unwrap();
    let mut lock = db.transaction().unwrap();
    lock.batch_execute(&format!(
        "LOCK TABLE {schema}.taskhost_tasks IN ACCESS EXCLUSIVE MODE"
    ))
    .unwrap();
    let (worker, log) = spawn_logged(&env, "worker", &["--batch", "--worker-id", "w-locked"]);
    wait_for_file_line(&log, |l| {
        l.contains("worker w-locked: claiming from backend 'default' failed (try 2), retrying in 200ms: backend 'default' failed: PostgreSQL failed while ")
            && l.ends_with("canceling statement due to lock timeout")
    });
    lock.rollback().unwrap();
    let out = wait_with_deadline(worker);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("worker w-locked: claiming from backend 'default' works again after"),
        "{text}"
    );
    for id in ids {
        assert_eq!(env.result(&id).status(), TaskResultStatus::Successful);
    }
}

#[test]
fn a_batch_worker_gives_up_on_a_store_that_stays_locked() {
    let env = Env::new_with_url(Store::Postgres, &lock_timeout_url(), "");
    env.enqueue("record_key", json!(["never"]));
    let schema = env.schema.clone().unwrap();
    let mut db = postgres::Client::connect(POSTGRES_URL, postgres::NoTls).unwrap();
    let mut lock = db.transaction().unwrap();
    lock.batch_execute(&format!(
        "LOCK TABLE {schema}.taskhost_tasks IN ACCESS EXCLUSIVE MODE"
    ))
    .unwrap();
    let out = run_batch(&env, "w-gives-up", &["--batch-give-up", "2"]);
    lock.rollback().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let line = error_line(&out);
    assert!(
        line.starts_with("error: backend 'default' failed: PostgreSQL failed while ")
            && line.contains("canceling statement due to lock timeout. Claiming kept failing for ")
            && line.ends_with(
                "so the --batch worker 'w-gives-up' gave up: check that the database is \
                 reachable and not locked, then run the worker again (--batch-give-up sets how \
                 long it keeps trying)"
            ),
        "{line}"
    );
}
