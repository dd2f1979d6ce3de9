//! `TaskResult`: one enqueued run of a task.

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;
use taskhost_plugin_api::{Json, TaskDescription, TaskResultData, Text};

pub use taskhost_plugin_api::{TaskError, TaskResultStatus};

/// One enqueued run of a task: its id, status, timestamps, arguments, errors, worker ids and
/// return value (Django's `TaskResult`). `R` is the task's return type; results read without
/// knowing the task (the CLI, signals) use `serde_json::Value`.
pub struct TaskResult<R = Value> {
    data: TaskResultData,
    /// `data.args`, read as JSON on first use (or given by the enqueue that holds them).
    args: OnceLock<Vec<Value>>,
    kwargs: OnceLock<Map<String, Value>>,
    return_value: OnceLock<Option<Value>>,
    /// A unique enqueue found its key taken: this is the result already holding it.
    duplicate: bool,
    _return: PhantomData<fn() -> R>,
}

impl<R> TaskResult<R> {
    pub(crate) fn from_data(data: TaskResultData) -> Self {
        Self {
            data,
            args: OnceLock::new(),
            kwargs: OnceLock::new(),
            return_value: OnceLock::new(),
            duplicate: false,
            _return: PhantomData,
        }
    }

    /// The result a unique enqueue returned because its key was taken (see
    /// [`TaskResult::is_duplicate`]).
    pub(crate) fn duplicate_of(data: TaskResultData) -> Self {
        Self {
            duplicate: true,
            ..Self::from_data(data)
        }
    }

    /// A result whose arguments the caller already holds as values (an enqueue): they are not
    /// read back from the JSON text.
    pub(crate) fn with_args(data: TaskResultData, args: Vec<Value>) -> Self {
        let result = Self::from_data(data);
        let _ = result.args.set(args);
        result
    }

    /// The wire form of this result (what backends store).
    pub fn data(&self) -> &TaskResultData {
        &self.data
    }

    /// The same result, with its return value read as another type.
    pub fn cast<S>(self) -> TaskResult<S> {
        TaskResult {
            data: self.data,
            args: self.args,
            kwargs: self.kwargs,
            return_value: self.return_value,
            duplicate: self.duplicate,
            _return: PhantomData,
        }
    }

    /// Whether the enqueue that returned this result found its uniqueness key taken
    /// ([`Task::unique`](crate::Task::unique)): then this is the task already holding the key
    /// (another id, maybe other arguments, any status), and nothing new was enqueued. `false`
    /// for a result read with `get_result` (`refresh` keeps the flag).
    pub fn is_duplicate(&self) -> bool {
        self.duplicate
    }

    /// The result id (a UUID string).
    pub fn id(&self) -> &str {
        &self.data.id
    }

    /// The task that was enqueued, with the options it was enqueued with.
    pub fn task(&self) -> &TaskDescription {
        &self.data.task
    }

    /// Where the run stands.
    pub fn status(&self) -> TaskResultStatus {
        self.data.status
    }

    /// When the result was stored.
    pub fn enqueued_at(&self) -> Option<DateTime<Utc>> {
        self.data.enqueued_at
    }

    /// When the latest attempt started.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.data.started_at
    }

    /// When the run finished.
    pub fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.data.finished_at
    }

    /// When an attempt was last made.
    pub fn last_attempted_at(&self) -> Option<DateTime<Utc>> {
        self.data.last_attempted_at
    }

    /// The positional arguments, as stored (empty if the stored text is not a JSON array).
    pub fn args(&self) -> &[Value] {
        self.args
            .get_or_init(|| self.data.args.parse().unwrap_or_default())
    }

    /// The keyword arguments, as stored (always empty for tasks enqueued from Rust).
    pub fn kwargs(&self) -> &Map<String, Value> {
        self.kwargs
            .get_or_init(|| self.data.kwargs.parse().unwrap_or_default())
    }

    /// The alias of the backend the task was enqueued on.
    pub fn backend(&self) -> &str {
        &self.data.backend
    }

    /// The errors of failed attempts, oldest first.
    pub fn errors(&self) -> &[TaskError] {
        &self.data.errors
    }

    /// The ids of the workers that made each attempt.
    pub fn worker_ids(&self) -> &[Text] {
        &self.data.worker_ids
    }

    /// FAILED or SUCCESSFUL.
    pub fn is_finished(&self) -> bool {
        self.data.status.is_finished()
    }

    /// Whether the task was cancelled ([`TaskResult::cancel`]): FAILED, with a last error of
    /// class `taskhost::Cancelled`. Django has no cancelled status, and the statuses are frozen
    /// within 2.x (`docs/decisions/018-cancel-and-retry.md`).
    pub fn is_cancelled(&self) -> bool {
        self.data.status == TaskResultStatus::Failed
            && taskhost_plugin_api::control::is_cancellation(&self.data.errors)
    }

    /// How many attempts were made: the worker id is appended when an attempt starts, so this
    /// is 1 during the first run (as Django counts).
    pub fn attempts(&self) -> usize {
        self.data.worker_ids.len()
    }

    /// The stored return value as JSON, without the status check.
    pub fn raw_return_value(&self) -> Option<&Value> {
        self.return_value
            .get_or_init(|| {
                let text = self.data.return_value.as_ref()?;
                Some(text.parse().unwrap_or(Value::Null))
            })
            .as_ref()
    }

    /// Take the fields Django's `refresh()` updates from `fresh` (the refresh itself, which
    /// asks the result's backend, is in `handler.rs`: results sit below backends).
    pub(crate) fn copy_refreshed<S>(&mut self, fresh: TaskResult<S>) {
        let fresh = fresh.data;
        let d = &mut self.data;
        d.errors = fresh.errors;
        d.return_value = fresh.return_value;
        d.finished_at = fresh.finished_at;
        d.started_at = fresh.started_at;
        d.last_attempted_at = fresh.last_attempted_at;
        d.status = fresh.status;
        d.enqueued_at = fresh.enqueued_at;
        d.worker_ids = fresh.worker_ids;
        self.return_value = OnceLock::new();
    }
}

impl<R: DeserializeOwned> TaskResult<R> {
    /// The task's return value: `Task failed` if it FAILED, `Task has not finished yet` if it is
    /// READY or RUNNING (Django's messages).
    pub fn return_value(&self) -> Result<R> {
        match self.data.status {
            TaskResultStatus::Successful => {
                let text = self.data.return_value.as_ref().map_or("null", Json::as_str);
                serde_json::from_str(text).map_err(|e| Error::ReturnValueType {
                    id: self.data.id.to_string(),
                    expected: std::any::type_name::<R>(),
                    reason: e.to_string(),
                })
            }
            TaskResultStatus::Failed => Err(Error::NoReturnValue("Task failed")),
            _ => Err(Error::NoReturnValue("Task has not finished yet")),
        }
    }
}

impl<R> Clone for TaskResult<R> {
    fn clone(&self) -> Self {
        Self {
            data: self.data.clone(),
            args: self.args.clone(),
            kwargs: self.kwargs.clone(),
            return_value: self.return_value.clone(),
            duplicate: self.duplicate,
            _return: PhantomData,
        }
    }
}

impl<R> PartialEq for TaskResult<R> {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
    }
}

impl<R> fmt::Debug for TaskResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskResult")
            .field("id", &self.data.id)
            .field("task", &self.data.task.path)
            .field("status", &self.data.status)
            .field("backend", &self.data.backend)
            .field("attempts", &self.data.worker_ids.len())
            .finish_non_exhaustive()
    }
}
