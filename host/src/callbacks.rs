//! What the host does for a plugin: the [`taskhost_plugin_api::Host`] implementation handed to
//! every backend (run a task by path, send signals, log, tell the time).

use crate::context::TaskContext;
use crate::definition::{Invocation, TaskDefinition};
use crate::in_flight;
use crate::outcome::{catch_sync, run_blocking};
use crate::registry::find_task;
use crate::result::TaskResult;
use crate::signals;
use abi_stable::std_types::{RArc, RResult, RStr, RString};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use taskhost_plugin_api::{
    guard,
    guard::guard_or,
    ops,
    wire::{RunEnqueued, TaskResultData},
    ErrorKind, Host, HostBox, Host_TO, LogLevel, PluginError, Signal,
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

    /// [`Host::run_task`]: run the task of a whole RUNNING result.
    fn run(&self, task_result: &str) -> Result<RString, PluginError> {
        let data = TaskResultData::from_json(task_result)
            .map_err(|e| PluginError::invalid_request("run_task", e))?;
        let definition = self.definition(&data.task.path)?;
        let context = definition.takes_context.then(|| data.clone());
        Ok(invoke(definition, data.args, data.kwargs, context))
    }

    /// [`ops::RUN_ENQUEUED`]: run the task of the enqueue request in flight on this thread.
    fn run_enqueued(&self, request: &str) -> Result<RString, PluginError> {
        let RunEnqueued { id, state } = RunEnqueued::from_json(request)
            .map_err(|e| PluginError::invalid_request(ops::RUN_ENQUEUED, e))?;
        let (definition, args, kwargs, context) = in_flight::with(&id, |request| {
            let definition = self.definition(&request.task.path)?;
            let context = match (definition.takes_context, state) {
                (false, _) => None,
                (true, Some(state)) => Some(state.apply(request.clone(), &self.inner.alias)),
                (true, None) => {
                    return Err(PluginError::new(
                        ErrorKind::INVALID_REQUEST,
                        format!(
                            "'{}' for result '{id}' has no state, and task '{}' takes a \
                             context: send the RUNNING state",
                            ops::RUN_ENQUEUED,
                            request.task.path
                        ),
                    ))
                }
            };
            let (args, kwargs) = (request.args.clone(), request.kwargs.clone());
            Ok((definition, args, kwargs, context))
        })
        .ok_or_else(|| {
            PluginError::new(
                ErrorKind::INVALID_REQUEST,
                format!(
                    "no enqueue of result '{id}' is in flight on this thread (backend alias \
                     '{}'): '{}' runs only a task the host is enqueueing through '{}' right \
                     now; use run_task otherwise",
                    self.inner.alias,
                    ops::RUN_ENQUEUED,
                    ops::ENQUEUE_DELTA
                ),
            )
        })??;
        Ok(invoke(definition, args, kwargs, context))
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

/// Run `definition` with these arguments, a panic caught, and encode its outcome.
fn invoke(
    definition: &TaskDefinition,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    context: Option<TaskResultData>,
) -> RString {
    let invocation = Invocation {
        args,
        kwargs,
        context: context.map(|data| TaskContext {
            task_result: TaskResult::from_data(data),
        }),
    };
    let outcome = catch_sync(|| run_blocking(definition, invocation));
    RString::from(outcome.to_json())
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
        // Straight from the system clock: chrono's calendar conversion both ways cost ten times
        // the clock read, three times per Immediate run. Before the epoch (a broken clock):
        // negative, as chrono would say.
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
        }
    }

    fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> RResult<RString, PluginError> {
        guard(|| match operation.as_str() {
            ops::RUN_ENQUEUED => self.run_enqueued(request.as_str()),
            other => Err(PluginError::new(
                ErrorKind::NOT_SUPPORTED,
                format!("This host does not support '{other}'."),
            )),
        })
    }
}
