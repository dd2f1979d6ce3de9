//! The Worker against the database backend, through real worker processes
//! (`tests/worker-app`) and the real plugin file: the same suite on SQLite and PostgreSQL, and
//! what only one of them has.

mod cancel_backends;
pub(crate) mod env;
mod in_transaction;
mod metrics;
mod periodic;
mod postgres_only;
mod queue_limits;
mod sqlite_only;
mod state;
mod store_failures;
mod traces;
pub(crate) mod transactional;
mod unique;

/// The behaviour suite, instantiated once per database.
macro_rules! worker_suite {
    ($module:ident, $store:expr) => {
        mod $module {
            use super::env::{Env, Store};
            const STORE: Store = $store;
            include!("suite.rs");
            mod wait {
                use super::{Env, STORE};
                include!("wait.rs");
            }
        }
    };
}

worker_suite!(sqlite, Store::Sqlite);
worker_suite!(postgres, Store::Postgres);

/// Cancel and retry through real workers (`cancel.rs`), instantiated once per database.
macro_rules! cancel_suite {
    ($module:ident, $store:expr) => {
        mod $module {
            use super::env::{Env, Store};
            const STORE: Store = $store;
            include!("cancel.rs");
        }
    };
}

cancel_suite!(cancel_sqlite, Store::Sqlite);
cancel_suite!(cancel_postgres, Store::Postgres);
