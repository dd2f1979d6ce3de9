//! Django's constants for tasks, and taskhost's own.

/// The alias of the backend used when a task names none (`"default"`).
pub const DEFAULT_TASK_BACKEND_ALIAS: &str = "default";
/// The queue a task goes to when it names none (`"default"`).
pub const DEFAULT_TASK_QUEUE_NAME: &str = "default";
/// The priority of a task that sets none (`0`).
pub const DEFAULT_TASK_PRIORITY: i32 = 0;
/// The lowest priority (`-100`), inclusive.
pub const TASK_MIN_PRIORITY: i32 = -100;
/// The highest priority (`100`), inclusive; larger numbers run first.
pub const TASK_MAX_PRIORITY: i32 = 100;

/// The `tracing` target a plugin's log events are re-emitted on in the application's
/// subscriber; the plugin's own target is a field (`RUST_LOG=taskhost::plugin=debug`).
pub const PLUGIN_LOG_TARGET: &str = "taskhost::plugin";

pub use taskhost_names::{MAX_QUEUE_NAME_BYTES, MAX_TASK_PATH_BYTES};
