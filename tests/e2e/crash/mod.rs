//! The crash and fault suite: real worker processes (`tests/worker-app`) are killed, stopped,
//! signalled and cut off from their database while they drain queues; what must survive is
//! checked through the store and the execution log. See docs/reliability.md.
//!
//! Sizes are small by default (for `cargo test`); `TASKHOST_CRASH_FULL=1` runs the full sizes
//! (10,000 tasks …). Every randomised test prints its seed (`crash-seed …`), and
//! `TASKHOST_CRASH_SEED=<n>` replays it; every test prints its figures (`crash-figures …`).

mod backpressure;
mod postgres_only;
mod sqlite_only;
mod support;

/// The scenarios that run on both databases, instantiated once per database.
macro_rules! crash_suite {
    ($module:ident, $store:expr) => {
        mod $module {
            use super::support::*;
            use crate::worker::env::{Env, Store};
            const STORE: Store = $store;
            include!("suite.rs");
        }
    };
}

crash_suite!(sqlite, Store::Sqlite);
crash_suite!(postgres, Store::Postgres);
