//! The `ImmediateBackend` class: Django's `ImmediateBackend`, run through the host's callbacks.

use chrono::{DateTime, Utc};
use taskhost_plugin_api::{
    abi_stable::std_types::{RResult, RStr, RString},
    guard,
    guard::guard_or,
    guard_json, ops,
    wire::{
        BackendParams, EnqueueRequest, ResultDelta, RunEnqueued, TaskError, TaskOutcome,
        TaskResultData, TaskResultStatus,
    },
    Backend, Capabilities, ErrorKind, HostBox, PluginError, PluginResult, Signal,
};

/// The class name this plugin exports.
const CLASS: &str = "ImmediateBackend";

/// The `exception_class_path` recorded when the host could not run a task at all.
const RUN_ERROR: &str = "taskhost::RunError";

/// Django's `NotImplementedError` message for `get_result` on a backend that keeps no results.
const GET_RESULT_NOT_SUPPORTED: &str =
    "This backend does not support retrieving or refreshing results.";

/// Runs each task at once, in the caller's thread, and returns the finished result.
///
/// Capabilities: `supports_async_task` and `supports_priority` (priority has no effect). No
/// `run_after`, no `get_result`. Takes no options.
pub struct ImmediateBackend {
    params: BackendParams,
    host: HostBox,
    /// Appended to `worker_ids` of every result this instance runs (Django:
    /// `get_random_string(32)`, made once per backend instance).
    worker_id: String,
}

