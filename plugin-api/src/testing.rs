//! [`TestHost`]: the host, doubled, for a plugin's own unit tests (feature `testing`).
//!
//! ```
//! use taskhost_plugin_api::testing::TestHost;
//! use taskhost_plugin_api::{Json, Signal, TaskOutcome};
//!
//! let test_host = TestHost::new();
//! test_host.register("app::add", |result| {
//!     let (a, b): (i64, i64) = result.args.parse().unwrap();
//!     TaskOutcome::Successful { return_value: Json::encode(&(a + b)).unwrap() }
//! });
//! test_host.set_now_micros(1_700_000_000_000_000);
//! let host = test_host.host(); // hand this to your backend's constructor
//! assert_eq!(host.now().timestamp(), 1_700_000_000);
//! assert!(test_host.signals().is_empty());
//! test_host.set_listening(Signal::TASK_ENQUEUED, false); // as a host with no receivers
//! assert!(!host.wants_signal(Signal::TASK_ENQUEUED));
//! ```

use crate::host::HostServices;
use crate::log::forward_during;
use crate::types::{TaskOutcome, TaskResultData};
use crate::{ErrorKind, Host, LogLevel, PluginError, Signal};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

type TaskFn = Arc<dyn Fn(&TaskResultData) -> TaskOutcome + Send + Sync>;

/// One log event a plugin sent while [`TestHost::capture_logs`] ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its level.
    pub level: LogLevel,
    /// The plugin's `tracing` target.
    pub target: String,
    /// The message, with fields as `key=value`.
    pub message: String,
}

/// A host for unit tests: runs the tasks registered with it, records the signals and log events
/// it receives, and reads a clock the test sets (the system clock until then). Clones share
/// everything.
#[derive(Clone, Default)]
pub struct TestHost {
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    tasks: Mutex<HashMap<String, TaskFn>>,
    signals: Mutex<Vec<(Signal, TaskResultData)>>,
    logs: Mutex<Vec<LogRecord>>,
    now: Mutex<Option<i64>>,
    runs: Mutex<Vec<TaskResultData>>,
    /// Signals nobody listens to (see [`TestHost::set_listening`]).
    unheard: Mutex<Vec<Signal>>,
}

impl TestHost {
    /// A host with no tasks, no signals recorded, and the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The [`Host`] to hand to a backend's constructor.
    pub fn host(&self) -> Host {
        Host::new(Arc::new(self.clone()))
    }

    /// Make `path` a task [`Host::run_task`] can run: `run` gets the RUNNING result.
    pub fn register(
        &self,
        path: &str,
        run: impl Fn(&TaskResultData) -> TaskOutcome + Send + Sync + 'static,
    ) {
        let mut tasks = self.state.tasks.lock().unwrap();
        tasks.insert(path.to_string(), Arc::new(run));
    }

    /// Every signal sent so far, in order, with the result as sent.
    pub fn signals(&self) -> Vec<(Signal, TaskResultData)> {
        self.state.signals.lock().unwrap().clone()
    }

    /// Every result handed to [`Host::run_task`] so far, in order.
    pub fn runs(&self) -> Vec<TaskResultData> {
        self.state.runs.lock().unwrap().clone()
    }

    /// Whether anyone listens to `signal` (default: yes). With `false`, [`Host::wants_signal`]
    /// answers `false` and [`Host::send_signal`] sends nothing, as in a host without
    /// receivers: a backend's "nobody listens" path can be tested.
    pub fn set_listening(&self, signal: Signal, listening: bool) {
        let mut unheard = self.state.unheard.lock().unwrap();
        unheard.retain(|s| *s != signal);
        if !listening {
            unheard.push(signal);
        }
    }

    /// The clock's current time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.host().now()
    }

    /// Fix the clock at `micros` since the Unix epoch.
    pub fn set_now_micros(&self, micros: i64) {
        *self.state.now.lock().unwrap() = Some(micros);
    }

    /// Move the (fixed) clock on by `micros`.
    pub fn advance_micros(&self, micros: i64) {
        let now = self.now_micros();
        self.set_now_micros(now + micros);
    }

    /// Run `body` with this thread's `tracing` events sent to this host, and return them.
    pub fn capture_logs<T>(&self, body: impl FnOnce() -> T) -> (T, Vec<LogRecord>) {
        let start = self.state.logs.lock().unwrap().len();
        let value = forward_during(&self.host(), body);
        let logs = self.state.logs.lock().unwrap()[start..].to_vec();
        (value, logs)
    }
}

impl HostServices for TestHost {
    fn run_task(&self, task_result: &TaskResultData) -> Result<TaskOutcome, PluginError> {
        let path = &task_result.task.path;
        let run = self.state.tasks.lock().unwrap().get(path.as_str()).cloned();
        let run = run.ok_or_else(|| {
            PluginError::new(
                ErrorKind::INVALID_REQUEST,
                format!("task '{path}' is not registered with this TestHost"),
            )
        })?;
        self.state.runs.lock().unwrap().push(task_result.clone());
        Ok(run(task_result))
    }

    fn wants_signal(&self, signal: Signal) -> bool {
        !self.state.unheard.lock().unwrap().contains(&signal)
    }

    fn send_signal(&self, signal: Signal, task_result: &TaskResultData) {
        let mut signals = self.state.signals.lock().unwrap();
        signals.push((signal, task_result.clone()));
    }

    fn now_micros(&self) -> i64 {
        if let Some(now) = *self.state.now.lock().unwrap() {
            return now;
        }
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
    }

    fn log_enabled(&self, _level: LogLevel, _target: &str) -> bool {
        true
    }

    fn log(&self, level: LogLevel, target: &str, message: &str) {
        self.state.logs.lock().unwrap().push(LogRecord {
            level,
            target: target.to_string(),
            message: message.to_string(),
        });
    }

    fn call_ext(&self, operation: &str, _request: &str) -> Result<String, PluginError> {
        Err(PluginError::new(
            ErrorKind::NOT_SUPPORTED,
            format!("This host does not support '{operation}'."),
        ))
    }
}
