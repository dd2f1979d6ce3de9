//! `Task`: a task function plus the options it is enqueued with.

use crate::backend::Backend;
use crate::definition::TaskDefinition;
use crate::error::{Error, Result};
use crate::handler::task_backends;
use crate::result::TaskResult;
use crate::unique::{Unique, UniqueScope};
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use taskhost_plugin_api::TaskDescription;

/// Overrides for [`Task::using`]: each option left `None` keeps the task's current value (so, as
/// in Django, `using` cannot reset `run_after` to none).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskOptions {
    /// New priority, -100..=100.
    pub priority: Option<i32>,
    /// New queue: 1 to [`MAX_QUEUE_NAME_BYTES`](crate::MAX_QUEUE_NAME_BYTES) bytes without
    /// control characters, commas or leading or trailing whitespace, and not `*` (else
    /// `InvalidTask`; see [`validate_task`](crate::validation::validate_task)).
    pub queue_name: Option<String>,
    /// Earliest time to run (needs a backend that `supports_defer`).
    pub run_after: Option<DateTime<Utc>>,
    /// Another backend alias.
    pub backend: Option<String>,
    /// Enqueue under a uniqueness key (needs a backend that `supports_unique`): a second
    /// enqueue while the key is held returns the task holding it.
    pub unique: Option<Unique>,
}

impl TaskOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Set the queue.
    pub fn queue_name(mut self, queue_name: impl Into<String>) -> Self {
        self.queue_name = Some(queue_name.into());
        self
    }

    /// Set the earliest time to run.
    pub fn run_after(mut self, run_after: DateTime<Utc>) -> Self {
        self.run_after = Some(run_after.trunc_subsecs(6));
        self
    }

    /// Set the backend alias.
    pub fn backend(mut self, backend: impl Into<String>) -> Self {
        self.backend = Some(backend.into());
        self
    }

    /// Enqueue under a key derived from the task path and the arguments, held while the task
    /// is READY or RUNNING ([`Unique::derived`]; keeps a scope set before).
    pub fn unique(mut self) -> Self {
        let scope = self.unique.map(|u| u.held_for()).unwrap_or_default();
        self.unique = Some(Unique::derived().scope(scope));
        self
    }

    /// Enqueue under the key `key` (per task path), held while the task is READY or RUNNING
    /// ([`Unique::key`]; keeps a scope set before).
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        let scope = self.unique.map(|u| u.held_for()).unwrap_or_default();
        self.unique = Some(Unique::key(key).scope(scope));
        self
    }

    /// Hold the uniqueness key for `scope` (a derived key unless [`TaskOptions::unique_key`]
    /// set one).
    pub fn unique_scope(mut self, scope: UniqueScope) -> Self {
        self.unique = Some(self.unique.unwrap_or_default().scope(scope));
        self
    }
}

/// A task: a function marked `#[task]` and the options it is enqueued with (Django's `Task`).
///
/// `A` is the tuple of the function's stored parameters (without the context and the
/// `State<T>` ones), `R` its return type
/// (for `Result<T, E>`, `T`). Values are immutable: [`Task::using`] returns a re-validated copy.
/// The per-task type that `#[task]` generates dereferences to this.
pub struct Task<A, R> {
    definition: &'static TaskDefinition,
    priority: i32,
    queue_name: Cow<'static, str>,
    backend: Cow<'static, str>,
    run_after: Option<DateTime<Utc>>,
    unique: Option<Unique>,
    /// [`Task::description`], built on first use (the fields above never change).
    description: OnceLock<TaskDescription>,
    _signature: PhantomData<fn(A) -> R>,
}

impl<A, R> Task<A, R> {
    /// The task with its definition's defaults (used by `#[task]` in a `static`).
    pub const fn from_definition(definition: &'static TaskDefinition) -> Self {
        Self {
            definition,
            priority: definition.priority,
            queue_name: Cow::Borrowed(definition.queue_name),
            backend: Cow::Borrowed(definition.backend),
            run_after: None,
            unique: None,
            description: OnceLock::new(),
            _signature: PhantomData,
        }
    }

