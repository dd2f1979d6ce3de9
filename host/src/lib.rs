//! taskhost: Django's background-tasks framework (`django.tasks`) for Rust applications.
//!
//! Application code marks functions `#[task]` and enqueues them; the *backend* that takes them is
//! named per alias in `tasks.toml` and loaded at run time from a `cdylib` plugin, so backends ship
//! as files dropped into a plugins directory.
//!
//! Key items:
//! - [`task`] (the attribute), [`Task`], [`TaskOptions`] — define tasks, `using(..)` copies.
//! - [`TaskResult`], [`TaskResultStatus`], [`TaskError`], [`TaskContext`] — results of runs.
//! - [`task_backends`], [`default_task_backend`], [`Backend`] — the configured backends.
//! - [`atomic`], [`aatomic`], [`on_commit`] — transaction scopes for `enqueue_on_commit`.
//! - [`signals`] — `task_enqueued`, `task_started`, `task_finished`.
//! - [`Config`] — the `tasks.toml` loader; [`Error`] — every error, with Django's names.
//! - [`conformance`] — the conformance suite for plugin libraries (`taskhost plugin test`).
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

pub mod backend;
pub mod callbacks;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod constants;
pub mod context;
pub mod definition;
pub mod error;
pub mod handler;
pub mod json;
pub mod outcome;
pub mod plugin;
pub mod registry;
pub mod result;
pub mod signals;
pub mod task;
pub mod transaction;
pub mod transactional;
pub mod validation;
pub mod worker;

pub use backend::Backend;
pub use config::{BackendConfig, Config, ConfigSource};
pub use constants::*;
pub use context::TaskContext;
pub use definition::TaskDefinition;
pub use error::{Error, Result};
pub use handler::{default_task_backend, override_task_backends, task_backends, TaskBackends};
pub use registry::{find_task, registered_tasks};
pub use result::{TaskError, TaskResult, TaskResultStatus};
pub use task::{Task, TaskOptions};
pub use taskhost_macros::task;
pub use taskhost_plugin_api::{Json, Text};
pub use transaction::{aatomic, atomic, in_atomic_block, on_commit};
pub use worker::{Worker, WorkerOptions, WorkerReport};

/// What `#[task]` expands to refers to these; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::definition::{BoxTaskFuture, Invocation, TaskDefinition, TaskRunner};
    pub use crate::outcome::{
        block_on, catch_async, catch_sync, decode_args, failure, from_result, from_value, no_args,
    };
    pub use crate::registry::TaskRegistration;
    pub use inventory;
    pub use taskhost_plugin_api::{Json, TaskOutcome};
}
