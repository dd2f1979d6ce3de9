//! Django parity: Django's own test suite for `django.tasks` (`tests/tasks/*.py` and the
//! utility tests), rewritten against taskhost's public API and the real plugin files.
//!
//! One module per Django test file; every test names the Django test it mirrors.
//! `docs/django-parity.md` maps each Django test to its Rust test, or says why it does not
//! apply to Rust.
//!
//! Tests run on parallel threads: the config of each is a thread-local [`TestConfig`], and
//! signal receivers (process-wide) only look at the results their own test created.

mod tasks;
mod test_custom_backend;
mod test_dummy_backend;
mod test_immediate_backend;
mod test_tasks;
mod utils;

use parking_lot::Mutex;
use std::sync::Arc;
use taskhost::signals::{self, ReceiverId, Signal};
use taskhost::TaskResultStatus;
use taskhost_e2e::TestConfig;

/// The Dummy backend's name.
pub(crate) const DUMMY: &str = "taskhost.backends.dummy.DummyBackend";
/// The Immediate backend's name.
pub(crate) const IMMEDIATE: &str = "taskhost.backends.immediate.ImmediateBackend";
/// A test fixture whose capabilities are only `PRIORITY | GET_RESULT` and whose every method
/// panics: for validation-only tests (validation runs before the plugin is called).
pub(crate) const PANICKING: &str = "taskhost.fixtures.panicking.PanickingBackend";

/// One alias, `default`, on `backend`, with `queues = []` (any queue) and `extra` TOML lines
/// added to the alias table.
pub(crate) fn default_on(backend: &str, extra: &str) -> TestConfig {
    TestConfig::new(&format!(
        "[tasks.default]\nbackend = \"{backend}\"\nqueues = []\n{extra}\n"
    ))
}

/// One signal as a receiver saw it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SeenSignal {
    /// `task_enqueued`, `task_started` or `task_finished`.
    pub signal: &'static str,
    /// The backend class that sent it.
    pub sender: String,
    /// The result's id.
    pub id: String,
    /// The result's status when it was sent.
    pub status: TaskResultStatus,
    /// Whether `enqueued_at` was set when it was sent.
    pub enqueued: bool,
    /// Whether `finished_at` was set when it was sent.
    pub finished: bool,
}

/// Records every signal while alive. Signals are process-wide and other tests run in parallel,
/// so read the records of the result ids this test created only ([`SignalLog::of`]).
pub(crate) struct SignalLog {
    seen: Arc<Mutex<Vec<SeenSignal>>>,
    receivers: Vec<(&'static Signal, ReceiverId)>,
}

impl SignalLog {
    /// Connect to the three signals.
    pub fn start() -> Self {
        let seen: Arc<Mutex<Vec<SeenSignal>>> = Arc::default();
        let receivers = [
            &signals::task_enqueued,
            &signals::task_started,
            &signals::task_finished,
        ]
        .into_iter()
        .map(|signal| {
            let seen = Arc::clone(&seen);
            let id = signal.connect(move |event| {
                let r = event.task_result;
                seen.lock().push(SeenSignal {
                    signal: signal.name(),
                    sender: event.sender.to_string(),
                    id: r.id().to_string(),
                    status: r.status(),
                    enqueued: r.enqueued_at().is_some(),
                    finished: r.finished_at().is_some(),
                });
            });
            (signal, id)
        })
        .collect();
        Self { seen, receivers }
    }

    /// The signals sent for result `id`, in order.
    pub fn of(&self, id: &str) -> Vec<SeenSignal> {
        self.seen
            .lock()
            .iter()
            .filter(|s| s.id == id)
            .cloned()
            .collect()
    }

    /// `(signal, sender, status)` of the signals sent for result `id`, in order.
    pub fn summary(&self, id: &str) -> Vec<(&'static str, String, TaskResultStatus)> {
        self.of(id)
            .into_iter()
            .map(|s| (s.signal, s.sender, s.status))
            .collect()
    }
}

impl Drop for SignalLog {
    fn drop(&mut self) {
        for (signal, id) in self.receivers.drain(..) {
            signal.disconnect(id);
        }
    }
}

/// One captured log record: its level, target and message (with any continuation lines).
#[derive(Clone, Debug)]
pub(crate) struct LogRecord {
    pub level: String,
    pub target: String,
    pub text: String,
}

/// Split captured log output (the `tracing_subscriber::fmt` format, no time, no colours) into
/// records; a line that does not start with a level continues the record before it (an ERROR
/// record carries the task's traceback on its following lines).
pub(crate) fn records(captured: &taskhost_e2e::logs::Captured) -> Vec<LogRecord> {
    const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
    let mut out: Vec<LogRecord> = Vec::new();
    for line in captured.lines() {
        let trimmed = line.trim_start();
        let level = LEVELS
            .iter()
            .find(|l| trimmed.starts_with(&format!("{l} ")));
        match level {
            Some(level) => {
                let rest = &trimmed[level.len() + 1..];
                let (target, text) = rest.split_once(": ").unwrap_or(("", rest));
                out.push(LogRecord {
                    level: level.to_string(),
                    target: target.to_string(),
                    text: text.to_string(),
                });
            }
            None => match out.last_mut() {
                Some(record) => {
                    record.text.push('\n');
                    record.text.push_str(&line);
                }
                None => out.push(LogRecord {
                    level: String::new(),
                    target: String::new(),
                    text: line,
                }),
            },
        }
    }
    out
}

/// The records on the `taskhost` target itself (Django's `django.tasks` logger).
pub(crate) fn taskhost_records(captured: &taskhost_e2e::logs::Captured) -> Vec<LogRecord> {
    records(captured)
        .into_iter()
        .filter(|r| r.target == "taskhost")
        .collect()
}