impl ImmediateBackend {
    /// Build the backend for one alias of the host's config. Fails with
    /// [`ErrorKind::INVALID_OPTIONS`] if `params.options` is not empty: this backend has none.
    pub fn new(params: BackendParams, host: HostBox) -> Result<Self, PluginError> {
        reject_options(&params)?;
        tracing::debug!(alias = %params.alias, "ImmediateBackend created");
        Ok(Self {
            params,
            host,
            worker_id: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// The id this instance appends to `worker_ids` when it runs a task.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Django's `enqueue` + `_execute_task`: stamp, signal, run, record, signal. `in_flight`:
    /// the host is enqueueing `request` through [`ops::ENQUEUE_DELTA`] and holds it, so the
    /// task is run by id ([`ops::RUN_ENQUEUED`]) rather than sent back whole.
    fn enqueue_one(
        &self,
        request: EnqueueRequest,
        in_flight: bool,
    ) -> Result<TaskResultData, PluginError> {
        let mut result = TaskResultData::ready(request, &self.params.alias);
        result.enqueued_at = Some(self.now()?);
        self.send(Signal::TASK_ENQUEUED, &result);

        let started = self.now()?;
        result.status = TaskResultStatus::Running;
        result.started_at = Some(started);
        result.last_attempted_at = Some(started);
        result.worker_ids.push(self.worker_id.clone());
        self.send(Signal::TASK_STARTED, &result);

        let outcome = self.run(&result, in_flight);
        result.finished_at = Some(self.now()?);
        match outcome {
            TaskOutcome::Successful { return_value } => {
                result.return_value = Some(return_value);
                result.status = TaskResultStatus::Successful;
            }
            TaskOutcome::Failed { error } => {
                result.errors.push(error);
                result.status = TaskResultStatus::Failed;
            }
        }
        self.send(Signal::TASK_FINISHED, &result);
        Ok(result)
    }

    /// Run the task through the host. A task that fails, or that the host cannot run (unknown
    /// path, a garbled outcome), is a FAILED outcome: like Django, the failure is recorded on the
    /// result, never raised to the caller.
    fn run(&self, result: &TaskResultData, in_flight: bool) -> TaskOutcome {
        if in_flight {
            let request = RunEnqueued {
                id: result.id.clone(),
                // What the task's context sees; nothing to send for a task without one.
                state: result
                    .task
                    .takes_context
                    .then(|| ResultDelta::copied_from(result)),
            }
            .to_json();
            let ran = self
                .host
                .call_ext(RStr::from_str(ops::RUN_ENQUEUED), RStr::from_str(&request));
            if let RResult::ROk(outcome) = ran {
                return read_outcome(&outcome);
            }
            // A host that does not hold the request (it cannot happen with the host that sent
            // ENQUEUE_DELTA, but costs nothing to survive): send it whole.
        }
        match self.host.run_task(RStr::from_str(&result.to_json())) {
            RResult::ROk(outcome) => read_outcome(&outcome),
            RResult::RErr(e) => run_error(e.message.as_str()),
        }
    }

    /// Send `signal` with `result`, building the payload only if someone listens.
    fn send(&self, signal: Signal, result: &TaskResultData) {
        if self.host.wants_signal(signal) {
            self.host
                .send_signal(signal, RStr::from_str(&result.to_json()));
        }
    }

    /// The host's clock.
    fn now(&self) -> Result<DateTime<Utc>, PluginError> {
        let micros = self.host.now_micros();
        DateTime::from_timestamp_micros(micros).ok_or_else(|| {
            PluginError::other(format!(
                "the host clock returned {micros} µs since the epoch, which is out of range"
            ))
        })
    }
}

impl Backend for ImmediateBackend {
    fn capabilities(&self) -> Capabilities {
        guard_or(Capabilities::NONE, || {
            Capabilities::ASYNC_TASK | Capabilities::PRIORITY | Capabilities::ENQUEUE_DELTA
        })
    }

    fn check(&self) -> PluginResult<RString> {
        guard(|| Ok(RString::from("[]")))
    }

    fn enqueue(&self, request: RStr<'_>) -> PluginResult<RString> {
        guard(|| {
            let request = EnqueueRequest::from_json(request.as_str())
                .map_err(|e| PluginError::invalid_request("enqueue", e))?;
            Ok(RString::from(self.enqueue_one(request, false)?.to_json()))
        })
    }

    fn enqueue_many(&self, requests: RStr<'_>) -> PluginResult<RString> {
        guard_json(
            "enqueue_many",
            requests.as_str(),
            |requests: Vec<EnqueueRequest>| {
                requests
                    .into_iter()
                    .map(|request| self.enqueue_one(request, false))
                    .collect::<Result<Vec<_>, _>>()
            },
        )
    }

    fn get_result(&self, _id: RStr<'_>) -> PluginResult<RString> {
        guard(|| {
            Err(PluginError::new(
                ErrorKind::NOT_SUPPORTED,
                GET_RESULT_NOT_SUPPORTED,
            ))
        })
    }

    fn claim(&self, _request: RStr<'_>) -> PluginResult<RString> {
        guard(|| Err(PluginError::not_supported("claim")))
    }

    fn complete(&self, _request: RStr<'_>) -> PluginResult<RString> {
        guard(|| Err(PluginError::not_supported("complete")))
    }

    fn renew_leases(&self, _request: RStr<'_>) -> PluginResult<RString> {
        guard(|| Err(PluginError::not_supported("renew_leases")))
    }

    fn release(&self, _request: RStr<'_>) -> PluginResult<RString> {
        guard(|| Err(PluginError::not_supported("release")))
    }

    fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> PluginResult<RString> {
        guard(|| match operation.as_str() {
            ops::ENQUEUE_DELTA => {
                let request = EnqueueRequest::from_json(request.as_str())
                    .map_err(|e| PluginError::invalid_request(ops::ENQUEUE_DELTA, e))?;
                let result = self.enqueue_one(request, true)?;
                Ok(RString::from(ResultDelta::of(result).to_json()))
            }
            other => Err(PluginError::not_supported(other)),
        })
    }

    fn close(&self) {
        guard_or((), || {});
    }
}

/// Fail with [`ErrorKind::INVALID_OPTIONS`] naming every option given: this backend takes none.
fn reject_options(params: &BackendParams) -> Result<(), PluginError> {
    if params.options.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = params.options.keys().map(|k| format!("'{k}'")).collect();
    Err(PluginError::new(
        ErrorKind::INVALID_OPTIONS,
        format!(
            "Unknown option(s) for {CLASS} '{}': {}. This backend takes no options.",
            params.alias,
            keys.join(", ")
        ),
    ))
}

/// The outcome the host answered, or a FAILED one if it is unreadable.
fn read_outcome(outcome: &RString) -> TaskOutcome {
    TaskOutcome::from_json(outcome.as_str())
        .unwrap_or_else(|e| run_error(&format!("invalid task outcome payload: {e}")))
}

/// A FAILED outcome for a task the host could not run.
fn run_error(message: &str) -> TaskOutcome {
    TaskOutcome::Failed {
        error: TaskError {
            exception_class_path: RUN_ERROR.to_string(),
            traceback: format!("{message}\n"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::{Arc, Mutex};
    use taskhost_plugin_api::{
        abi_stable::{sabi_trait::TD_Opaque, std_types::RArc},
        log::install_forwarder,
        wire::TaskDescription,
        Host, Host_TO, LogLevel,
    };

    const START_MICROS: i64 = 1_700_000_000_000_000;

    /// Log records of every fake host: the log forwarder is installed once per process, bound
    /// to whichever host installed it.
    static LOGS: Mutex<Vec<(LogLevel, String, String)>> = Mutex::new(Vec::new());

    /// What the fake host saw.
    #[derive(Default)]
    struct Recorded {
        signals: Vec<(Signal, TaskResultData)>,
        runs: Vec<TaskResultData>,
        run_errors: Vec<PluginError>,
        runs_by_id: Vec<RunEnqueued>,
    }

    /// A host whose tasks are canned by path, and whose clock ticks 1 µs per reading.
    #[derive(Clone)]
    struct FakeHost {
        recorded: Arc<Mutex<Recorded>>,
        clock: Arc<AtomicI64>,
        listening: Arc<AtomicBool>,
        /// Whether `call_ext` answers RUN_ENQUEUED (with a return value of 42).
        runs_enqueued: Arc<AtomicBool>,
    }

    impl FakeHost {
        fn new() -> Self {
            Self {
                recorded: Arc::default(),
                clock: Arc::new(AtomicI64::new(START_MICROS)),
                listening: Arc::new(AtomicBool::new(true)),
                runs_enqueued: Arc::new(AtomicBool::new(false)),
            }
        }

        fn signals(&self) -> Vec<(Signal, TaskResultData)> {
            self.recorded.lock().unwrap().signals.clone()
        }

        /// Run a task by path, returning the outcome JSON.
        fn run(&self, task_result: &str) -> Result<String, PluginError> {
            let result: TaskResultData = serde_json::from_str(task_result).unwrap();
            self.recorded.lock().unwrap().runs.push(result.clone());
            let outcome = match result.task.path.as_str() {
                "tests::add" => {
                    let sum: i64 = result.args.iter().filter_map(Value::as_i64).sum();
                    TaskOutcome::Successful {
                        return_value: json!(sum),
                    }
                }
                "tests::fails" => TaskOutcome::Failed {
                    error: TaskError {
                        exception_class_path: "tests::Boom".to_string(),
                        traceback: "tests::Boom: it broke\n".to_string(),
                    },
                },
                "tests::garbled" => return Ok(r#"{"status": "EXPLODED"}"#.to_string()),
                "tests::panics" => panic!("the task exploded"),
                other => {
                    return Err(PluginError::other(format!("unknown task path '{other}'")));
                }
            };
            Ok(serde_json::to_string(&outcome).unwrap())
        }
    }

    impl Host for FakeHost {
        /// Like a real host, the body is guarded: a panic must not cross back into the plugin
        /// (abi_stable would end the process).
        fn run_task(&self, task_result: RStr<'_>) -> RResult<RString, PluginError> {
            let out = guard(|| self.run(task_result.as_str()).map(RString::from));
            if let RResult::RErr(e) = &out {
                self.recorded.lock().unwrap().run_errors.push(e.clone());
            }
            out
        }

        fn wants_signal(&self, _signal: Signal) -> bool {
            self.listening.load(Ordering::SeqCst)
        }

        fn send_signal(&self, signal: Signal, task_result: RStr<'_>) {
            let result = serde_json::from_str(task_result.as_str()).unwrap();
            self.recorded.lock().unwrap().signals.push((signal, result));
        }

        fn log_enabled(&self, _level: LogLevel, _target: RStr<'_>) -> bool {
            true
        }

        fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
            let record = (level, target.to_string(), message.to_string());
            LOGS.lock().unwrap().push(record);
        }

        fn now_micros(&self) -> i64 {
            self.clock.fetch_add(1, Ordering::SeqCst)
        }

        fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> PluginResult<RString> {
            if operation.as_str() != ops::RUN_ENQUEUED || !self.runs_enqueued.load(Ordering::SeqCst)
            {
                return RResult::RErr(PluginError::not_supported(operation.as_str()));
            }
            let request: RunEnqueued = serde_json::from_str(request.as_str()).unwrap();
            self.recorded.lock().unwrap().runs_by_id.push(request);
            let outcome = TaskOutcome::Successful {
                return_value: json!(42),
            };
            RResult::ROk(serde_json::to_string(&outcome).unwrap().into())
        }
    }

    fn host_box(fake: &FakeHost) -> HostBox {
        Host_TO::from_ptr(RArc::new(fake.clone()), TD_Opaque)
    }

    fn params() -> BackendParams {
        BackendParams {
            alias: "default".to_string(),
            backend: "taskhost.backends.immediate.ImmediateBackend".to_string(),
            ..BackendParams::default()
        }
    }

    fn backend() -> (ImmediateBackend, FakeHost) {
        let fake = FakeHost::new();
        let host = host_box(&fake);
        // Every test installs the log forwarder before a backend logs: a tracing callsite first
        // hit before the global dispatcher exists can stay disabled, losing the log test's event.
        install_forwarder(&host);
        let backend = ImmediateBackend::new(params(), host).unwrap();
        (backend, fake)
    }

    fn request(id: &str, path: &str) -> Value {
        let task = TaskDescription {
            path: path.to_string(),
            priority: 0,
            queue_name: "default".to_string(),
            backend: "default".to_string(),
            run_after: None,
            takes_context: false,
            is_async: false,
            max_attempts: None,
            timeout_secs: None,
        };
        json!({ "id": id, "task": task, "args": [1, 2], "kwargs": { "two": 3 } })
    }

    fn enqueue(backend: &ImmediateBackend, id: &str, path: &str) -> TaskResultData {
        let payload = request(id, path).to_string();
        let out = backend.enqueue(RStr::from_str(&payload)).unwrap();
        serde_json::from_str(out.as_str()).unwrap()
    }

    #[test]
    fn capabilities_are_async_task_and_priority_and_the_delta_enqueue() {
        let (backend, _) = backend();
        assert_eq!(
            backend.capabilities(),
            Capabilities::ASYNC_TASK | Capabilities::PRIORITY | Capabilities::ENQUEUE_DELTA
        );
    }

    fn enqueue_delta(backend: &ImmediateBackend, id: &str, path: &str) -> ResultDelta {
        let payload = request(id, path).to_string();
        let op = RStr::from_str(ops::ENQUEUE_DELTA);
        let out = backend.call_ext(op, RStr::from_str(&payload)).unwrap();
        ResultDelta::from_json(out.as_str()).unwrap()
    }

    #[test]
    fn the_delta_enqueue_runs_the_task_by_id_and_answers_what_enqueue_would_set() {
        let (backend, fake) = backend();
        fake.runs_enqueued.store(true, Ordering::SeqCst);
        let delta = enqueue_delta(&backend, "r1", "tests::add");
        let recorded = fake.recorded.lock().unwrap();
        assert!(recorded.runs.is_empty(), "run by id, not sent back whole");
        let [run] = &recorded.runs_by_id[..] else {
            panic!("one run by id: {:?}", recorded.runs_by_id);
        };
        assert_eq!(run.id, "r1");
        assert_eq!(run.state, None, "a task without a context needs no state");
        assert_eq!(delta.status, TaskResultStatus::Successful);
        assert_eq!(delta.return_value, Some(json!(42)));
        assert_eq!(delta.worker_ids, vec![backend.worker_id().to_string()]);
        assert!(delta.enqueued_at < delta.started_at && delta.started_at < delta.finished_at);
    }

    #[test]
    fn a_task_that_takes_a_context_is_run_by_id_with_its_running_state() {
        let (backend, fake) = backend();
        fake.runs_enqueued.store(true, Ordering::SeqCst);
        let mut payload = request("r1", "tests::add");
        payload["task"]["takes_context"] = json!(true);
        let op = RStr::from_str(ops::ENQUEUE_DELTA);
        backend
            .call_ext(op, RStr::from_str(&payload.to_string()))
            .unwrap();
        let recorded = fake.recorded.lock().unwrap();
        let state = recorded.runs_by_id[0].state.clone().expect("the state");
        assert_eq!(state.status, TaskResultStatus::Running);
        assert_eq!(state.worker_ids, vec![backend.worker_id().to_string()]);
        assert_eq!(state.started_at, state.last_attempted_at);
        assert!(state.enqueued_at < state.started_at && state.finished_at.is_none());
    }

    #[test]
    fn the_delta_enqueue_falls_back_to_run_task_on_a_host_without_run_enqueued() {
        let (backend, fake) = backend();
        let delta = enqueue_delta(&backend, "r1", "tests::add");
        assert_eq!(delta.status, TaskResultStatus::Successful);
        assert_eq!(delta.return_value, Some(json!(3)));
        let recorded = fake.recorded.lock().unwrap();
        assert_eq!(recorded.runs.len(), 1);
        assert_eq!(recorded.runs[0].id, "r1");
    }

    #[test]
    fn worker_id_is_32_lowercase_alphanumerics_made_once_per_instance() {
        let (a, _) = backend();
        let (b, _) = backend();
        assert_eq!(a.worker_id().len(), 32);
        assert!(a
            .worker_id()
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_ne!(a.worker_id(), b.worker_id());
    }

    #[test]
    fn enqueue_runs_the_task_at_once_and_returns_it_successful() {
        let (backend, _) = backend();
        let result = enqueue(&backend, "r1", "tests::add");
        assert_eq!(result.id, "r1");
        assert_eq!(result.status, TaskResultStatus::Successful);
        assert_eq!(result.return_value, Some(json!(3)));
        assert_eq!(result.args, vec![json!(1), json!(2)]);
        assert_eq!(result.kwargs.get("two"), Some(&json!(3)));
        assert_eq!(result.backend, "default");
        assert!(result.errors.is_empty());
    }

    #[test]
    fn enqueue_orders_timestamps_like_django() {
        let (backend, _) = backend();
        let result = enqueue(&backend, "r1", "tests::add");
        let enqueued = result.enqueued_at.unwrap();
        let started = result.started_at.unwrap();
        let finished = result.finished_at.unwrap();
        assert!(started >= enqueued);
        assert!(finished >= started);
        assert_eq!(result.last_attempted_at, Some(started));
        assert_eq!(
            enqueued,
            DateTime::from_timestamp_micros(START_MICROS).unwrap()
        );
    }

    #[test]
    fn enqueue_appends_this_instances_worker_id_once() {
        let (backend, _) = backend();
        let result = enqueue(&backend, "r1", "tests::add");
        assert_eq!(result.worker_ids, vec![backend.worker_id().to_string()]);
    }

    #[test]
    fn the_task_runs_with_status_running_and_the_worker_id_appended() {
        let (backend, fake) = backend();
        enqueue(&backend, "r1", "tests::add");
        let runs = fake.recorded.lock().unwrap().runs.clone();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, TaskResultStatus::Running);
        assert_eq!(runs[0].worker_ids, vec![backend.worker_id().to_string()]);
        assert!(runs[0].finished_at.is_none());
    }

    #[test]
    fn enqueue_sends_enqueued_started_finished_in_order() {
        let (backend, fake) = backend();
        enqueue(&backend, "r1", "tests::add");
        let signals = fake.signals();
        let seen: Vec<(Signal, TaskResultStatus)> =
            signals.iter().map(|(s, r)| (*s, r.status)).collect();
        assert_eq!(
            seen,
            vec![
                (Signal::TASK_ENQUEUED, TaskResultStatus::Ready),
                (Signal::TASK_STARTED, TaskResultStatus::Running),
                (Signal::TASK_FINISHED, TaskResultStatus::Successful),
            ]
        );
        let (_, enqueued) = &signals[0];
        assert!(enqueued.enqueued_at.is_some());
        assert!(enqueued.started_at.is_none());
        let (_, started) = &signals[1];
        assert_eq!(started.worker_ids.len(), 1);
        assert!(started.finished_at.is_none());
        let (_, finished) = &signals[2];
        assert!(finished.finished_at.is_some());
        assert_eq!(finished.return_value, Some(json!(3)));
    }

    #[test]
    fn no_signal_payload_is_sent_when_nobody_listens() {
        let (backend, fake) = backend();
        fake.listening.store(false, Ordering::SeqCst);
        let result = enqueue(&backend, "r1", "tests::add");
        assert_eq!(result.status, TaskResultStatus::Successful);
        assert!(fake.signals().is_empty());
    }

    #[test]
    fn a_failing_task_is_recorded_not_raised() {
        let (backend, fake) = backend();
        let result = enqueue(&backend, "r1", "tests::fails");
        assert_eq!(result.status, TaskResultStatus::Failed);
        assert_eq!(
            result.errors,
            vec![TaskError {
                exception_class_path: "tests::Boom".to_string(),
                traceback: "tests::Boom: it broke\n".to_string(),
            }]
        );
        assert_eq!(result.return_value, None);
        assert!(result.finished_at.unwrap() >= result.started_at.unwrap());
        let (signal, finished) = fake.signals().pop().unwrap();
        assert_eq!(signal, Signal::TASK_FINISHED);
        assert_eq!(finished.status, TaskResultStatus::Failed);
        assert_eq!(finished.errors.len(), 1);
    }

    #[test]
    fn a_task_the_host_cannot_run_fails_with_a_run_error() {
        let (backend, fake) = backend();
        let result = enqueue(&backend, "r1", "tests::missing");
        assert_eq!(result.status, TaskResultStatus::Failed);
        assert_eq!(
            result.errors,
            vec![TaskError {
                exception_class_path: "taskhost::RunError".to_string(),
                traceback: "unknown task path 'tests::missing'\n".to_string(),
            }]
        );
        assert_eq!(fake.signals().len(), 3);
    }

    #[test]
    fn a_garbled_outcome_from_the_host_fails_the_task() {
        let (backend, _) = backend();
        let result = enqueue(&backend, "r1", "tests::garbled");
        assert_eq!(result.status, TaskResultStatus::Failed);
        assert_eq!(result.errors[0].exception_class_path, "taskhost::RunError");
        assert!(
            result.errors[0]
                .traceback
                .starts_with("invalid task outcome payload: "),
            "{:?}",
            result.errors[0]
        );
    }

    #[test]
    fn a_panic_inside_the_hosts_run_task_is_guarded_and_fails_the_task() {
        let (backend, fake) = backend();
        let result = enqueue(&backend, "r1", "tests::panics");
        let run_errors = fake.recorded.lock().unwrap().run_errors.clone();
        assert_eq!(run_errors.len(), 1);
        assert_eq!(run_errors[0].kind, ErrorKind::PANIC);
        assert_eq!(result.status, TaskResultStatus::Failed);
        assert_eq!(
            result.errors,
            vec![TaskError {
                exception_class_path: "taskhost::RunError".to_string(),
                traceback: "plugin panicked: the task exploded\n".to_string(),
            }]
        );
        assert_eq!(
            fake.signals().last().unwrap().0,
            Signal::TASK_FINISHED,
            "task_finished is still sent"
        );
    }

    #[test]
    fn enqueue_many_runs_each_in_order() {
        let (backend, fake) = backend();
        let payload = json!([request("a", "tests::add"), request("b", "tests::fails")]);
        let out = backend
            .enqueue_many(RStr::from_str(&payload.to_string()))
            .unwrap();
        let results: Vec<TaskResultData> = serde_json::from_str(out.as_str()).unwrap();
        let ids: Vec<_> = results.iter().map(|r| (r.id.as_str(), r.status)).collect();
        assert_eq!(
            ids,
            vec![
                ("a", TaskResultStatus::Successful),
                ("b", TaskResultStatus::Failed)
            ]
        );
        assert_eq!(fake.signals().len(), 6);
    }

    #[test]
    fn a_bad_enqueue_payload_is_an_invalid_request() {
        let (backend, fake) = backend();
        let err = backend.enqueue(RStr::from_str("{}")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
        assert!(
            err.message.starts_with("invalid enqueue payload: "),
            "{err}"
        );
        assert!(fake.signals().is_empty());
    }

    #[test]
    fn an_out_of_range_clock_is_an_error_not_a_panic() {
        let (backend, fake) = backend();
        fake.clock.store(i64::MAX, Ordering::SeqCst);
        let payload = request("r1", "tests::add").to_string();
        let err = backend.enqueue(RStr::from_str(&payload)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::OTHER);
        assert!(err.message.contains("out of range"), "{err}");
    }

    #[test]
    fn get_result_is_not_supported_with_djangos_message() {
        let (backend, _) = backend();
        let err = backend.get_result(RStr::from_str("r1")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NOT_SUPPORTED);
        assert_eq!(
            err.message.as_str(),
            "This backend does not support retrieving or refreshing results."
        );
    }

    #[test]
    fn queue_store_and_extension_operations_are_not_supported() {
        let (backend, _) = backend();
        let empty = RStr::from_str("{}");
        let calls = [
            ("claim", backend.claim(empty)),
            ("complete", backend.complete(empty)),
            ("renew_leases", backend.renew_leases(empty)),
            ("release", backend.release(empty)),
            (
                "results",
                backend.call_ext(RStr::from_str("results"), empty),
            ),
        ];
        for (operation, out) in calls {
            let err = out.unwrap_err();
            assert_eq!(err.kind, ErrorKind::NOT_SUPPORTED, "{operation}");
            assert_eq!(
                err.message.as_str(),
                format!("This backend does not support '{operation}'.")
            );
        }
    }

    #[test]
    fn check_reports_nothing() {
        let (backend, _) = backend();
        assert_eq!(backend.check().unwrap().as_str(), "[]");
        backend.close();
    }

    #[test]
    fn options_are_rejected_by_name() {
        let fake = FakeHost::new();
        let mut params = params();
        params.options.insert("retries".to_string(), json!(3));
        params.options.insert("colour".to_string(), json!("blue"));
        let err = ImmediateBackend::new(params, host_box(&fake))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS);
        assert!(err.message.contains("'retries'"), "{err}");
        assert!(err.message.contains("'colour'"), "{err}");
        assert!(
            err.message.ends_with("This backend takes no options."),
            "{err}"
        );
    }

    #[test]
    fn creating_a_backend_logs_one_debug_event_through_the_host() {
        let fake = FakeHost::new();
        let host = host_box(&fake);
        install_forwarder(&host);
        let mut params = params();
        params.alias = "log-check".to_string();
        ImmediateBackend::new(params, host).unwrap();
        let logs = LOGS.lock().unwrap();
        let created: Vec<_> = logs
            .iter()
            .filter(|(_, _, message)| message.ends_with("alias=log-check"))
            .collect();
        assert_eq!(created.len(), 1, "{logs:?}");
        let (level, _, message) = created[0];
        assert_eq!(*level, LogLevel::DEBUG);
        assert_eq!(message, "ImmediateBackend created alias=log-check");
    }
}
