//! `TaskDefinition`: what `#[task]` records about a function, and the type-erased way to run it.

use crate::context::TaskContext;
use crate::error::MissingState;
use crate::state::{AppState, StateType};
use std::future::Future;
use std::pin::Pin;
use taskhost_plugin_api::{Json, TaskOutcome};

/// A boxed task future, as async task runners return.
pub type BoxTaskFuture = Pin<Box<dyn Future<Output = TaskOutcome> + Send + 'static>>;

/// How to run a task function from stored JSON arguments (written by `#[task]`).
#[derive(Clone, Copy)]
pub enum TaskRunner {
    /// A plain `fn`.
    Sync(fn(Invocation) -> TaskOutcome),
    /// An `async fn`.
    Async(fn(Invocation) -> BoxTaskFuture),
}

/// The stored arguments of one run, handed to a [`TaskRunner`].
#[derive(Debug)]
pub struct Invocation {
    /// Positional arguments, as stored (a JSON array).
    pub args: Json,
    /// Keyword arguments, as stored (a JSON object; Rust tasks take none, others are refused).
    pub kwargs: Json,
    /// The context, for tasks that take one.
    pub context: Option<TaskContext>,
    /// The application state, where the task's `State<T>` parameters are taken from.
    pub state: AppState,
}

/// Everything `#[task]` knows about a task function. One `static` per task; the worker finds it
/// by [`TaskDefinition::path`] through the registry.
pub struct TaskDefinition {
    /// `module_path!()` + `::` + the function name: the task's identity.
    pub path: &'static str,
    /// The function name.
    pub name: &'static str,
    /// Default priority (validated at compile time to lie in -100..=100).
    pub priority: i32,
    /// Default queue.
    pub queue_name: &'static str,
    /// Default backend alias.
    pub backend: &'static str,
    /// Whether the first parameter is `context: TaskContext`.
    pub takes_context: bool,
    /// The types of its `State<T>` parameters, in order.
    pub state: &'static [StateType],
    /// Default number of attempts a worker may make (`None`: the backend's default).
    pub max_attempts: Option<u32>,
    /// Default time limit of one run, in seconds (`None`: none).
    pub timeout_secs: Option<f64>,
    /// `#[task(cron = "…")]`: the cron expression its backend's workers enqueue it at (a
    /// periodic schedule named by the task's path, in UTC, missed ticks skipped).
    pub cron: Option<&'static str>,
    /// How to run it.
    pub runner: TaskRunner,
}

impl TaskDefinition {
    /// Whether the function is an `async fn`.
    pub fn is_async(&self) -> bool {
        matches!(self.runner, TaskRunner::Async(_))
    }

    /// The `State<T>` types this task takes that `state` does not have.
    pub fn missing_state(&self, state: &AppState) -> Vec<MissingState> {
        self.state
            .iter()
            .filter(|needed| !state.contains((needed.type_id)()))
            .map(|needed| MissingState {
                task: self.path.to_string(),
                type_name: (needed.type_name)().to_string(),
            })
            .collect()
    }
}

impl std::fmt::Debug for TaskDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskDefinition")
            .field("path", &self.path)
            .field("priority", &self.priority)
            .field("queue_name", &self.queue_name)
            .field("backend", &self.backend)
            .field("takes_context", &self.takes_context)
            .field("state", &self.state)
            .field("is_async", &self.is_async())
            .finish_non_exhaustive()
    }
}
