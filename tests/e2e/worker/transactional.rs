//! Enqueueing inside the application's own transaction: the task row commits or rolls back with
//! the application's data; an in-process `Worker` (the library API) then runs what committed.

use super::env::{Env, Store, POSTGRES_URL};
use taskhost::SqlParam;
use taskhost::{task, TaskResultStatus, Worker, WorkerOptions};

/// The task enqueued through the application's connection.
#[task]
fn transactional_greeting(name: String) -> String {
    format!("hello {name}")
}

fn run_batch_worker() -> taskhost::WorkerReport {
    let mut options = WorkerOptions::new();
    options.batch = true;
    options.interval = std::time::Duration::from_millis(50);
    let worker = Worker::new(options).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(worker.run())
        .unwrap()
}

fn exists(id: &str) -> bool {
    match taskhost::default_task_backend().unwrap().get_result(id) {
        Ok(_) => true,
        Err(taskhost::Error::TaskResultDoesNotExist(_)) => false,
        Err(e) => panic!("{e}"),
    }
}

/// The rusqlite value of one parameter of a transactional insert.
pub(crate) fn sqlite_value(p: &SqlParam) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match p {
        SqlParam::Text(s) => Value::Text(s.clone()),
        SqlParam::Json(v) => Value::Text(v.to_string()),
        SqlParam::Integer(i) => Value::Integer(*i),
        SqlParam::Timestamp(t) => Value::Integer(t.timestamp_micros()),
        SqlParam::Bool(b) => Value::Integer((*b).into()),
        SqlParam::Null => Value::Null,
    }
}

#[test]
fn sqlite_enqueue_commits_and_rolls_back_with_the_applications_transaction() {
    let env = Env::new(Store::Sqlite, "");
    let db = env.dir.path().join("tasks.db");
    // The schema exists once the backend has been used.
    taskhost::default_task_backend().unwrap().check().unwrap();
    let mut app = rusqlite::Connection::open(&db).unwrap();
    app.execute_batch("CREATE TABLE users (name TEXT)").unwrap();

    let rolled_back = transactional_greeting
        .transactional_enqueue(("nobody".into(),))
        .unwrap();
    let tx = app.transaction().unwrap();
    tx.execute("INSERT INTO users VALUES ('nobody')", [])
        .unwrap();
    let params: Vec<_> = rolled_back.params.iter().map(sqlite_value).collect();
    tx.execute(&rolled_back.sql, rusqlite::params_from_iter(params))
        .unwrap();
    tx.rollback().unwrap();
    assert!(!exists(&rolled_back.id));

    let committed = transactional_greeting
        .transactional_enqueue(("ada".into(),))
        .unwrap();
    let tx = app.transaction().unwrap();
    tx.execute("INSERT INTO users VALUES ('ada')", []).unwrap();
    let params: Vec<_> = committed.params.iter().map(sqlite_value).collect();
    tx.execute(&committed.sql, rusqlite::params_from_iter(params))
        .unwrap();
    tx.commit().unwrap();

    let report = run_batch_worker();
    assert_eq!((report.claimed, report.successful), (1, 1));
    let result = transactional_greeting.get_result(&committed.id).unwrap();
    assert_eq!(result.status(), TaskResultStatus::Successful);
    assert_eq!(result.return_value().unwrap(), "hello ada");
    let _ = env;
}

#[test]
fn postgres_taskhost_enqueue_commits_and_rolls_back_with_the_applications_transaction() {
    let env = Env::new(Store::Postgres, "");
    taskhost::default_task_backend().unwrap().check().unwrap();
    let mut app = postgres::Client::connect(POSTGRES_URL, postgres::NoTls).unwrap();
    let enqueue = |app: &mut postgres::Transaction<'_>, name: &str| {
        let insert = transactional_greeting
            .transactional_enqueue((name.to_string(),))
            .unwrap();
        assert_eq!(insert.database, "postgresql");
        let p = &insert.params;
        let (SqlParam::Text(id), SqlParam::Text(path), SqlParam::Json(args), SqlParam::Text(queue)) =
            (&p[0], &p[1], &p[2], &p[3])
        else {
            panic!("unexpected parameters {p:?}")
        };
        let id = uuid::Uuid::parse_str(id).unwrap();
        app.query_one(
            &insert.sql,
            &[
                &id,
                path,
                args,
                queue,
                &0i32,
                &None::<chrono::DateTime<chrono::Utc>>,
                &None::<i32>,
                &serde_json::json!({}),
                &false,
                &false,
            ],
        )
        .unwrap();
        insert.id
    };
    let mut tx = app.transaction().unwrap();
    let rolled_back = enqueue(&mut tx, "nobody");
    tx.rollback().unwrap();
    assert!(!exists(&rolled_back));
    let mut tx = app.transaction().unwrap();
    let committed = enqueue(&mut tx, "grace");
    tx.commit().unwrap();
    let report = run_batch_worker();
    assert_eq!((report.claimed, report.successful), (1, 1));
    let result = transactional_greeting.get_result(&committed).unwrap();
    assert_eq!(result.return_value().unwrap(), "hello grace");
    let _ = env;
}

#[test]
fn a_thousand_enqueues_inside_rolled_back_scopes_leave_nothing() {
    for store in [Store::Sqlite, Store::Postgres] {
        let _env = Env::new(store, "");
        for i in 0..1000 {
            let _ = taskhost::atomic(|| -> Result<(), taskhost::Error> {
                transactional_greeting.enqueue(format!("n{i}"))?;
                Err(taskhost::Error::InvalidTask("roll back".into()))
            });
        }
        let report = run_batch_worker();
        assert_eq!(report.claimed, 0, "{store:?}");
    }
}
