//! Django's constants for tasks.

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

/// The longest queue name, in bytes (taskhost's limit; Django core sets none, django-tasks-db's
/// column holds 32 characters). Well under PostgreSQL's 8,000-byte NOTIFY payload, which carries
/// the queue name, and its ~2,700-byte btree index entries. The full rule:
/// [`validate_task`](crate::validation::validate_task).
pub const MAX_QUEUE_NAME_BYTES: usize = 255;
/// The longest task path (`my_app::tasks::send`), in bytes.
pub const MAX_TASK_PATH_BYTES: usize = 1024;
