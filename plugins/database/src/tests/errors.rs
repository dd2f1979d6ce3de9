//! Failures: bad options and databases, missing and corrupt rows, a closed backend.

use super::api::*;
use super::harness::{on_both_databases, Kind, TestDb, BACKEND};
use crate::{DatabaseBackend, TRANSACTIONAL_INSERT_SQL};
use serde_json::{json, Value};
use taskhost_plugin_api::{
    testing::TestHost, Backend, BackendParams, Capabilities, ErrorKind, LogLevel, PluginError,
    TaskResultStatus,
};

on_both_databases!(
    get_result_of_a_missing_or_malformed_id_says_the_id,
    a_non_uuid_id_is_refused_at_enqueue,
    corrupt_json_in_a_row_names_the_row_and_column,
    a_corrupt_row_does_not_block_the_queue,
    a_closed_backend_refuses_further_calls,
    unknown_operations_are_not_supported,
);

/// Build a backend from bare options (no test database).
fn build(options: Value, config_dir: Option<&str>) -> Result<DatabaseBackend, PluginError> {
    let params = BackendParams {
        alias: "default".into(),
        backend: BACKEND.into(),
        queues: Vec::new(),
        options: options.as_object().unwrap().clone(),
        config_dir: config_dir.map(str::to_string),
    };
    DatabaseBackend::new(params, TestHost::new().host())
}

fn invalid_options(options: Value) -> String {
    let err = build(options, None)
        .err()
        .expect("the options must be refused");
    assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS, "{err}");
    err.message().to_string()
}

#[test]
fn capabilities_are_the_queue_store_set() {
    let db = TestDb::new(Kind::Sqlite).unwrap();
    let (b, _) = db.backend();
    assert_eq!(
        b.capabilities(),
        Capabilities::DEFER
            | Capabilities::ASYNC_TASK
            | Capabilities::GET_RESULT
            | Capabilities::PRIORITY
            | Capabilities::QUEUE_STORE
            | Capabilities::UNIQUE
    );
}

#[test]
fn a_relative_sqlite_path_is_resolved_against_the_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    let b = build(
        json!({"url": "sqlite://tasks.db"}),
        Some(dir.path().to_str().unwrap()),
    )
    .unwrap();
    enqueue(&b, "default");
    assert!(dir.path().join("tasks.db").is_file());
}

#[test]
fn a_bad_url_scheme_is_invalid_options() {
    let m = invalid_options(json!({"url": "redis://localhost"}));
    assert!(
        m.contains("url 'redis://localhost' has an unsupported scheme"),
        "{m}"
    );
}

#[test]
fn an_unreachable_server_is_invalid_options_without_the_password() {
    let m =
        invalid_options(json!({"url": "postgres://app:s3cret@127.0.0.1:1/none?connect_timeout=2"}));
    assert!(m.starts_with("DatabaseBackend 'default': could not connect to PostgreSQL at url 'postgres://app:***@127.0.0.1:1/none"), "{m}");
    assert!(m.contains("Check that the server is running"), "{m}");
    assert!(!m.contains("s3cret"), "{m}");
}

#[test]
fn a_missing_sqlite_directory_is_invalid_options() {
    let m = invalid_options(json!({"url": "sqlite:///no/such/dir/tasks.db"}));
    assert!(
        m.contains("the directory '/no/such/dir' does not exist"),
        "{m}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_invalid_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let m = invalid_options(json!({ "url": format!("sqlite://{}", path.display()) }));
    assert!(m.contains("not an SQLite database"), "{m}");
}

#[test]
fn a_read_only_sqlite_file_is_invalid_options() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.db");
    let url = format!("sqlite://{}", path.display());
    drop(build(json!({ "url": url }), None).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let still_writable = std::fs::OpenOptions::new().write(true).open(&path).is_ok();
    // Root ignores file modes; an immutable file is read-only even for root.
    let immutable = still_writable
        && std::process::Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
    if still_writable && !immutable {
        eprintln!("note: skipping the read-only check: this user can write to a 0444 file");
        return;
    }
    let outcome = build(json!({ "url": url }), None).err();
    if immutable {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&path)
            .status();
    }
    let err = outcome.expect("a read-only database must be refused");
    assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS);
    assert!(
        err.message().contains("read-only") || err.message().contains("readonly"),
        "{err}"
    );
    assert!(err.message().contains("must be able to write"), "{err}");
}

fn get_result_of_a_missing_or_malformed_id_says_the_id(db: TestDb) {
    let (b, _) = db.backend();
    enqueue(&b, "default");
    for id in [
        uuid::Uuid::now_v7().to_string(),
        "nope".to_string(),
        String::new(),
    ] {
        let err = get(&b, &id).unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
        assert_eq!(err.message(), id);
    }
}

