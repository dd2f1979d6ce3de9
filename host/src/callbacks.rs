//! What the host does for a plugin: the [`taskhost_plugin_api::Host`] implementation handed to
//! every backend (run a task by path, send signals, log, tell the time).

use crate::context::TaskContext;
use crate::definition::Invocation;
use crate::outcome::{catch_sync, run_blocking};
use crate::registry::find_task;
use crate::result::TaskResult;
use crate::signals;
use abi_stable::std_types::{RArc, RResult, RStr, RString};
use std::sync::Arc;
use taskhost_plugin_api::{
    guard, guard::guard_or, wire::TaskResultData, ErrorKind, Host, HostBox, Host_TO, LogLevel,
    PluginError, Signal,
};
use tracing::Level;

/// The host callbacks for one backend instance.
#[derive(Clone)]
pub struct HostCallbacks {
    inner: Arc<Inner>,
}

struct Inner {
    alias: String,
    sender: String,
}

impl HostCallbacks {
    /// Callbacks for the backend `alias` of class `sender` (the signal sender).
    pub fn new(alias: &str, sender: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                alias: alias.to_string(),
                sender: sender.to_string(),
            }),
        }
    }

    /// As the ABI object handed to a plugin.
    pub fn into_host_box(self) -> HostBox {
        Host_TO::from_ptr(RArc::new(self), abi_stable::sabi_trait::TD_Opaque)
    }

    fn run(&self, task_result: &str) -> Result<RString, PluginError> {
        let data = TaskResultData::from_json(task_result)
            .map_err(|e| PluginError::invalid_request("run_task", e))?;
        let Some(definition) = find_task(&data.task.path) else {
            return Err(PluginError::new(
                ErrorKind::INVALID_REQUEST,
                format!(
                    "task '{}' is not registered in this process (backend alias '{}'): is the \
                     crate that defines it linked into this binary?",
                    data.task.path, self.inner.alias
                ),
            ));
        };
        let context = definition.takes_context.then(|| TaskContext {
            task_result: TaskResult::from_data(data.clone()),
        });
        let invocation = Invocation {
            args: data.args,
            kwargs: data.kwargs,
            context,
        };
        let outcome = catch_sync(|| run_blocking(definition, invocation));
        serde_json::to_string(&outcome)
            .map(RString::from)
            .map_err(|e| PluginError::other(format!("could not encode the task outcome: {e}")))
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

/// The `tracing` target plugin events are re-emitted on; the plugin's own target is a field.
pub const PLUGIN_LOG_TARGET: &str = "taskhost::plugin";

impl Host for HostCallbacks {
    fn run_task(&self, task_result: RStr<'_>) -> RResult<RString, PluginError> {
        guard(|| self.run(task_result.as_str()))
    }

    fn wants_signal(&self, signal: Signal) -> bool {
        guard_or(true, || signals::wanted(signal))
    }

    fn send_signal(&self, signal: Signal, task_result: RStr<'_>) {
        guard_or((), || {
            match serde_json::from_str::<TaskResultData>(task_result.as_str()) {
                Ok(data) => {
                    signals::dispatch(signal, &self.inner.sender, &TaskResult::from_data(data))
                }
                Err(e) => tracing::error!(
                    target: "taskhost",
                    "backend '{}' sent {} with an unreadable task result: {e}",
                    self.inner.alias,
                    signal.name()
                ),
            }
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
        chrono::Utc::now().timestamp_micros()
    }

    fn call_ext(&self, operation: RStr<'_>, _request: RStr<'_>) -> RResult<RString, PluginError> {
        RResult::RErr(PluginError::not_supported(operation.as_str()))
    }
}
