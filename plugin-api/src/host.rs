//! [`Host`]: what the host does for a backend.

use crate::types::{TaskOutcome, TaskResultData};
use crate::{LogLevel, PluginError, Signal};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What the host does for a backend: run a task function, send Django's signals, tell the time.
/// Handed to the backend's constructor; cheap to clone, usable from any thread.
///
/// In a plugin's own unit tests, [`crate::testing::TestHost`] makes one that records signals,
/// runs tasks registered with it and reads a clock the test sets.
#[derive(Clone)]
pub struct Host {
    services: Arc<dyn HostServices>,
}

/// The host's side of [`Host`]: the stable ABI's host object in a plugin, or a test double.
pub(crate) trait HostServices: Send + Sync + 'static {
    fn run_task(&self, task_result: &TaskResultData) -> Result<TaskOutcome, PluginError>;
    fn wants_signal(&self, signal: Signal) -> bool;
    fn send_signal(&self, signal: Signal, task_result: &TaskResultData);
    fn now_micros(&self) -> i64;
    fn log_enabled(&self, level: LogLevel, target: &str) -> bool;
    fn log(&self, level: LogLevel, target: &str, message: &str);
    fn call_ext(&self, operation: &str, request: &str) -> Result<String, PluginError>;
}

impl Host {
    pub(crate) fn new(services: Arc<dyn HostServices>) -> Self {
        Self { services }
    }

    /// Run the task of `task_result` (status RUNNING, this run's worker id appended) in the
    /// calling thread, as the Immediate backend does. A task that fails or panics is a
    /// [`TaskOutcome::Failed`], not an error; an error means the host could not run it at all
    /// (no task registered at that path in this process).
    pub fn run_task(&self, task_result: &TaskResultData) -> Result<TaskOutcome, PluginError> {
        self.services.run_task(task_result)
    }

    /// Whether anyone listens to `signal` (receivers or log records): skip building what
    /// [`Host::send_signal`] would send when not.
    pub fn wants_signal(&self, signal: Signal) -> bool {
        self.services.wants_signal(signal)
    }

    /// Send `signal` for `task_result` to the host's receivers (Django's `task_enqueued`,
    /// `task_started`, `task_finished`); the sender is this backend's class. Does nothing when
    /// nobody listens.
    pub fn send_signal(&self, signal: Signal, task_result: &TaskResultData) {
        if self.services.wants_signal(signal) {
            self.services.send_signal(signal, task_result);
        }
    }

    /// The current time (UTC). Tests may set it.
    pub fn now(&self) -> DateTime<Utc> {
        let micros = self.services.now_micros();
        DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The current time in microseconds since the Unix epoch.
    pub fn now_micros(&self) -> i64 {
        self.services.now_micros()
    }

    /// A host service added in a later 2.x, by name, taking and returning JSON text; a host
    /// that predates it answers [`crate::ErrorKind::NOT_SUPPORTED`].
    pub fn call_ext(&self, operation: &str, request: &str) -> Result<String, PluginError> {
        self.services.call_ext(operation, request)
    }

    pub(crate) fn log_enabled(&self, level: LogLevel, target: &str) -> bool {
        self.services.log_enabled(level, target)
    }

    pub(crate) fn log(&self, level: LogLevel, target: &str, message: &str) {
        self.services.log(level, target, message)
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}
