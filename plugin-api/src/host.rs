//! The callbacks the host offers every backend. Its vtable is frozen for all of 1.x.

use crate::{LogLevel, PluginError, Signal};
use abi_stable::{
    sabi_trait,
    std_types::{RArc, RResult, RStr, RString},
};

/// What the host does for a plugin: run task functions, send signals, log, tell the time.
///
/// One object is made per backend instance; it knows the backend's alias and class, so signals
/// carry the right sender. It is cheap to clone and safe to use from any thread.
#[sabi_trait]
pub trait Host: Clone + Send + Sync {
    /// Run the task described by a [`crate::wire::TaskResultData`] (status RUNNING, worker id
    /// already appended) in the calling thread. Returns a [`crate::wire::TaskOutcome`] as JSON; a
    /// failing or panicking task is an outcome, not an error. Errors mean the host could not run
    /// it at all (unknown task path, bad payload).
    fn run_task(&self, task_result: RStr<'_>) -> RResult<RString, PluginError>;

    /// Whether anyone listens to `signal` (receivers or log records): a backend may skip building
    /// the payload when not.
    fn wants_signal(&self, signal: Signal) -> bool;

    /// Send `signal` with a [`crate::wire::TaskResultData`] to the host's receivers. The sender is
    /// the class of the backend this object was made for.
    fn send_signal(&self, signal: Signal, task_result: RStr<'_>);

    /// Whether a log event at `level` for `target` would be recorded.
    fn log_enabled(&self, level: LogLevel, target: RStr<'_>) -> bool;

    /// Record a log event in the host's `tracing` subscriber.
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);

    /// The current time, in microseconds since the Unix epoch (UTC). Tests may control it.
    fn now_micros(&self) -> i64;

    /// Extension entry point for host services added after 1.0; unknown ones return
    /// [`crate::ErrorKind::NOT_SUPPORTED`].
    #[sabi(last_prefix_field)]
    fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> RResult<RString, PluginError>;
}

/// A shared host callback object, as handed to [`crate::PluginModule::new_backend`].
pub type HostBox = Host_TO<'static, RArc<()>>;