    /// What `#[task]` recorded about the function.
    pub fn definition(&self) -> &'static TaskDefinition {
        self.definition
    }

    /// The function name (not necessarily unique).
    pub fn name(&self) -> &'static str {
        self.definition.name
    }

    /// The task's path, `module_path!()` + `::` + function name: what workers look it up by.
    pub fn module_path(&self) -> &'static str {
        self.definition.path
    }

    /// Priority, -100..=100.
    pub fn priority(&self) -> i32 {
        self.priority
    }

    /// The queue it is enqueued to.
    pub fn queue_name(&self) -> &str {
        &self.queue_name
    }

    /// The backend alias.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// Earliest time to run, if deferred.
    pub fn run_after(&self) -> Option<DateTime<Utc>> {
        self.run_after
    }

    /// The uniqueness it is enqueued with, if any ([`Task::unique`]).
    pub fn uniqueness(&self) -> Option<&Unique> {
        self.unique.as_ref()
    }

    /// Whether the function takes a `TaskContext` first.
    pub fn takes_context(&self) -> bool {
        self.definition.takes_context
    }

    /// Whether the function is an `async fn`.
    pub fn is_async(&self) -> bool {
        self.definition.is_async()
    }

    /// The task as sent to backends.
    pub fn description(&self) -> TaskDescription {
        self.cached_description().clone()
    }

    /// The task as sent to backends, built once per `Task` value.
    fn cached_description(&self) -> &TaskDescription {
        self.description.get_or_init(|| TaskDescription {
            path: self.definition.path.to_string().into(),
            priority: self.priority,
            queue_name: self.queue_name.to_string().into(),
            backend: self.backend.to_string().into(),
            run_after: self.run_after,
            takes_context: self.definition.takes_context,
            is_async: self.definition.is_async(),
            max_attempts: self.definition.max_attempts,
            timeout_secs: self.definition.timeout_secs,
        })
    }

    /// The backend this task is enqueued on, resolved now (never stored).
    pub fn get_backend(&self) -> Result<Arc<Backend>> {
        task_backends().get(&self.backend)
    }

    /// Check the task against its backend (Django's `validate_task`, in Django's order).
    pub fn validate(&self) -> Result<()> {
        let backend = self.get_backend()?;
        backend.validate_task(self.cached_description())?;
        match &self.unique {
            Some(unique) => backend.validate_unique(unique),
            None => Ok(()),
        }
    }

    /// A copy enqueued under a key derived from the task path and the arguments, held while
    /// the task is READY or RUNNING: enqueueing it again with the same arguments meanwhile
    /// returns the task already enqueued ([`TaskResult::is_duplicate`]). Validated:
    /// `InvalidTask` naming the backend if it does not support unique tasks.
    pub fn unique(&self) -> Result<Self> {
        self.using(TaskOptions::new().unique())
    }

    /// A copy enqueued under the key `key` (held per task path) while the task is READY or
    /// RUNNING; see [`Task::unique`]. For another scope, [`TaskOptions::unique_scope`].
    pub fn unique_key(&self, key: impl Into<String>) -> Result<Self> {
        self.using(TaskOptions::new().unique_key(key))
    }

    /// A copy with `options` applied, validated against its (possibly new) backend; `self` is
    /// unchanged. Options left `None` keep this task's values.
    pub fn using(&self, options: TaskOptions) -> Result<Self> {
        let copy = Self {
            definition: self.definition,
            priority: options.priority.unwrap_or(self.priority),
            queue_name: options
                .queue_name
                .map(Cow::Owned)
                .unwrap_or_else(|| self.queue_name.clone()),
            backend: options
                .backend
                .map(Cow::Owned)
                .unwrap_or_else(|| self.backend.clone()),
            // Stored to the microsecond, as Django stores datetimes (and the plugin boundary
            // carries them).
            run_after: options
                .run_after
                .map(|t| t.trunc_subsecs(6))
                .or(self.run_after),
            unique: options.unique.or_else(|| self.unique.clone()),
            description: OnceLock::new(),
            _signature: PhantomData,
        };
        copy.validate()?;
        Ok(copy)
    }

    /// The result `id` of this task from its backend, or `TaskResultMismatch` if the id belongs
    /// to another task (compared by path, so results of `using` copies match).
    pub fn get_result(&self, id: &str) -> Result<TaskResult<R>> {
        let result = self.get_backend()?.get_result(id)?;
        self.check_same_task(result)
    }

    /// The async form of [`Task::get_result`].
    pub async fn aget_result(&self, id: &str) -> Result<TaskResult<R>> {
        let result = self.get_backend()?.aget_result(id).await?;
        self.check_same_task(result)
    }

    fn check_same_task(&self, result: TaskResult) -> Result<TaskResult<R>> {
        if result.task().path != self.definition.path {
            return Err(Error::TaskResultMismatch(format!(
                "Task does not match (received '{}')",
                result.task().path
            )));
        }
        Ok(result.cast())
    }
}

