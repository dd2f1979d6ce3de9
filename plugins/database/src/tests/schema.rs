//! Migrations: a new database, an upgrade from version 1, a newer schema, `migrate = false`.

use super::api::*;
use super::harness::{on_both_databases, Kind, TestDb};
use crate::store::{Store, StoreConfig};
use serde_json::json;
use taskhost_plugin_api::{Backend, ErrorKind};

on_both_databases!(
    a_new_database_is_migrated_to_the_newest_version,
    a_version_1_database_is_upgraded_with_its_rows,
    a_schema_newer_than_the_plugin_is_refused,
    without_migrate_an_old_schema_is_reported_until_migrated,
);

/// The versions recorded in `taskhost_schema_version`.
fn recorded_versions(db: &TestDb) -> Vec<i64> {
    let sql = "SELECT version FROM taskhost_schema_version ORDER BY version";
    match db.kind {
        Kind::Sqlite => {
            let conn = db.sqlite();
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            rows.map(Result::unwrap).collect()
        }
        Kind::Postgres => db
            .postgres()
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| i64::from(r.get::<_, i32>(0)))
            .collect(),
    }
}

/// Open the bare store (no backend, no automatic migration).
fn open_store(db: &TestDb) -> Box<dyn Store> {
    let params = db.params("default", json!({}));
    let options = crate::options::Options::parse(&params).unwrap();
    let config = StoreConfig {
        alias: "default".into(),
        max_attempts: 1,
        max_rescues: 3,
        limits: Default::default(),
    };
    match &options.location {
        crate::options::Location::Sqlite(path) => Box::new(
            crate::sqlite::SqliteStore::open(path, &options.url, 1, &options.synchronous, config)
                .unwrap(),
        ),
        crate::options::Location::Postgres(url) => {
            Box::new(crate::postgres::PgStore::open(url, &options, config).unwrap())
        }
    }
}

/// Every version the database's migrations bring (numbers may have gaps).
fn all_versions(db: &TestDb) -> Vec<i64> {
    let migrations = match db.kind {
        Kind::Sqlite => crate::sqlite::MIGRATIONS,
        Kind::Postgres => crate::postgres::MIGRATIONS,
    };
    migrations.iter().map(|m| i64::from(m.version)).collect()
}

fn a_new_database_is_migrated_to_the_newest_version(db: TestDb) {
    let (b, _) = db.backend();
    assert_eq!(recorded_versions(&db), all_versions(&db));
    assert_eq!(
        b.migrate().unwrap(),
        Vec::<u32>::new(),
        "nothing left to apply"
    );
    let (again, _) = db.backend();
    assert_eq!(again.check().unwrap(), vec![]);
}

fn a_version_1_database_is_upgraded_with_its_rows(db: TestDb) {
    let store = open_store(&db);
    assert_eq!(store.schema_version().unwrap(), 0);
    assert_eq!(store.migrate(1, db.now()).unwrap(), vec![1]);
    store.close();
    let id = uuid::Uuid::now_v7();
    let enqueued_at = match db.kind {
        Kind::Sqlite => db.now().timestamp_micros().to_string(),
        Kind::Postgres => format!("'{}'", db.now().to_rfc3339()),
    };
    db.execute(&format!(
        "INSERT INTO taskhost_tasks (id, task_path, queue_name, backend_name, enqueued_at) \
         VALUES ('{id}', 'old::task', 'default', 'default', {enqueued_at})"
    ));
    let (b, _) = db.backend();
    assert_eq!(recorded_versions(&db), all_versions(&db));
    let r = get(&b, &id.to_string()).unwrap();
    assert_eq!(
        (r.task.path.as_str(), value_of(&r.args), value_of(&r.kwargs)),
        ("old::task", json!([]), json!({}))
    );
    assert_eq!(claimed_ids(&claim(&b, "w", 5)), vec![id.to_string()]);
}

fn a_schema_newer_than_the_plugin_is_refused(db: TestDb) {
    drop(db.backend());
    let future = all_versions(&db).last().unwrap() + 1;
    let applied_at = match db.kind {
        Kind::Sqlite => "0".to_string(),
        Kind::Postgres => "now()".to_string(),
    };
    db.execute(&format!(
        "INSERT INTO taskhost_schema_version (version, applied_at) VALUES ({future}, {applied_at})"
    ));
    let err = db.try_backend("default", json!({})).err().unwrap();
    assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS);
    let expected = format!(
        "schema version {future} is newer than this plugin supports ({}); upgrade taskhost",
        all_versions(&db).last().unwrap()
    );
    assert!(err.message().contains(&expected), "{}", err.message());
    assert!(
        err.message().starts_with("DatabaseBackend 'default': "),
        "{}",
        err.message()
    );
}

