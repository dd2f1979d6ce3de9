//! Django's task signals: `task_enqueued`, `task_started`, `task_finished`.
//!
//! Backends ask the host to send them (through the plugin callbacks); application code connects
//! receivers. Each send also writes Django's log record on the `tracing` target `taskhost`:
//! enqueued at DEBUG, started at INFO, finished at INFO, or ERROR when the task FAILED.
//!
//! ```
//! use taskhost::signals;
//! let id = signals::task_finished.connect(|event| {
//!     println!("{} finished on {}: {}", event.task_result.id(), event.sender, event.task_result.status());
//! });
//! signals::task_finished.disconnect(id);
//! ```
#![allow(non_upper_case_globals)]

use crate::result::TaskResult;
use parking_lot::RwLock;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use taskhost_plugin_api::TaskResultStatus;

/// What a receiver gets.
#[derive(Debug)]
pub struct SignalEvent<'a> {
    /// The backend class name that sent it (e.g. `ImmediateBackend`), as Django's `sender`.
    pub sender: &'a str,
    /// The result, in the state the signal describes.
    pub task_result: &'a TaskResult,
}

/// Identifies a connected receiver, for [`Signal::disconnect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverId(u64);

type Receiver = Arc<dyn Fn(&SignalEvent<'_>) + Send + Sync>;

/// A signal receivers connect to.
pub struct Signal {
    name: &'static str,
    receivers: RwLock<Vec<(ReceiverId, Receiver)>>,
    count: AtomicUsize,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Signal {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            receivers: RwLock::new(Vec::new()),
            count: AtomicUsize::new(0),
        }
    }

    /// Django's name of the signal.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Call `receiver` on every send, from the sending thread, until disconnected.
    pub fn connect(
        &self,
        receiver: impl Fn(&SignalEvent<'_>) + Send + Sync + 'static,
    ) -> ReceiverId {
        let id = ReceiverId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let mut receivers = self.receivers.write();
        receivers.push((id, Arc::new(receiver)));
        self.count.store(receivers.len(), Ordering::Release);
        id
    }

    /// Stop calling a receiver. Returns whether it was connected.
    pub fn disconnect(&self, id: ReceiverId) -> bool {
        let mut receivers = self.receivers.write();
        let before = receivers.len();
        receivers.retain(|(rid, _)| *rid != id);
        self.count.store(receivers.len(), Ordering::Release);
        receivers.len() != before
    }

    /// Whether any receiver is connected.
    pub fn has_receivers(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Call every receiver with `event`. A panicking receiver is logged and the others still run.
    pub fn send(&self, event: &SignalEvent<'_>) {
        if !self.has_receivers() {
            return;
        }
        let receivers: Vec<Receiver> = self
            .receivers
            .read()
            .iter()
            .map(|(_, r)| r.clone())
            .collect();
        for receiver in receivers {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| receiver(event))) {
                tracing::error!(
                    target: "taskhost",
                    "a receiver of {} panicked: {}",
                    self.name,
                    taskhost_plugin_api::abi::guard::panic_message(payload.as_ref())
                );
            }
        }
    }
}

/// Sent when a task has been stored or enqueued (`enqueued_at` is set).
pub static task_enqueued: Signal = Signal::new("task_enqueued");
/// Sent when a task starts running (status RUNNING, worker id appended).
pub static task_started: Signal = Signal::new("task_started");
/// Sent when a task finished, successfully or not (`finished_at` is set).
pub static task_finished: Signal = Signal::new("task_finished");

/// The signal for an ABI signal code.
pub fn by_code(code: taskhost_plugin_api::Signal) -> Option<&'static Signal> {
    match code {
        taskhost_plugin_api::Signal::TASK_ENQUEUED => Some(&task_enqueued),
        taskhost_plugin_api::Signal::TASK_STARTED => Some(&task_started),
        taskhost_plugin_api::Signal::TASK_FINISHED => Some(&task_finished),
        _ => None,
    }
}

/// Whether sending `code` would reach anyone: a receiver or an enabled log record.
pub fn wanted(code: taskhost_plugin_api::Signal) -> bool {
    let logged = match code {
        taskhost_plugin_api::Signal::TASK_ENQUEUED => {
            tracing::enabled!(target: "taskhost", tracing::Level::DEBUG)
        }
        _ => tracing::enabled!(target: "taskhost", tracing::Level::INFO),
    };
    logged || by_code(code).is_some_and(Signal::has_receivers)
}

/// Write Django's log record for `code`, then call the receivers.
pub fn dispatch(code: taskhost_plugin_api::Signal, sender: &str, task_result: &TaskResult) {
    log_record(code, task_result);
    if let Some(signal) = by_code(code) {
        signal.send(&SignalEvent {
            sender,
            task_result,
        });
    }
}

fn log_record(code: taskhost_plugin_api::Signal, r: &TaskResult) {
    let (id, path) = (r.id(), r.task().path.as_str());
    match code {
        taskhost_plugin_api::Signal::TASK_ENQUEUED => tracing::debug!(
            target: "taskhost",
            "Task id={id} path={path} enqueued backend={}",
            r.backend()
        ),
        taskhost_plugin_api::Signal::TASK_STARTED => {
            tracing::info!(target: "taskhost", "Task id={id} path={path} state={}", r.status())
        }
        taskhost_plugin_api::Signal::TASK_FINISHED => {
            if r.status() == TaskResultStatus::Failed {
                let traceback = r
                    .errors()
                    .last()
                    .map(|e| e.traceback.as_str())
                    .unwrap_or("");
                tracing::error!(
                    target: "taskhost",
                    "Task id={id} path={path} state={}\n{}",
                    r.status(),
                    traceback.trim_end()
                )
            } else {
                tracing::info!(target: "taskhost", "Task id={id} path={path} state={}", r.status())
            }
        }
        _ => {}
    }
}
