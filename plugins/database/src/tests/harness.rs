//! Test databases: a temp-dir SQLite file, or a fresh schema on the test PostgreSQL server,
//! each with the [`TestHost`] its backends share.
//!
//! PostgreSQL is `$TASKHOST_TEST_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/test`.
//! With `CI=true` an unreachable server fails the tests; otherwise they are skipped with a note.

use crate::DatabaseBackend;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use taskhost_plugin_api::{testing::TestHost, BackendParams, PluginError};

/// 2023-11-14T22:13:20Z, in microseconds: where every test's clock starts.
pub const START_MICROS: i64 = 1_700_000_000_000_000;

/// The backend class, as the host names it.
pub const BACKEND: &str = "taskhost.backends.database.DatabaseBackend";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A file in a temp dir.
    Sqlite,
    /// A fresh schema on the test server.
    Postgres,
}

/// One empty database for one test; dropped (PostgreSQL: the schema) at the end.
pub struct TestDb {
    /// Which database.
    pub kind: Kind,
    /// `url` (and `schema`) options every backend of this test gets.
    pub base: Map<String, Value>,
    /// The host every backend of this test is built with: one clock, fixed at
    /// [`START_MICROS`] until the test moves it, and one record of the signals sent.
    pub host: TestHost,
    dir: tempfile::TempDir,
    schema: Option<String>,
}

/// The test server's url.
pub fn pg_url() -> String {
    std::env::var("TASKHOST_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Whether the test server answers (asked once per process).
fn pg_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let mut config: postgres::Config = pg_url().parse().expect("a valid test url");
        config.connect_timeout(Duration::from_secs(3));
        match config.connect(postgres::NoTls) {
            Ok(_) => true,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                let e = crate::error::postgres_text(&e);
                panic!(
                    "CI=true but the PostgreSQL test server {} is unreachable: {e}",
                    pg_url()
                )
            }
            Err(e) => {
                // Straight to stderr: the test harness would capture `eprintln!`.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: skipping the PostgreSQL tests: {} is unreachable ({}); set CI=true to \
                     make that a failure",
                    pg_url(),
                    crate::error::postgres_text(&e)
                );
                false
            }
        }
    })
}

impl TestDb {
    /// A database of `kind`, or `None` when PostgreSQL is unreachable outside CI.
    pub fn new(kind: Kind) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let host = TestHost::new();
        host.set_now_micros(START_MICROS);
        let (base, schema) = match kind {
            Kind::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("tasks.db").display());
                (json!({ "url": url }), None)
            }
            Kind::Postgres => {
                if !pg_available() {
                    return None;
                }
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos();
                let schema = format!(
                    "taskhost_test_{}_{}_{nanos}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                );
                (json!({ "url": pg_url(), "schema": schema }), Some(schema))
            }
        };
        Some(Self {
            kind,
            base: base.as_object().unwrap().clone(),
            host,
            dir,
            schema,
        })
    }

    /// The temp dir of this test (SQLite: holds the database file).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Params for `alias` with the base options plus `extra`.
    pub fn params(&self, alias: &str, extra: Value) -> BackendParams {
        let mut options = self.base.clone();
        options.extend(extra.as_object().unwrap().clone());
        BackendParams {
            alias: alias.into(),
            backend: BACKEND.into(),
            queues: Vec::new(),
            options,
            config_dir: Some(self.dir().display().to_string()),
        }
    }

    /// Build a backend for `alias` with extra options, on the test's host (returned too).
    pub fn try_backend(
        &self,
        alias: &str,
        extra: Value,
    ) -> Result<(DatabaseBackend, TestHost), PluginError> {
        let backend = DatabaseBackend::new(self.params(alias, extra), self.host.host())?;
        Ok((backend, self.host.clone()))
    }

    /// The `default` backend with default options.
    pub fn backend(&self) -> (DatabaseBackend, TestHost) {
        self.try_backend("default", json!({})).unwrap()
    }

    /// Move the shared clock forward.
    pub fn advance_secs(&self, secs: i64) {
        self.host.advance_micros(secs * 1_000_000);
    }

    /// Move the shared clock on by one microsecond (it stands still otherwise), so what is
    /// stored next has a later time.
    pub fn tick(&self) {
        self.host.advance_micros(1);
    }

    /// The shared clock now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.host.host().now()
    }

    /// Run raw SQL statements (no results) on this test's database.
    pub fn execute(&self, sql: &str) {
        match self.kind {
            Kind::Sqlite => self.sqlite().execute_batch(sql).unwrap(),
            Kind::Postgres => self.postgres().batch_execute(sql).unwrap(),
        }
    }

    /// A direct connection to the SQLite file.
    pub fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir().join("tasks.db")).unwrap()
    }

    /// A direct connection to the server, with `search_path` set to this test's schema.
    pub fn postgres(&self) -> postgres::Client {
        let mut client = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
        let schema = self.schema.as_deref().expect("a PostgreSQL test database");
        client
            .batch_execute(&format!("SET search_path = {schema}"))
            .unwrap();
        client
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            if let Ok(mut client) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// Define each listed behaviour (a `fn(TestDb)` in the enclosing module) as one test per
/// database: `sqlite::<name>` and `postgres::<name>`.
macro_rules! on_both_databases {
    (ignored: $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                #[ignore = "a measurement: run with --ignored --nocapture in release"]
                fn $name() {
                    let db = $crate::tests::harness::TestDb::new($crate::tests::harness::Kind::Sqlite);
                    super::$name(db.expect("SQLite is always available"));
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                #[ignore = "a measurement: run with --ignored --nocapture in release"]
                fn $name() {
                    if let Some(db) = $crate::tests::harness::TestDb::new($crate::tests::harness::Kind::Postgres) {
                        super::$name(db);
                    }
                }
            )+
        }
    };
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let db = $crate::tests::harness::TestDb::new($crate::tests::harness::Kind::Sqlite);
                    super::$name(db.expect("SQLite is always available"));
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = $crate::tests::harness::TestDb::new($crate::tests::harness::Kind::Postgres) {
                        super::$name(db);
                    }
                }
            )+
        }
    };
}
pub(crate) use on_both_databases;