fn without_migrate_an_old_schema_is_reported_until_migrated(db: TestDb) {
    let (b, _) = db
        .try_backend("default", json!({"migrate": false}))
        .unwrap();
    assert!(
        recorded_versions_or_empty(&db).is_empty(),
        "nothing was created"
    );
    let err = get(&b, &uuid::Uuid::now_v7().to_string()).unwrap_err();
    assert!(
        err.message().contains("schema version 0"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("'migrate'"), "{}", err.message());
    let checks = b.check().unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].level, "error");
    assert!(
        checks[0].message.contains("this plugin needs"),
        "{}",
        checks[0].message
    );
    let applied = b.migrate().unwrap();
    let all: Vec<u32> = all_versions(&db).into_iter().map(|v| v as u32).collect();
    assert_eq!(applied, all);
    enqueue(&b, "default");
    assert_eq!(b.check().unwrap(), vec![]);
}

fn recorded_versions_or_empty(db: &TestDb) -> Vec<i64> {
    let exists = match db.kind {
        Kind::Sqlite => {
            db.sqlite()
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'taskhost_schema_version'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
                > 0
        }
        Kind::Postgres => {
            let schema = db.base["schema"].as_str().unwrap().to_string();
            let rows = db
                .postgres()
                .query("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
                .unwrap();
            !rows.is_empty()
        }
    };
    if exists {
        recorded_versions(db)
    } else {
        Vec::new()
    }
}

/// SQLite: version 3 rebuilds the table with the status CHECK written without an IN list (which
/// SQLite evaluated with a temporary b-tree per row); the rows, their order (rowids), the
/// indexes and the rule itself survive.
#[test]
fn sqlite_version_3_keeps_rows_indexes_and_the_status_rule() {
    let db = TestDb::new(Kind::Sqlite).expect("SQLite is always available");
    let store = open_store(&db);
    assert_eq!(store.migrate(2, db.now()).unwrap(), vec![1, 2]);
    store.close();
    // One enqueue time for all three: only the rowid orders them (the ids run the other way).
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let at = db.now().timestamp_micros();
    for id in ids.iter().rev() {
        db.execute(&format!(
            "INSERT INTO taskhost_tasks (id, task_path, queue_name, backend_name, enqueued_at) \
             VALUES ('{id}', 'old::task', 'default', 'default', {at})"
        ));
    }
    let (b, _) = db.backend();
    assert_eq!(recorded_versions(&db), all_versions(&db));
    let results = all(&b);
    let listed: Vec<&str> = results.iter().map(|r| r.id.as_str()).collect();
    let inserted: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, inserted);
    let conn = db.sqlite();
    let err = conn
        .execute("UPDATE taskhost_tasks SET status = 'DONE'", [])
        .unwrap_err();
    assert!(
        err.to_string().contains("taskhost_tasks_status_valid"),
        "{err}"
    );
    let indexes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'taskhost_tasks' AND name IN ('taskhost_tasks_claim_idx', \
             'taskhost_tasks_lease_idx', 'taskhost_tasks_finished_idx')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 3);
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN INSERT INTO taskhost_tasks (id, task_path, queue_name, backend_name, \
             status, enqueued_at) VALUES ('x', 'p', 'q', 'b', 'READY', 0)",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(1))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        !plan.iter().any(|op| op == "OpenEphemeral"),
        "an insert builds no temporary b-tree: {plan:?}"
    );
    assert_eq!(
        claimed_ids(&claim(&b, "w", 5)),
        ids,
        "claim order ends with the id"
    );
}

