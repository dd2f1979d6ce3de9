//! What every check works with: the loaded backend, unique names, and helpers that turn the
//! host's errors into reasons.

use crate::{Status, ALIAS};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use taskhost::Backend;
use taskhost::Error;
use taskhost::TaskBackends;
use taskhost::TaskResult;
use taskhost_plugin_api::ErrorKind;
use taskhost_plugin_api::{TaskDescription, TaskResultData, TaskResultStatus};

/// What a check returns: `Ok(Passed | Skipped)` or `Err(reason)` for a failure.
pub(crate) type Verdict = Result<Status, String>;

/// One named check.
#[derive(Clone, Copy)]
pub(crate) struct Check {
    /// Its stable name.
    pub name: &'static str,
    /// Runs it.
    pub run: fn(&Ctx) -> Verdict,
}

/// A temp dir holding the copy of the library under test; removed when dropped (the loaded
/// library stays mapped: it is never unloaded).
pub(crate) struct Install {
    pub dir: PathBuf,
}

impl Install {
    /// A fresh dir with a copy of `library` under its own file name.
    pub fn new(library: &Path) -> Result<(Self, PathBuf), String> {
        let file_name = library
            .file_name()
            .ok_or_else(|| format!("'{}' does not name a file", library.display()))?;
        let dir = std::env::temp_dir().join(format!(
            "taskhost-conformance-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir(&dir)
            .map_err(|e| format!("cannot create the plugin dir '{}': {e}", dir.display()))?;
        let install = Self { dir };
        let copy = install.dir.join(file_name);
        std::fs::copy(library, &copy).map_err(|e| {
            format!(
                "cannot copy the library '{}' into the plugin dir '{}': {e}",
                library.display(),
                install.dir.display()
            )
        })?;
        Ok((install, copy))
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The loaded backend and what checks need to keep their tasks apart.
pub(crate) struct Ctx {
    /// The backend under test (alias [`ALIAS`]).
    pub backend: Arc<Backend>,
    /// Its class name (the signal sender), e.g. `DummyBackend`.
    pub class: String,
    /// Unique per run: task paths and queue names carry it.
    pub nonce: String,
    /// Keeps the backend's handler alive; dropped before the install.
    pub _handler: TaskBackends,
    /// The plugin dir holding the copy; dropped last.
    pub install: Install,
}

impl Ctx {
    /// A task description with a path and queue unique to this run and `label`, priority 0,
    /// on [`ALIAS`].
    pub fn task(&self, label: &str) -> TaskDescription {
        TaskDescription {
            path: format!("taskhost_conformance_{}::{label}", self.nonce).into(),
            priority: 0,
            queue_name: self.queue(label).into(),
            backend: ALIAS.to_string().into(),
            run_after: None,
            takes_context: false,
            is_async: false,
            max_attempts: None,
            timeout_secs: None,
        }
    }

    /// A queue name unique to this run and `label`.
    pub fn queue(&self, label: &str) -> String {
        format!("cf_{label}_{}", self.nonce)
    }

    /// Enqueue `task` with JSON arguments, the error described.
    pub fn enqueue(
        &self,
        task: &TaskDescription,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<TaskResult, String> {
        self.backend
            .enqueue_json(task, args, kwargs)
            .map_err(|e| describe("enqueue", &e))
    }

    /// The stored result `id`: `Ok(None)` when the backend answers NotSupported without
    /// declaring `supports_get_result` (as Immediate does); a NotSupported from a backend that
    /// declares it is a failure.
    pub fn fetch(&self, id: &str) -> Result<Option<TaskResult>, String> {
        match self.backend.get_result(id) {
            Ok(result) => Ok(Some(result)),
            Err(Error::NotSupported(_)) if !self.backend.supports_get_result() => Ok(None),
            Err(Error::NotSupported(m)) => Err(format!(
                "the backend declares supports_get_result, but get_result('{id}') returned \
                 NotSupported: {m}"
            )),
            Err(e) => Err(describe(&format!("get_result('{id}')"), &e)),
        }
    }
}

/// A reason for a host error: which call, which error, and a note for a caught panic.
pub(crate) fn describe(call: &str, error: &Error) -> String {
    match error {
        Error::Backend { kind, message, .. } if *kind == ErrorKind::PANIC => format!(
            "{call} panicked inside the plugin (the guard caught it; a plugin must return an \
             error instead): {message}"
        ),
        Error::Backend { kind, message, .. } if *kind == ErrorKind::OTHER => {
            format!("{call} failed: {message}")
        }
        Error::Backend { kind, message, .. } => {
            format!("{call} failed ({}): {message}", kind.name())
        }
        other => format!("{call} failed ({}): {other}", variant(other)),
    }
}

/// The name of a host error's variant (Django's exception name).
pub(crate) fn variant(error: &Error) -> &'static str {
    match error {
        Error::InvalidTask(_) => "InvalidTask",
        Error::InvalidTaskBackend { .. } => "InvalidTaskBackend",
        Error::TaskResultDoesNotExist(_) => "TaskResultDoesNotExist",
        Error::TaskResultMismatch(_) => "TaskResultMismatch",
        Error::NotSupported(_) => "NotSupported",
        Error::UnsupportedValue(_) => "UnsupportedValue",
        Error::NoReturnValue(_) => "NoReturnValue",
        Error::ReturnValueType { .. } => "ReturnValueType",
        Error::WaitTimeout { .. } => "WaitTimeout",
        Error::ImproperlyConfigured { .. } => "ImproperlyConfigured",
        Error::MissingState(_) => "MissingState",
        Error::AlreadyFinished { .. } => "AlreadyFinished",
        Error::NotFailed { .. } => "NotFailed",
        Error::DatabaseMismatch { .. } => "DatabaseMismatch",
        Error::Database { .. } => "Database",
        Error::Backend { .. } => "Backend",
    }
}

/// Whether `error` is a panic the plugin's guard caught.
pub(crate) fn is_panic(error: &Error) -> bool {
    matches!(error, Error::Backend { kind, .. } if *kind == ErrorKind::PANIC)
}

/// Positional arguments of every JSON kind, nested, with text that needs escaping.
pub(crate) fn sample_args() -> Vec<Value> {
    vec![
        json!(1),
        json!(-2),
        json!(3.5),
        json!(i64::MAX),
        json!("two"),
        json!("ünïcødé ✓ \"quoted\" \\ back\nslash"),
        Value::Null,
        json!(true),
        json!([1, [2, []]]),
        json!({"nested": {"k": [1, 2]}, "": "empty key"}),
    ]
}

/// Keyword arguments (tasks from Rust use none, producers holding JSON may).
pub(crate) fn sample_kwargs() -> Map<String, Value> {
    let mut kwargs = Map::new();
    kwargs.insert("flag".into(), json!(true));
    kwargs.insert("name".into(), json!("x"));
    kwargs.insert("items".into(), json!([1, 2]));
    kwargs
}

/// Check a result as `enqueue` returned it for `task` with `args`/`kwargs`: the task, options
/// and arguments as sent, on [`ALIAS`], and either READY (stored, untouched) or finished (run at
/// once, like Immediate).
pub(crate) fn check_enqueued(
    data: &TaskResultData,
    task: &TaskDescription,
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<(), String> {
    let id = &data.id;
    check_task(data, task)?;
    ensure!(
        data.backend == ALIAS,
        "result {id}: backend is '{}', not the alias '{ALIAS}'",
        data.backend
    );
    ensure!(
        value_of(&data.args) == Value::from(args.to_vec()),
        "result {id}: args did not round-trip: sent {}, got {}",
        Value::from(args.to_vec()),
        data.args
    );
    ensure!(
        value_of(&data.kwargs) == Value::from(kwargs.clone()),
        "result {id}: kwargs did not round-trip: sent {}, got {}",
        Value::from(kwargs.clone()),
        data.kwargs
    );
    ensure!(
        data.enqueued_at.is_some(),
        "result {id}: enqueued_at is not set"
    );
    match data.status {
        TaskResultStatus::Ready => {
            ensure!(
                data.started_at.is_none() && data.finished_at.is_none(),
                "result {id}: READY but started_at/finished_at are set"
            );
            ensure!(
                data.worker_ids.is_empty() && data.errors.is_empty(),
                "result {id}: READY but has worker ids {:?} or errors",
                data.worker_ids
            );
            ensure!(
                data.return_value.is_none(),
                "result {id}: READY but has a return value"
            );
        }
        TaskResultStatus::Successful | TaskResultStatus::Failed => {
            ensure!(
                data.finished_at.is_some(),
                "result {id}: {} but finished_at is not set",
                data.status
            );
            ensure!(
                data.status == TaskResultStatus::Successful || !data.errors.is_empty(),
                "result {id}: FAILED without an error recorded"
            );
        }
        TaskResultStatus::Running => {
            return Err(format!(
                "result {id}: enqueue returned a RUNNING result (expected READY, or finished \
                 for a backend that runs tasks at once)"
            ))
        }
    }
    Ok(())
}

/// Check that a stored task description keeps what was sent.
pub(crate) fn check_task(data: &TaskResultData, task: &TaskDescription) -> Result<(), String> {
    let (id, got) = (&data.id, &data.task);
    ensure!(
        got.path == task.path,
        "result {id}: task path '{}' stored as '{}'",
        task.path,
        got.path
    );
    ensure!(
        got.queue_name == task.queue_name,
        "result {id}: queue '{}' stored as '{}'",
        task.queue_name,
        got.queue_name
    );
    ensure!(
        got.priority == task.priority,
        "result {id}: priority {} stored as {}",
        task.priority,
        got.priority
    );
    ensure!(
        got.backend == task.backend,
        "result {id}: task backend '{}' stored as '{}'",
        task.backend,
        got.backend
    );
    ensure!(
        got.run_after == task.run_after,
        "result {id}: run_after {:?} stored as {:?}",
        task.run_after,
        got.run_after
    );
    ensure!(
        got.is_async == task.is_async && got.takes_context == task.takes_context,
        "result {id}: is_async/takes_context {}/{} stored as {}/{}",
        task.is_async,
        task.takes_context,
        got.is_async,
        got.takes_context
    );
    Ok(())
}

/// Whether two optional times agree to the millisecond (stores may keep less than ns).
pub(crate) fn same_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).num_microseconds().is_some_and(|d| d.abs() <= 1_000),
        (None, None) => true,
        _ => false,
    }
}

/// A time with whole seconds, an hour from now (stores keep at least microseconds).
pub(crate) fn in_an_hour() -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    DateTime::from_timestamp(now + 3600, 0).unwrap_or_else(Utc::now)
}

/// Run `f` on `n` scoped threads, each with the caller's `tracing` subscriber; a thread that
/// panics gives an `Err` naming it.
pub(crate) fn on_threads<T: Send>(
    n: usize,
    f: impl Fn(usize) -> Result<T, String> + Sync,
) -> Vec<Result<T, String>> {
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, dispatch) = (&f, &dispatch);
                scope.spawn(move || tracing::dispatcher::with_default(dispatch, || f(i)))
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                h.join().unwrap_or_else(|p| {
                    Err(format!(
                        "thread {i} panicked: {}",
                        taskhost_plugin_api::abi::guard::panic_message(p.as_ref())
                    ))
                })
            })
            .collect()
    })
}

/// Stored JSON text as a value (`null` when it is not JSON), for comparisons.
pub(crate) fn value_of(json: &taskhost_plugin_api::Json) -> Value {
    json.parse().unwrap_or(Value::Null)
}
