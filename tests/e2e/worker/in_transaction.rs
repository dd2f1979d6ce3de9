//! Enqueueing through the application's own driver and transaction (the `sqlx-postgres`,
//! `sqlx-sqlite`, `tokio-postgres` and `rusqlite` features): the task row commits or rolls back
//! with the application's row, and a real worker process runs what committed.
//!
//! The worker app's `record_key` task is enqueued through a `Task` built from a definition with
//! its path (the test binary does not link the worker app): the worker process knows it by path.

use super::env::{Env, Store, POSTGRES_URL};
use sqlx::{Connection, Row};
use taskhost::__private::{Invocation, TaskRunner};
use taskhost::{Error, Task, TaskDefinition, TaskOptions, TaskResult, TaskResultStatus};
use taskhost_plugin_api::TaskOutcome;

fn run_elsewhere(_: Invocation) -> TaskOutcome {
    unreachable!("the worker process runs record_key")
}

/// The worker app's `record_key(key: String) -> String`: it appends `key` to the log.
static RECORD_KEY_DEFINITION: TaskDefinition = TaskDefinition {
    path: "taskhost_worker_app::record_key",
    name: "record_key",
    priority: 0,
    queue_name: "default",
    backend: "default",
    takes_context: false,
    state: &[],
    max_attempts: None,
    timeout_secs: None,
    cron: None,
    runner: TaskRunner::Sync(run_elsewhere),
};

static RECORD_KEY: Task<(String,), String> = Task::from_definition(&RECORD_KEY_DEFINITION);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn key(k: &str) -> (String,) {
    (k.to_string(),)
}

/// A fresh store whose schema exists, and the name of the application's table in it.
fn store(store: Store) -> (Env, String) {
    let env = Env::new(store, "");
    taskhost::default_task_backend().unwrap().check().unwrap();
    let table = match &env.schema {
        Some(schema) => format!("\"{schema}\".app_users"),
        None => "app_users".to_string(),
    };
    (env, table)
}

/// The SQLite queue file of `env`.
fn sqlite_path(env: &Env) -> std::path::PathBuf {
    env.dir.path().join("tasks.db")
}

/// What the results returned inside the transactions say, and what happens after: the worker
/// process runs exactly the committed runs (`committed`, in order), the rolled-back ones do not
/// exist, and `refresh` sees the committed ones finish.
fn assert_only_committed_ran(
    env: &Env,
    committed: Vec<TaskResult<String>>,
    rolled_back: Vec<TaskResult<String>>,
) {
    for result in committed.iter().chain(&rolled_back) {
        assert_eq!(result.status(), TaskResultStatus::Ready);
        assert_eq!(result.backend(), "default");
        assert_eq!(result.task().path.as_str(), RECORD_KEY_DEFINITION.path);
    }
    let out = env.run_worker(&["--batch"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Vec<String> = committed
        .iter()
        .map(|r| r.args()[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(env.log_lines(), keys);
    for mut result in committed {
        result.refresh().unwrap();
        assert_eq!(result.status(), TaskResultStatus::Successful);
        assert_eq!(result.return_value().unwrap(), result.args()[0]);
    }
    for result in rolled_back {
        assert!(
            matches!(
                RECORD_KEY.get_result(result.id()),
                Err(Error::TaskResultDoesNotExist(_))
            ),
            "the rolled-back task {} exists",
            result.id()
        );
    }
}

#[test]
fn sqlx_postgres_enqueue_commits_and_rolls_back_with_the_applications_rows() {
    let (env, table) = store(Store::Postgres);
    let (committed, rolled_back, names) = runtime().block_on(async {
        let mut app = sqlx::PgConnection::connect(POSTGRES_URL).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} (name text)"
        )))
        .execute(&mut app)
        .await
        .unwrap();
        let insert = format!("INSERT INTO {table} VALUES ($1)");

        let mut tx = app.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
            .bind("nobody")
            .execute(&mut *tx)
            .await
            .unwrap();
        let nobody = RECORD_KEY
            .aenqueue_in(&mut *tx, key("nobody"))
            .await
            .unwrap();
        tx.rollback().await.unwrap();

        let mut tx = app.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .bind("ada")
            .execute(&mut *tx)
            .await
            .unwrap();
        let ada = RECORD_KEY.aenqueue_in(&mut *tx, key("ada")).await.unwrap();
        let many = RECORD_KEY
            .aenqueue_many_in(&mut *tx, [key("ada-2"), key("ada-3")])
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let names: Vec<String> =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT name FROM {table}")))
                .fetch_all(&mut app)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect();
        let mut committed = vec![ada];
        committed.extend(many);
        (committed, vec![nobody], names)
    });
    assert_eq!(names, ["ada"]);
    assert_only_committed_ran(&env, committed, rolled_back);
}