fn a_non_uuid_id_is_refused_at_enqueue(db: TestDb) {
    let (b, _) = db.backend();
    let mut request = task("t::x", "default", 0, None);
    request.id = "r1".into();
    let err = enqueue_many(&b, &[request]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
    assert_eq!(
        err.message(),
        "The result id 'r1' is not a UUID; the database backend stores UUID ids."
    );
}

/// Overwrite a JSON column of a row with something that is not what it should hold: text
/// that is not JSON (SQLite), or JSON of the wrong shape (PostgreSQL, whose `jsonb` holds only
/// JSON): an object for a list, a list for an object.
fn corrupt(db: &TestDb, id: &str, column: &str) {
    let bad = match (db.kind, column) {
        (Kind::Sqlite, _) => "'not json'",
        (Kind::Postgres, "kwargs") => "'[\"a list\"]'::jsonb",
        (Kind::Postgres, _) => "'{\"an\": \"object\"}'::jsonb",
    };
    db.execute(&format!(
        "UPDATE taskhost_tasks SET {column} = {bad} WHERE id = '{id}'"
    ));
}

fn corrupt_json_in_a_row_names_the_row_and_column(db: TestDb) {
    let (b, _) = db.backend();
    let mut columns = vec!["args", "kwargs", "worker_ids", "errors"];
    if db.kind == Kind::Sqlite {
        columns.push("return_value");
    }
    for column in columns {
        let r = enqueue(&b, "default");
        corrupt(&db, &r.id, column);
        let err = get(&b, &r.id).unwrap_err();
        assert_eq!(err.kind, ErrorKind::OTHER);
        let expected = format!(
            "task result '{}' has an invalid value in column '{column}': ",
            r.id
        );
        assert!(err.message().starts_with(&expected), "{err}");
        let err = b.results().unwrap_err();
        assert!(
            err.message().contains(&format!("column '{column}'")),
            "{err}"
        );
        db.execute(&format!("DELETE FROM taskhost_tasks WHERE id = '{}'", r.id));
    }
}

fn a_corrupt_row_does_not_block_the_queue(db: TestDb) {
    let (b, host) = db.backend();
    let bad = enqueue_request(&b, task("t::bad", "default", 50, None));
    let good = enqueue(&b, "default");
    corrupt(&db, &bad.id, "worker_ids");
    let (claimed, logs) = host.capture_logs(|| claim(&b, "w", 5));
    assert_eq!(claimed_ids(&claimed), vec![good.id]);
    let warned = logs.iter().any(|log| {
        log.level == LogLevel::WARN
            && log
                .message
                .contains("claimed a row that cannot be read; marking it FAILED")
            && log.message.contains(bad.id.as_str())
    });
    assert!(warned, "{logs:?}");
    let stats = stats(&b);
    let summary: Vec<(TaskResultStatus, u64)> = stats.iter().map(|s| (s.status, s.count)).collect();
    assert_eq!(
        summary,
        vec![
            (TaskResultStatus::Running, 1),
            (TaskResultStatus::Failed, 1)
        ]
    );
    let sql = format!("SELECT errors FROM taskhost_tasks WHERE id = '{}'", bad.id);
    let errors: Value = match db.kind {
        Kind::Sqlite => serde_json::from_str(
            &db.sqlite()
                .query_row(&sql, [], |r| r.get::<_, String>(0))
                .unwrap(),
        )
        .unwrap(),
        Kind::Postgres => db.postgres().query_one(&sql, &[]).unwrap().get(0),
    };
    assert_eq!(errors[0]["exception_class_path"], "taskhost::CorruptRow");
    let traceback = errors[0]["traceback"].as_str().unwrap();
    assert!(traceback.contains("column 'worker_ids'"), "{traceback}");
    let err = get(&b, &bad.id).unwrap_err();
    assert!(err.message().contains("column 'worker_ids'"), "{err}");
}

fn a_closed_backend_refuses_further_calls(db: TestDb) {
    let (b, _) = db.backend();
    let r = enqueue(&b, "default");
    b.close();
    let err = get(&b, &r.id).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UNAVAILABLE);
    assert!(err.message().contains("closed"), "{err}");
    b.close();
}

/// `clear` (the Dummy backend's) and operations it does not know, by name through `call_ext`
/// too, are NOT_SUPPORTED; its own operation refuses a request that is not JSON.
fn unknown_operations_are_not_supported(db: TestDb) {
    let (b, _) = db.backend();
    for err in [
        b.clear().unwrap_err(),
        b.call_ext("clear", "{}").unwrap_err(),
    ] {
        assert_eq!(err.kind, ErrorKind::NOT_SUPPORTED);
        assert_eq!(err.message(), "This backend does not support 'clear'.");
    }
    let err = b
        .call_ext("taskhost.backends.database.vacuum", "{}")
        .unwrap_err();
    assert_eq!(
        (err.kind, err.message()),
        (
            ErrorKind::NOT_SUPPORTED,
            "This backend does not support 'taskhost.backends.database.vacuum'."
        )
    );
    let err = b.call_ext(TRANSACTIONAL_INSERT_SQL, "nope").unwrap_err();
    assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
    let expected = format!("invalid {TRANSACTIONAL_INSERT_SQL} payload: expected ident");
    assert!(err.message().starts_with(&expected), "{err}");
}
