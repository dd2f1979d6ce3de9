//! What the host does for a plugin: the [`taskhost_plugin_api::abi::AbiHost`] implementation handed to
//! every backend (run a task by path, send signals, log, tell the time).

use crate::constants::PLUGIN_LOG_TARGET;
use crate::context::TaskContext;
use crate::definition::{Invocation, TaskDefinition};
use crate::outcome::{catch_sync, run_blocking};
use crate::registry::find_task;
use crate::result::TaskResult;
use crate::signals;
use crate::state::SharedState;
use crate::trace;
use abi_stable::std_types::{RArc, RResult, RStr, RString};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use taskhost_plugin_api::abi::guard::{guard, guard_or};
use taskhost_plugin_api::abi::records::{OutcomeRecord, TaskResultView};
use taskhost_plugin_api::abi::{AbiHost, AbiHostBox, AbiHost_TO};
use taskhost_plugin_api::{ErrorKind, Json, LogLevel, PluginError, Signal, TaskOutcome};
use tracing::Level;

/// The host callbacks for one backend instance.
#[derive(Clone)]
pub struct HostCallbacks {
    inner: Arc<Inner>,
}

struct Inner {
    alias: String,
    sender: String,
    /// The application state of the handler that loaded the backend: tasks run through
    /// [`AbiHost::run_task`] (the Immediate backend) take their `State<T>` from it.
    state: SharedState,
}

impl HostCallbacks {
    /// Callbacks for the backend `alias` of class `sender` (the signal sender), with an empty
    /// application state.
    pub fn new(alias: &str, sender: &str) -> Self {
        Self::with_state(alias, sender, SharedState::default())
    }

    /// [`HostCallbacks::new`], running tasks with the application state `state`.
    pub(crate) fn with_state(alias: &str, sender: &str, state: SharedState) -> Self {
        Self {
            inner: Arc::new(Inner {
                alias: alias.to_string(),
                sender: sender.to_string(),
                state,
            }),
        }
    }

    /// As the ABI object handed to a plugin.
    pub fn into_host_box(self) -> AbiHostBox {
        AbiHost_TO::from_ptr(RArc::new(self), abi_stable::sabi_trait::TD_Opaque)
    }

    /// [`AbiHost::run_task`]: run the task of a RUNNING result the plugin lends.
    fn run(&self, view: &TaskResultView<'_>) -> Result<TaskOutcome, PluginError> {
        let definition = self.definition(view.path.as_str())?;
        // A task run at enqueue (Immediate) cannot be cancelled: nothing else sees it running.
        let context = definition
            .takes_context
            .then(|| TaskContext::new(TaskResult::from_data(view.to_owned()), Default::default()));
        let invocation = Invocation {
            args: Json::from_stored(view.args.as_str()),
            kwargs: Json::from_stored(view.kwargs.as_str()),
            context,
            state: self.inner.state.read().clone(),
        };
        // The Immediate backend runs the task inside the enqueue call (and its span).
        let span = trace::run_span(trace::Run {
            path: view.path.as_str(),
            id: view.id.as_str(),
            queue: view.queue_name.as_str(),
            backend: view.backend.as_str(),
            attempt: view.worker_ids.len(),
            context: None,
        });
        Ok(span.in_scope(|| catch_sync(|| run_blocking(definition, invocation))))
    }

    /// The registered task at `path`, or an error saying how to register it.
    fn definition(&self, path: &str) -> Result<&'static TaskDefinition, PluginError> {
        find_task(path).ok_or_else(|| {
            PluginError::new(
                ErrorKind::INVALID_REQUEST,
                format!(
                    "task '{path}' is not registered in this process (backend alias '{}'): is \
                     the crate that defines it linked into this binary?",
                    self.inner.alias
                ),
            )
        })
    }
}

fn level_of(level: LogLevel) -> Level {
    match level {
        LogLevel::TRACE => Level::TRACE,
        LogLevel::DEBUG => Level::DEBUG,
        LogLevel::INFO => Level::INFO,
        LogLevel::WARN => Level::WARN,
        _ => Level::ERROR,
    }
}

impl AbiHost for HostCallbacks {
    fn run_task(&self, task_result: TaskResultView<'_>) -> RResult<OutcomeRecord, PluginError> {
        guard(|| self.run(&task_result).map(Into::into))
    }

    fn wants_signal(&self, signal: Signal) -> bool {
        guard_or(true, || signals::wanted(signal))
    }

    fn send_signal(&self, signal: Signal, task_result: TaskResultView<'_>) {
        guard_or((), || {
            let result = TaskResult::from_data(task_result.to_owned());
            signals::dispatch(signal, &self.inner.sender, &result)
        })
    }

    fn log_enabled(&self, level: LogLevel, _target: RStr<'_>) -> bool {
        guard_or(false, || match level_of(level) {
            Level::TRACE => tracing::enabled!(target: PLUGIN_LOG_TARGET, Level::TRACE),
            Level::DEBUG => tracing::enabled!(target: PLUGIN_LOG_TARGET, Level::DEBUG),
            Level::INFO => tracing::enabled!(target: PLUGIN_LOG_TARGET, Level::INFO),
            Level::WARN => tracing::enabled!(target: PLUGIN_LOG_TARGET, Level::WARN),
            _ => tracing::enabled!(target: PLUGIN_LOG_TARGET, Level::ERROR),
        })
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        guard_or((), || {
            let (target, message) = (target.as_str(), message.as_str());
            match level_of(level) {
                Level::TRACE => {
                    tracing::trace!(target: PLUGIN_LOG_TARGET, plugin_target = target, "{message}")
                }
                Level::DEBUG => {
                    tracing::debug!(target: PLUGIN_LOG_TARGET, plugin_target = target, "{message}")
                }
                Level::INFO => {
                    tracing::info!(target: PLUGIN_LOG_TARGET, plugin_target = target, "{message}")
                }
                Level::WARN => {
                    tracing::warn!(target: PLUGIN_LOG_TARGET, plugin_target = target, "{message}")
                }
                _ => {
                    tracing::error!(target: PLUGIN_LOG_TARGET, plugin_target = target, "{message}")
                }
            }
        })
    }

    fn now_micros(&self) -> i64 {
        // Straight from the system clock: chrono's calendar conversion both ways cost ten times
        // the clock read, three times per Immediate run. Before the epoch (a broken clock):
        // negative, as chrono would say.
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
        }
    }

    fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> RResult<RString, PluginError> {
        let _ = request;
        guard(|| {
            Err(PluginError::new(
                ErrorKind::NOT_SUPPORTED,
                format!("This host does not support '{}'.", operation.as_str()),
            ))
        })
    }
}