impl<A: Serialize, R> Task<A, R> {
    /// Enqueue with the parameter tuple `args` (the typed `enqueue` that `#[task]` generates
    /// calls this). Validates again first: the config may have changed since construction.
    pub fn enqueue_args(&self, args: A) -> Result<TaskResult<R>> {
        let backend = self.get_backend()?;
        let result =
            backend.enqueue_unique(self.cached_description(), &args, self.unique.as_ref())?;
        Ok(result.cast())
    }

    /// Enqueue one run per parameter tuple, in one call to the backend (one transaction in a
    /// database backend): for producers that enqueue thousands at once.
    ///
    /// A [`unique`](Task::unique) task's runs are checked in order: a run whose key is held — by
    /// a stored task or an earlier run of the same call — gets the result holding it
    /// ([`TaskResult::is_duplicate`]), the others are stored, all in the one call.
    pub fn enqueue_many(&self, runs: impl IntoIterator<Item = A>) -> Result<Vec<TaskResult<R>>> {
        let backend = self.get_backend()?;
        if let Some(unique) = &self.unique {
            let args = runs
                .into_iter()
                .map(|args| Backend::encode_args(&args))
                .collect::<Result<Vec<_>>>()?;
            let results = backend.enqueue_many_unique(self.cached_description(), args, unique)?;
            return Ok(results.into_iter().map(TaskResult::cast).collect());
        }
        let args = runs
            .into_iter()
            .map(|args| Backend::encode_args_text(&args))
            .collect::<Result<Vec<_>>>()?;
        let results = backend.enqueue_many_text(self.cached_description(), args)?;
        Ok(results.into_iter().map(TaskResult::cast).collect())
    }

    /// The async form of [`Task::enqueue_args`].
    pub async fn aenqueue_args(&self, args: A) -> Result<TaskResult<R>> {
        let backend = self.get_backend()?;
        let result = backend
            .aenqueue_unique(self.cached_description(), &args, self.unique.as_ref())
            .await?;
        Ok(result.cast())
    }
}

impl<A, R> Clone for Task<A, R> {
    fn clone(&self) -> Self {
        Self {
            definition: self.definition,
            priority: self.priority,
            queue_name: self.queue_name.clone(),
            backend: self.backend.clone(),
            run_after: self.run_after,
            unique: self.unique.clone(),
            description: self.description.clone(),
            _signature: PhantomData,
        }
    }
}

impl<A, R> PartialEq for Task<A, R> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.definition, other.definition)
            && self.priority == other.priority
            && self.queue_name == other.queue_name
            && self.backend == other.backend
            && self.run_after == other.run_after
            && self.unique == other.unique
    }
}

impl<A, R> fmt::Debug for Task<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("path", &self.definition.path)
            .field("priority", &self.priority)
            .field("queue_name", &self.queue_name)
            .field("backend", &self.backend)
            .field("run_after", &self.run_after)
            .field("unique", &self.unique)
            .field("takes_context", &self.definition.takes_context)
            .finish()
    }
}
