//! A fake host: records signals and log lines, and has a clock the tests move.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use taskhost_plugin_api::{
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RArc, RResult, RStr, RString},
    },
    wire::TaskResultData,
    Host, HostBox, Host_TO, LogLevel, PluginError, PluginResult, Signal,
};

/// 2023-11-14T22:13:20Z, in microseconds.
pub const START_MICROS: i64 = 1_700_000_000_000_000;

/// A host that runs nothing, records signals, and whose clock ticks 1 µs per reading.
#[derive(Clone)]
pub struct FakeHost {
    signals: Arc<Mutex<Vec<(Signal, TaskResultData)>>>,
    wants_signals: Arc<AtomicBool>,
    clock: Arc<AtomicI64>,
}

impl FakeHost {
    /// A host reading `clock` (shared by every backend of one test database).
    pub fn new(clock: Arc<AtomicI64>) -> Self {
        Self {
            signals: Arc::default(),
            wants_signals: Arc::new(AtomicBool::new(true)),
            clock,
        }
    }

    /// The host as the ABI object a backend is built with.
    pub fn boxed(&self) -> HostBox {
        Host_TO::from_ptr(RArc::new(self.clone()), TD_Opaque)
    }

    /// The signals sent so far.
    pub fn signals(&self) -> Vec<(Signal, TaskResultData)> {
        self.signals.lock().unwrap().clone()
    }

    /// Whether `wants_signal` says yes.
    pub fn set_wants_signals(&self, wants: bool) {
        self.wants_signals.store(wants, Ordering::SeqCst);
    }
}

impl Host for FakeHost {
    fn run_task(&self, _task_result: RStr<'_>) -> PluginResult<RString> {
        RResult::RErr(PluginError::other(
            "the database backend must not run tasks",
        ))
    }

    fn wants_signal(&self, _signal: Signal) -> bool {
        self.wants_signals.load(Ordering::SeqCst)
    }

    fn send_signal(&self, signal: Signal, task_result: RStr<'_>) {
        let result = serde_json::from_str(task_result.as_str()).unwrap();
        self.signals.lock().unwrap().push((signal, result));
    }

    fn log_enabled(&self, _level: LogLevel, _target: RStr<'_>) -> bool {
        false
    }

    fn log(&self, _level: LogLevel, _target: RStr<'_>, _message: RStr<'_>) {}

    fn now_micros(&self) -> i64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    fn call_ext(&self, operation: RStr<'_>, _request: RStr<'_>) -> PluginResult<RString> {
        RResult::RErr(PluginError::not_supported(operation.as_str()))
    }
}
