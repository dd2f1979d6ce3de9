//! taskhost: Django's background-tasks framework (`django.tasks`) for Rust applications.
//!
//! Application code marks functions `#[task]` and enqueues them; the *backend* that takes them is
//! named per alias in `tasks.toml` and loaded at run time from a `cdylib` plugin, so backends ship
//! as files dropped into a plugins directory.
//!
//! Key items:
//! - [`task`] (the attribute), [`Task`], [`TaskOptions`] — define tasks, `using(..)` copies.
//! - [`TaskResult`], [`TaskResultStatus`], [`TaskError`], [`TaskContext`] — results of runs.
//! - [`State`], [`AppState`] — application state (a pool, a client, settings) registered once
//!   at start and taken by tasks as `State<T>` parameters.
//! - [`task_backends`], [`default_task_backend`], [`Backend`] — the configured backends.
//! - [`atomic`], [`aatomic`], [`on_commit`] — transaction scopes for `enqueue_on_commit`.
//! - [`signals`] — `task_enqueued`, `task_started`, `task_finished`.
//! - [`metrics`] — what is counted and measured (enqueues, runs, claims), through the `metrics`
//!   facade: exported by any recorder the application installs.
//! - [`Config`] — the `tasks.toml` loader; [`Error`] — every error, with Django's names.
//!
//! What is not here: the `taskhost` tool and the mountable command line (`cli_main!`) are the
//! `taskhost-cli` crate; the plugin conformance suite is `taskhost-testkit`.
//!
//! ```no_run
//! use taskhost::task;
//!
//! #[task]
//! fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//!
//! fn main() -> Result<(), taskhost::Error> {
//!     let result = add.enqueue(2, 3)?; // on the default (Immediate) backend: runs at once
//!     assert_eq!(result.return_value()?, 5);
//!     Ok(())
//! }
//! ```
//!
//! Tasks must be defined at module level (Django's rule; a `#[task]` inside a function does not
//! compile) — in doctests, write the `fn main` yourself.

// The modules form layers, without an import cycle. In import order (each imports only
// modules before it): constants, error, json, trace, transaction, validation, result, context, state,
// signals, definition, registry, metrics, outcome, periodic, plugin::{name, pins, load}, config,
// plugin::resolve, callbacks, backend, handler (also `TaskResult::refresh` and `Backend`'s async calls, which
// need the handler in force), control (cancel and retry, through the handler), wait
// (`TaskResult::wait`, `await_finished`), task, worker, transactional. `module_graph_tests` reads the
// sources and fails on a cycle. Public modules: `metrics` (the names of what is recorded
// through the `metrics` facade, and the queue gauges), `plugin` (names, resolution, pins and
// loading of plugin files, for tooling), `signals` and `worker`; what else users need is
// re-exported here.
mod backend;
mod callbacks;
mod config;
mod constants;
mod context;
mod control;
mod definition;
mod error;
mod handler;
mod json;
pub mod metrics;
mod outcome;
pub mod periodic;
pub mod plugin;
mod registry;
mod result;
pub mod signals;
mod state;
mod task;
mod trace;
mod transaction;
mod transactional;
mod unique;
mod validation;
mod wait;
pub mod worker;

#[cfg(test)]
mod module_graph_tests;

pub use backend::Backend;
pub use config::{BackendConfig, Config, ConfigSource};
pub use constants::*;
pub use context::TaskContext;
pub use control::Cancellation;
pub use definition::TaskDefinition;
pub use error::{Error, MissingState, Result};
pub use handler::{
    default_task_backend, override_task_backends, task_backends, OverrideGuard, TaskBackends,
};
pub use json::to_storable;
pub use registry::{check_state, find_task, registered_tasks};
pub use result::{TaskError, TaskResult, TaskResultStatus};
pub use state::{AppState, State};
pub use task::{Task, TaskOptions};
pub use taskhost_macros::task;
pub use taskhost_plugin_api::{Json, Text};
pub use transaction::{aatomic, atomic, in_atomic_block, on_commit};
#[cfg(any(feature = "sqlx-postgres", feature = "sqlx-sqlite"))]
pub use transactional::SqlxDatabase;
pub use transactional::{SqlParam, TransactionalEnqueue};
pub use unique::{Unique, UniqueScope};
pub use validation::validate_task;
pub use worker::{Worker, WorkerOptions, WorkerReport};

/// The host callbacks a backend is built with (what `Library::new_backend` takes): for
/// benchmarks and tests that build a backend without a handler. Not part of the stable API.
#[doc(hidden)]
pub use callbacks::HostCallbacks;

/// What `#[task]` expands to refers to these; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::definition::{BoxTaskFuture, Invocation, TaskDefinition, TaskRunner};
    pub use crate::outcome::{
        block_on, catch_async, catch_sync, decode_args, failure, from_result, from_value, no_args,
        run_blocking, take_state,
    };
    pub use crate::registry::TaskRegistration;
    pub use crate::state::StateType;
    pub use inventory;
    pub use taskhost_plugin_api::{Json, TaskOutcome};
}