#[test]
fn sqlx_sqlite_enqueue_commits_and_rolls_back_with_the_applications_rows() {
    let (env, table) = store(Store::Sqlite);
    // One connection, open for the whole test: closing a descriptor of the file would release
    // the locks of the plugin's SQLite copy in this process (transactional.rs).
    let (committed, rolled_back, names, _app) = runtime().block_on(async {
        let url = format!("sqlite://{}", sqlite_path(&env).display());
        let mut app = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} (name TEXT)"
        )))
        .execute(&mut app)
        .await
        .unwrap();
        let insert = format!("INSERT INTO {table} VALUES (?1)");

        let mut tx = app.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
            .bind("nobody")
            .execute(&mut *tx)
            .await
            .unwrap();
        let nobody = RECORD_KEY
            .aenqueue_in(&mut *tx, key("nobody"))
            .await
            .unwrap();
        let many_nobodies = RECORD_KEY
            .aenqueue_many_in(&mut *tx, [key("nobody-2")])
            .await
            .unwrap();
        tx.rollback().await.unwrap();

        let mut tx = app.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .bind("grace")
            .execute(&mut *tx)
            .await
            .unwrap();
        let grace = RECORD_KEY
            .aenqueue_in(&mut *tx, key("grace"))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let names: Vec<String> =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT name FROM {table}")))
                .fetch_all(&mut app)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect();
        let mut rolled_back = vec![nobody];
        rolled_back.extend(many_nobodies);
        (vec![grace], rolled_back, names, app)
    });
    assert_eq!(names, ["grace"]);
    assert_only_committed_ran(&env, committed, rolled_back);
}

