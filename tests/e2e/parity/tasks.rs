//! The task fixtures, like Django's `tests/tasks/tasks.py`: every one a module-level `#[task]`
//! on the `default` alias, so each test picks the backend by the config it puts in force.
//!
//! Rust tasks take typed positional arguments and no keyword arguments, so Django's
//! `noop_task(*args, **kwargs)` becomes a task with two fixed parameters.

use std::error::Error as StdError;
use std::fmt;
use taskhost::{task, TaskContext};

/// Does nothing with its arguments (Django's `noop_task(*args, **kwargs)`, `@task()`).
#[task()]
pub fn noop_task(one: i64, two: i64) {
    let _ = (one, two);
}

/// Does nothing, declared with the bare attribute (Django's `@task` without parentheses).
#[task]
pub fn noop_task_from_bare_decorator() {}

/// The async form of [`noop_task`] (Django's `async def noop_task_async`).
#[task()]
pub async fn noop_task_async(one: i64, two: i64) {
    let _ = (one, two);
}

/// Returns 42.
#[task()]
pub fn calculate_meaning_of_life() -> i64 {
    42
}

/// Django's `ValueError`: an error with a message and, optionally, the error that caused it.
#[derive(Debug)]
pub struct ValueError {
    message: String,
    source: Option<Box<ValueError>>,
}

impl ValueError {
    /// An error with `message` and no cause.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `inner`, with `inner`'s message (Django's `ValueError(ValueError(..))`).
    pub fn wrapping(inner: ValueError) -> Self {
        Self {
            message: inner.message.clone(),
            source: Some(Box::new(inner)),
        }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for ValueError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// The message of [`failing_task_value_error`].
pub const VALUE_ERROR_MESSAGE: &str = "This Task failed due to ValueError";

/// The message of [`panicking_task`].
pub const PANIC_MESSAGE: &str = "This Task failed due to a panic";

/// Fails with a [`ValueError`] (Django's `failing_task_value_error`).
#[task()]
pub fn failing_task_value_error() -> Result<(), ValueError> {
    Err(ValueError::new(VALUE_ERROR_MESSAGE))
}

/// Panics: Rust's nearest to Django's `failing_task_system_exit` (an abrupt stop of the task
/// that is not an ordinary error value).
#[task()]
pub fn panicking_task() {
    panic!("{PANIC_MESSAGE}");
}

/// Fails with an error that has a cause (Django's `complex_exception`:
/// `ValueError(ValueError("This task failed"))`).
#[task()]
pub fn complex_exception() -> Result<(), ValueError> {
    Err(ValueError::wrapping(ValueError::new("This task failed")))
}

/// Returns a value JSON cannot store (Django's `complex_return_value` returns a lambda; the Rust
/// type system rules that out, a non-finite float is the value that gets through).
#[task()]
pub fn complex_return_value() -> f64 {
    f64::NAN
}

/// Sleeps (Django's `sleep_for(seconds)`); here mostly a task taking a float.
#[task()]
pub fn sleep_for(seconds: f64) {
    std::thread::sleep(std::time::Duration::from_secs_f64(seconds.clamp(0.0, 1.0)));
}

/// Returns the id of its own result (Django's `get_task_id(context)`).
#[task(takes_context)]
pub fn get_task_id(context: TaskContext) -> String {
    context.task_result.id().to_string()
}

/// Checks the context it gets (Django's `test_context(context, attempt)`): fails the run if the
/// attempt number is not `attempt`.
#[task(takes_context)]
pub fn test_context(context: TaskContext, attempt: usize) {
    assert_eq!(
        context.task_result.status(),
        taskhost::TaskResultStatus::Running
    );
    assert_eq!(context.attempt(), attempt);
}

/// Enqueues [`calculate_meaning_of_life`] from inside a task and returns the new result's id.
#[task()]
pub fn enqueue_meaning_of_life() -> Result<String, taskhost::Error> {
    let inner = calculate_meaning_of_life.enqueue()?;
    Ok(inner.id().to_string())
}
