//! The Worker against the database backend, through real worker processes
//! (`tests/worker-app`) and the real plugin file: the same suite on SQLite and PostgreSQL, and
//! what only one of them has.

pub(crate) mod env;
mod metrics;
mod postgres_only;
mod sqlite_only;
mod state;
mod store_failures;
mod traces;
pub(crate) mod transactional;

/// The behaviour suite, instantiated once per database.
macro_rules! worker_suite {
    ($module:ident, $store:expr) => {
        mod $module {
            use super::env::{Env, Store};
            const STORE: Store = $store;
            include!("suite.rs");
        }
    };
}

worker_suite!(sqlite, Store::Sqlite);
worker_suite!(postgres, Store::Postgres);