#[test]
fn tokio_postgres_enqueue_commits_and_rolls_back_with_the_applications_rows() {
    let (env, table) = store(Store::Postgres);
    let (committed, rolled_back, names) = runtime().block_on(async {
        let (mut app, connection) = tokio_postgres::connect(POSTGRES_URL, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        app.batch_execute(&format!("CREATE TABLE {table} (name text)"))
            .await
            .unwrap();
        let insert = format!("INSERT INTO {table} VALUES ($1)");

        let tx = app.transaction().await.unwrap();
        tx.execute(&insert, &[&"nobody"]).await.unwrap();
        let nobody = RECORD_KEY.aenqueue_in_pg(&tx, key("nobody")).await.unwrap();
        tx.rollback().await.unwrap();

        let tx = app.transaction().await.unwrap();
        tx.execute(&insert, &[&"linus"]).await.unwrap();
        let mut committed = RECORD_KEY
            .aenqueue_many_in_pg(&tx, [key("linus"), key("linus-2")])
            .await
            .unwrap();
        committed.push(
            RECORD_KEY
                .aenqueue_in_pg(&tx, key("linus-3"))
                .await
                .unwrap(),
        );
        tx.commit().await.unwrap();

        let names: Vec<String> = app
            .query(&format!("SELECT name FROM {table}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        (committed, vec![nobody], names)
    });
    assert_eq!(names, ["linus"]);
    assert_only_committed_ran(&env, committed, rolled_back);
}

#[test]
fn rusqlite_enqueue_commits_and_rolls_back_with_the_applications_rows() {
    let (env, table) = store(Store::Sqlite);
    let mut app = rusqlite::Connection::open(sqlite_path(&env)).unwrap();
    app.execute_batch(&format!("CREATE TABLE {table} (name TEXT)"))
        .unwrap();
    let insert = format!("INSERT INTO {table} VALUES (?1)");

    let tx = app.transaction().unwrap();
    tx.execute(&insert, ["nobody"]).unwrap();
    let nobody = RECORD_KEY.enqueue_in(&tx, key("nobody")).unwrap();
    tx.rollback().unwrap();

    let tx = app.transaction().unwrap();
    tx.execute(&insert, ["barbara"]).unwrap();
    let mut committed = vec![RECORD_KEY.enqueue_in(&tx, key("barbara")).unwrap()];
    committed.extend(
        RECORD_KEY
            .enqueue_many_in(&tx, [key("barbara-2"), key("barbara-3")])
            .unwrap(),
    );
    tx.commit().unwrap();

    let names: Vec<String> = app
        .prepare(&format!("SELECT name FROM {table}"))
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names, ["barbara"]);
    assert_only_committed_ran(&env, committed, vec![nobody]);
}

#[test]
fn a_connection_to_another_kind_of_database_is_refused_by_name() {
    // A SQLite queue, PostgreSQL connections.
    let (sqlite, _) = store(Store::Sqlite);
    runtime().block_on(async {
        let mut pg = sqlx::PgConnection::connect(POSTGRES_URL).await.unwrap();
        let err = RECORD_KEY.aenqueue_in(&mut pg, key("x")).await.unwrap_err();
        assert_eq!(
            err,
            Error::DatabaseMismatch {
                alias: "default".into(),
                database: "SQLite",
                driver: "sqlx",
                driver_database: "PostgreSQL",
            }
        );
        assert!(
            err.to_string().contains(
                "backend 'default' keeps its queue in SQLite, but the connection given is a \
                 PostgreSQL one (sqlx)"
            ),
            "{err}"
        );
        let (client, connection) = tokio_postgres::connect(POSTGRES_URL, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let err = RECORD_KEY
            .aenqueue_in_pg(&client, key("x"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::DatabaseMismatch {
                    driver: "tokio-postgres",
                    ..
                }
            ),
            "{err}"
        );
    });
    drop(sqlite);

    // A PostgreSQL queue, SQLite connections (to some other file).
    let (pg, _) = store(Store::Postgres);
    let app = rusqlite::Connection::open(pg.dir.path().join("app.db")).unwrap();
    let err = RECORD_KEY.enqueue_in(&app, key("x")).unwrap_err();
    assert_eq!(
        err,
        Error::DatabaseMismatch {
            alias: "default".into(),
            database: "PostgreSQL",
            driver: "rusqlite",
            driver_database: "SQLite",
        }
    );
    runtime().block_on(async {
        let url = format!(
            "sqlite://{}?mode=rwc",
            pg.dir.path().join("app.db").display()
        );
        let mut app = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let err = RECORD_KEY
            .aenqueue_many_in(&mut app, [key("x")])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::DatabaseMismatch {
                    driver: "sqlx",
                    database: "PostgreSQL",
                    ..
                }
            ),
            "{err}"
        );
    });
    // Nothing was enqueued anywhere.
    assert_eq!(pg.log_lines(), Vec::<String>::new());
    let out = pg.run_worker(&["--batch"]);
    assert!(out.status.success());
    assert!(pg.log_lines().is_empty());
}

#[test]
fn a_backend_without_a_transactional_insert_is_refused_by_name() {
    let (env, _) = store(Store::Sqlite);
    let on_dummy = RECORD_KEY
        .using(TaskOptions::new().backend("dummy"))
        .unwrap();
    let app = rusqlite::Connection::open(sqlite_path(&env)).unwrap();
    let err = on_dummy.enqueue_in(&app, key("x")).unwrap_err();
    assert_eq!(
        err,
        Error::NotSupported(
            "Backend 'dummy' (taskhost.backends.dummy.DummyBackend) cannot enqueue inside the \
             application's transaction."
                .into()
        )
    );
}

#[test]
fn a_failing_insert_is_a_database_error_naming_the_task_and_the_driver() {
    let (env, _) = store(Store::Sqlite);
    let app = rusqlite::Connection::open(sqlite_path(&env)).unwrap();
    // A read-only transaction cannot insert.
    app.execute_batch("PRAGMA query_only = ON").unwrap();
    let err = RECORD_KEY.enqueue_in(&app, key("x")).unwrap_err();
    match &err {
        Error::Database { task, driver, .. } => {
            assert_eq!(
                (task.as_str(), *driver),
                (RECORD_KEY_DEFINITION.path, "rusqlite")
            );
        }
        other => panic!("not a Database error: {other:?}"),
    }
    assert!(
        err.to_string().starts_with(
            "enqueueing task 'taskhost_worker_app::record_key' on the application's rusqlite \
             connection failed: "
        ),
        "{err}"
    );
}

/// Compile-time: the enqueue futures are `Send`, so an axum handler or `tokio::spawn` can await
/// them (this does not build otherwise).
#[allow(dead_code)]
fn the_enqueue_futures_are_send(
    pg: &mut sqlx::PgConnection,
    sqlite: &mut sqlx::SqliteConnection,
    pool: &sqlx::PgPool,
    client: &tokio_postgres::Client,
) {
    fn send<T: Send>(_: T) {}
    send(RECORD_KEY.aenqueue_in(&mut *pg, key("x")));
    send(RECORD_KEY.aenqueue_many_in(pg, [key("x")]));
    send(RECORD_KEY.aenqueue_in(&mut *sqlite, key("x")));
    send(RECORD_KEY.aenqueue_many_in(sqlite, [key("x")]));
    send(RECORD_KEY.aenqueue_in(pool, key("x")));
    send(RECORD_KEY.aenqueue_in_pg(client, key("x")));
    send(RECORD_KEY.aenqueue_many_in_pg(client, [key("x")]));
}

/// A unique task is refused on the application's connection, whichever route: the insert
/// carries no key, so enqueueing it there would silently drop the uniqueness.
#[test]
fn a_unique_task_is_refused_inside_the_applications_transaction() {
    let (env, _) = store(Store::Sqlite);
    let unique = RECORD_KEY.unique_key("once").unwrap();
    let app = rusqlite::Connection::open(sqlite_path(&env)).unwrap();
    let refusal = Error::NotSupported(
        "A unique task cannot be enqueued inside the application's transaction (backend \
         'default'): the insert carries no uniqueness key. Use enqueue() instead."
            .into(),
    );
    assert_eq!(unique.enqueue_in(&app, key("x")).unwrap_err(), refusal);
    assert_eq!(
        unique.enqueue_many_in(&app, [key("y")]).unwrap_err(),
        refusal
    );
    assert_eq!(unique.transactional_enqueue(key("z")).unwrap_err(), refusal);
    let stored: i64 = app
        .query_row("SELECT count(*) FROM taskhost_tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0, "nothing was enqueued");
}