/// PostgreSQL: version 5 (storage settings, decision 015) on a version-4 store holding READY,
/// RUNNING and finished rows, written by the store's own enqueue, claim and complete: every row
/// keeps its state, the RUNNING row's lease still completes, the READY rows are claimed in
/// order, and a setting the table's owner made is kept.
#[test]
fn postgres_version_5_keeps_ready_running_and_finished_rows() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let store = open_store(&db);
    assert_eq!(store.migrate(4, db.now()).unwrap(), vec![1, 2, 3, 4]);
    let tasks: Vec<crate::row::NewTask> = (0..4)
        .map(|_| {
            let request = task("app::tasks::job", "default", 0, None);
            crate::row::NewTask {
                id: uuid::Uuid::parse_str(request.id.as_str()).unwrap(),
                request,
                enqueued_at: db.now(),
            }
        })
        .collect();
    let ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
    // Enqueued as a version-4 store did (today's store writes columns a version-4 table lacks).
    let mut pg = db.postgres();
    for (i, t) in tasks.iter().enumerate() {
        pg.execute(
            "INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, \
             status, args, kwargs, enqueued_at) \
             VALUES ($1, $2, 'default', 0, 'default', 'READY', '[]', '{}', $3)",
            &[
                &t.id,
                &t.request.task.path.as_str(),
                &(t.enqueued_at + chrono::Duration::microseconds(i as i64)),
            ],
        )
        .unwrap();
    }
    drop(pg);
    // A version-4 claim of the first two, and the completion of the first, as that version's
    // store wrote them (today's store reads columns a version-4 table lacks).
    let (now, expires) = (db.now(), db.now() + chrono::Duration::seconds(60));
    let mut pg = db.postgres();
    pg.execute(
        "UPDATE taskhost_tasks SET status = 'RUNNING', started_at = $3, \
         last_attempted_at = $3, worker_ids = '[\"old-worker\"]', attempts = 1, \
         lease_token = 1, lease_owner = 'old-worker', lease_expires_at = $4 \
         WHERE id = $1::text::uuid OR id = $2::text::uuid",
        &[&ids[0], &ids[1], &now, &expires],
    )
    .unwrap();
    pg.execute(
        "UPDATE taskhost_tasks SET status = 'SUCCESSFUL', return_value = '\"done\"', \
         finished_at = $2, lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1::text::uuid",
        &[&ids[0], &now],
    )
    .unwrap();
    db.execute("ALTER TABLE taskhost_tasks SET (autovacuum_vacuum_scale_factor = 0.05)");
    store.close();

    let (b, _) = db.backend();
    assert_eq!(recorded_versions(&db), all_versions(&db));
    let running = [taskhost_plugin_api::ClaimedTask {
        result: get(&b, &ids[1]).unwrap(),
        lease_token: 1,
        max_attempts: 1,
        report_start: false,
    }];
    let status = |id: &str| get(&b, id).unwrap().status.as_str().to_string();
    let states: Vec<String> = ids.iter().map(|id| status(id)).collect();
    assert_eq!(states, ["SUCCESSFUL", "RUNNING", "READY", "READY"]);
    assert_eq!(
        get(&b, &ids[0]).unwrap().return_value.map(|v| value_of(&v)),
        Some(json!("done"))
    );
    assert!(complete(&b, &[success(&running[0], json!(2))])[0].applied);
    assert_eq!(claimed_ids(&claim(&b, "new-worker", 5)), ids[2..]);
    let options: Vec<String> = db
        .postgres()
        .query(
            "SELECT unnest(reloptions) FROM pg_class WHERE oid = 'taskhost_tasks'::regclass",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for expected in [
        "fillfactor=50",
        "autovacuum_vacuum_threshold=1000",
        "autovacuum_vacuum_scale_factor=0.05",
    ] {
        assert!(options.iter().any(|o| o == expected), "{options:?}");
    }
}

/// PostgreSQL: with version 5's fillfactor a full page keeps room for its rows' next versions:
/// a task's claim and its completion write the row on its own page, where at version 4 the
/// claim of a row on a full page moved it to another (decision 015).
#[test]
fn postgres_claims_and_completions_keep_a_row_on_its_page() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let (b, _) = db.backend();
    // Enough rows to fill the first page several times over at fillfactor 100.
    let requests: Vec<_> = (0..60)
        .map(|_| task("app::tasks::job", "default", 0, None))
        .collect();
    enqueue_many(&b, &requests).unwrap();
    let page = |id: &str| -> i64 {
        db.postgres()
            .query_one(
                "SELECT (ctid::text::point)[0]::bigint FROM taskhost_tasks WHERE id = $1::text::uuid",
                &[&id],
            )
            .unwrap()
            .get(0)
    };
    let first = requests[0].id.to_string();
    let enqueued_on = page(&first);
    let claimed = claim(&b, "w", 1);
    assert_eq!(claimed_ids(&claimed), vec![first.clone()]);
    assert_eq!(page(&first), enqueued_on, "the claim moved the row");
    assert!(complete(&b, &[success(&claimed[0], json!(1))])[0].applied);
    assert_eq!(page(&first), enqueued_on, "the completion moved the row");
}
