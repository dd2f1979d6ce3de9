//! The `DummyBackend` class: Django's `DummyBackend`, storing results in memory.

use indexmap::IndexMap;
use std::sync::{Condvar, Mutex};
use std::time::Instant;
use taskhost_plugin_api::{
    control, Backend, BackendParams, Capabilities, EnqueueRequest, Host, PluginError, Signal,
    TaskResultData, TaskResultStatus, Text, WaitFinishedRequest, WaitFinishedResponse,
    WAIT_FINISHED,
};

/// Extension operation: replace a stored result. Request: a [`TaskResultData`] as JSON, whose
/// `id` is stored; response `null`; an unknown id is
/// [`ErrorKind::RESULT_DOES_NOT_EXIST`](taskhost_plugin_api::ErrorKind::RESULT_DOES_NOT_EXIST).
/// Lets tests play a worker that changes a stored result (Django's `test_refresh_result`
/// mutates the stored object).
pub const UPDATE: &str = "taskhost.backends.dummy.update";

/// Stores each enqueued task as a READY result and never runs it.
///
/// Capabilities: `supports_defer`, `supports_async_task` and `supports_priority`; not
/// `supports_get_result` (as in Django: the results live in this instance only), although
/// `get_result` works on this instance. Takes no options.
pub struct DummyBackend {
    alias: String,
    host: Host,
    /// The stored results by id, in enqueue order.
    results: Mutex<IndexMap<Text, TaskResultData>>,
    /// Signalled by every [`UPDATE`] and `clear`: what [`WAIT_FINISHED`] waits on.
    updated: Condvar,
}

impl DummyBackend {
    /// Build the backend for one alias of the host's config; it takes no options.
    pub fn new(params: BackendParams, host: Host) -> Result<Self, PluginError> {
        if !params.options.is_empty() {
            let keys: Vec<String> = params.options.keys().map(|k| format!("'{k}'")).collect();
            return Err(PluginError::invalid_options(format!(
                "Unknown option(s) for DummyBackend '{}': {}. This backend takes no options.",
                params.alias,
                keys.join(", ")
            )));
        }
        tracing::debug!(alias = %params.alias, "DummyBackend created");
        Ok(Self {
            alias: params.alias,
            host,
            results: Mutex::default(),
            updated: Condvar::new(),
        })
    }
}

impl Backend for DummyBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::DEFER | Capabilities::ASYNC_TASK | Capabilities::PRIORITY
    }

    /// Django's `enqueue`: stamp `enqueued_at`, store, send `task_enqueued`.
    fn enqueue(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
        let mut result = TaskResultData::ready(request, &self.alias);
        result.enqueued_at = Some(self.host.now());
        {
            let mut results = self.results.lock().unwrap();
            if results.contains_key(&result.id) {
                let message = format!("A result with id '{}' is already stored.", result.id);
                return Err(PluginError::invalid_request(message));
            }
            results.insert(result.id.clone(), result.clone());
        }
        // The signal goes out with the lock released: a receiver may well read results back.
        self.host.send_signal(Signal::TASK_ENQUEUED, &result);
        Ok(result)
    }

    /// The stored result `id`; Django's `TaskResultDoesNotExist(id)` if there is none.
    fn get_result(&self, id: &str) -> Result<TaskResultData, PluginError> {
        let results = self.results.lock().unwrap();
        results
            .get(id)
            .cloned()
            .ok_or_else(|| PluginError::does_not_exist(id))
    }

    fn results(&self) -> Result<Vec<TaskResultData>, PluginError> {
        Ok(self.results.lock().unwrap().values().cloned().collect())
    }

    fn clear(&self) -> Result<(), PluginError> {
        self.results.lock().unwrap().clear();
        self.updated.notify_all();
        Ok(())
    }

    /// [`UPDATE`], [`WAIT_FINISHED`], and job control: [`control::CANCEL`] (a READY result
    /// FAILED with the cancellation error; nothing ever runs here, so a RUNNING one — set
    /// through [`UPDATE`] — is only answered `requested`) and [`control::RETRY`] (a FAILED
    /// result READY again). Any other operation is not supported.
    fn call_ext(&self, operation: &str, request: &str) -> Result<String, PluginError> {
        match operation {
            UPDATE => self.update(request),
            WAIT_FINISHED => self.wait_finished(request),
            control::CANCEL => self.cancel(request),
            control::RETRY => self.retry(request),
            other => Err(PluginError::not_supported(other)),
        }
    }
}

impl DummyBackend {
    /// [`UPDATE`]: replace a stored result, waking [`WAIT_FINISHED`] calls.
    fn update(&self, request: &str) -> Result<String, PluginError> {
        let result: TaskResultData = serde_json::from_str(request)
            .map_err(|e| PluginError::invalid_request(format!("invalid {UPDATE} payload: {e}")))?;
        let mut results = self.results.lock().unwrap();
        match results.get_mut(result.id.as_str()) {
            Some(stored) => *stored = result,
            None => return Err(PluginError::does_not_exist(&result.id)),
        }
        self.updated.notify_all();
        Ok("null".to_string())
    }

    /// [`WAIT_FINISHED`]: this backend never runs a task, so a result finishes only when an
    /// [`UPDATE`] (a test playing a worker) says so; the wait blocks on that, without polling.
    fn wait_finished(&self, request: &str) -> Result<String, PluginError> {
        let request: WaitFinishedRequest = serde_json::from_str(request).map_err(|e| {
            PluginError::invalid_request(format!("invalid {WAIT_FINISHED} payload: {e}"))
        })?;
        let timeout = request.checked_timeout()?;
        let deadline = Instant::now().checked_add(timeout);
        let mut results = self.results.lock().unwrap();
        let mut checks = 0;
        loop {
            checks += 1;
            let mut answer = WaitFinishedResponse {
                checks,
                ..Default::default()
            };
            for id in &request.ids {
                let stored = results
                    .get(id.as_str())
                    .ok_or_else(|| PluginError::does_not_exist(id))?;
                match stored.status.is_finished() {
                    true => answer.finished.push(id.clone()),
                    false => answer.pending.push(id.clone()),
                }
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if answer.pending.is_empty() || left.is_some_and(|l| l.is_zero()) {
                return serde_json::to_string(&answer)
                    .map_err(|e| PluginError::other(format!("{WAIT_FINISHED}: {e}")));
            }
            results = match left {
                Some(left) => self.updated.wait_timeout(results, left).unwrap().0,
                None => self.updated.wait(results).unwrap(),
            };
        }
    }
}

impl DummyBackend {
    /// [`control::CANCEL`].
    fn cancel(&self, request: &str) -> Result<String, PluginError> {
        let control::CancelRequest { id } = decode(control::CANCEL, request)?;
        let mut results = self.results.lock().unwrap();
        let stored = results
            .get_mut(id.as_str())
            .ok_or_else(|| PluginError::does_not_exist(&id))?;
        let outcome = match stored.status {
            TaskResultStatus::Ready => {
                stored.status = TaskResultStatus::Failed;
                stored.finished_at = Some(self.host.now());
                stored.errors.push(control::cancellation_error(
                    "the task was cancelled while READY; it will not run.",
                ));
                control::CancelOutcome::Cancelled
            }
            TaskResultStatus::Running => control::CancelOutcome::Requested,
            _ => control::CancelOutcome::AlreadyFinished,
        };
        let result = stored.clone();
        // A cancelled result is finished: wake the waits on it.
        self.updated.notify_all();
        encode(
            control::CANCEL,
            &control::CancelResponse { outcome, result },
        )
    }

    /// [`control::RETRY`].
    fn retry(&self, request: &str) -> Result<String, PluginError> {
        let control::RetryRequest { id } = decode(control::RETRY, request)?;
        let mut results = self.results.lock().unwrap();
        let stored = results
            .get_mut(id.as_str())
            .ok_or_else(|| PluginError::does_not_exist(&id))?;
        let outcome = match stored.status {
            TaskResultStatus::Failed => {
                stored.status = TaskResultStatus::Ready;
                stored.finished_at = None;
                stored.return_value = None;
                control::RetryOutcome::Retried
            }
            _ => control::RetryOutcome::NotFailed,
        };
        let result = stored.clone();
        encode(control::RETRY, &control::RetryResponse { outcome, result })
    }
}

/// Read the JSON request of `operation`.
fn decode<T: serde::de::DeserializeOwned>(
    operation: &str,
    request: &str,
) -> Result<T, PluginError> {
    serde_json::from_str(request)
        .map_err(|e| PluginError::invalid_request(format!("invalid {operation} payload: {e}")))
}

/// Write the JSON response of `operation`.
fn encode<T: serde::Serialize>(operation: &str, response: &T) -> Result<String, PluginError> {
    serde_json::to_string(response).map_err(|e| PluginError::other(format!("{operation}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskhost_plugin_api::testing::TestHost;
    use taskhost_plugin_api::{
        ErrorKind, Json, LogLevel, TaskDescription, TaskOutcome, TaskResultStatus,
    };

    const T0: i64 = 1_700_000_000_000_000;

    /// A host at `T0` with the task `tests::add` registered (so a run would be recorded).
    fn test_host() -> TestHost {
        let test_host = TestHost::new();
        test_host.set_now_micros(T0);
        test_host.register("tests::add", |_| TaskOutcome::Successful {
            return_value: Json::encode(&3).unwrap(),
        });
        test_host
    }

    fn params() -> BackendParams {
        BackendParams {
            alias: "default".to_string(),
            backend: "taskhost.backends.dummy.DummyBackend".to_string(),
            ..BackendParams::default()
        }
    }

    fn backend() -> (DummyBackend, TestHost) {
        let test_host = test_host();
        (
            DummyBackend::new(params(), test_host.host()).unwrap(),
            test_host,
        )
    }

    fn request(id: &str) -> EnqueueRequest {
        EnqueueRequest {
            kwargs: Json::from_text(r#"{"two":3}"#).unwrap(),
            ..EnqueueRequest::new(
                id,
                TaskDescription::new("tests::add"),
                Json::encode(&[1]).unwrap(),
            )
        }
    }

    fn ids(results: &[TaskResultData]) -> Vec<&str> {
        results.iter().map(|r| r.id.as_str()).collect()
    }

    fn stored_ids(backend: &DummyBackend) -> Vec<String> {
        backend
            .results()
            .unwrap()
            .into_iter()
            .map(|r| r.id.into())
            .collect()
    }

    fn already_stored(err: PluginError, id: &str) {
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
        assert_eq!(
            err.message(),
            format!("A result with id '{id}' is already stored.")
        );
    }

    #[test]
    fn capabilities_are_defer_async_task_and_priority() {
        let (backend, _) = backend();
        let caps = backend.capabilities();
        let expected = Capabilities::DEFER | Capabilities::ASYNC_TASK | Capabilities::PRIORITY;
        assert_eq!(caps, expected);
        assert!(!caps.contains(Capabilities::GET_RESULT));
    }

    #[test]
    fn enqueue_stores_a_ready_result_and_never_runs_it() {
        let (backend, test_host) = backend();
        let result = backend.enqueue(request("r1")).unwrap();
        assert_eq!(result.id, "r1");
        assert_eq!(result.status, TaskResultStatus::Ready);
        assert_eq!(result.enqueued_at.map(|at| at.timestamp_micros()), Some(T0));
        assert_eq!(result.started_at, None);
        assert_eq!(result.finished_at, None);
        assert_eq!(result.last_attempted_at, None);
        assert!(result.worker_ids.is_empty() && result.errors.is_empty());
        assert_eq!(result.return_value, None);
        assert_eq!(result.args.as_str(), "[1]");
        assert_eq!(result.kwargs.as_str(), r#"{"two":3}"#);
        assert_eq!(result.backend, "default");
        assert!(test_host.runs().is_empty());
    }

    #[test]
    fn a_deferred_async_task_is_stored_as_it_came() {
        let (backend, test_host) = backend();
        let mut deferred = request("r1");
        deferred.task.run_after = Some(test_host.host().now());
        deferred.task.is_async = true;
        deferred.task.priority = 50;
        let result = backend.enqueue(deferred.clone()).unwrap();
        assert_eq!(result.task, deferred.task);
        assert_eq!(result.status, TaskResultStatus::Ready);
        assert!(test_host.runs().is_empty());
    }

    #[test]
    fn enqueue_sends_task_enqueued_only_with_the_returned_result() {
        let (backend, test_host) = backend();
        let result = backend.enqueue(request("r1")).unwrap();
        assert_eq!(test_host.signals(), vec![(Signal::TASK_ENQUEUED, result)]);
    }

    #[test]
    fn get_result_returns_the_stored_result_still_ready() {
        let (backend, test_host) = backend();
        let result = backend.enqueue(request("r1")).unwrap();
        test_host.advance_micros(1_000);
        backend.enqueue(request("r2")).unwrap();
        assert_eq!(backend.get_result("r1").unwrap(), result);
        let r2 = backend.get_result("r2").unwrap();
        assert_eq!(
            r2.enqueued_at.map(|at| at.timestamp_micros()),
            Some(T0 + 1_000)
        );
    }

    #[test]
    fn get_result_of_a_missing_id_says_the_id() {
        let (backend, _) = backend();
        backend.enqueue(request("r1")).unwrap();
        let err = backend.get_result("nope").unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
        assert_eq!(err.message(), "nope");
    }

    #[test]
    fn results_are_kept_in_enqueue_order() {
        let (backend, _) = backend();
        for id in ["c", "a", "b"] {
            backend.enqueue(request(id)).unwrap();
        }
        assert_eq!(stored_ids(&backend), ["c", "a", "b"]);
    }

    #[test]
    fn clear_removes_every_result() {
        let (backend, _) = backend();
        backend.enqueue(request("r1")).unwrap();
        backend.enqueue(request("r2")).unwrap();
        backend.clear().unwrap();
        assert!(backend.results().unwrap().is_empty());
        let err = backend.get_result("r1").unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
        backend.enqueue(request("r1")).unwrap();
        assert_eq!(stored_ids(&backend), ["r1"]);
    }

    #[test]
    fn update_replaces_the_stored_result() {
        let (backend, _) = backend();
        backend.enqueue(request("r1")).unwrap();
        backend.enqueue(request("r2")).unwrap();
        let mut changed = backend.get_result("r1").unwrap();
        changed.status = TaskResultStatus::Successful;
        changed.return_value = Some(Json::encode(&42).unwrap());
        let payload = serde_json::to_string(&changed).unwrap();
        assert_eq!(backend.call_ext(UPDATE, &payload).unwrap(), "null");
        assert_eq!(backend.get_result("r1").unwrap(), changed);
        assert_eq!(stored_ids(&backend), ["r1", "r2"]);
    }

    /// Cancel fails a READY result with the cancellation error and leaves a finished one;
    /// retry makes the FAILED one READY again, errors kept.
    #[test]
    fn cancel_and_retry_change_the_stored_result() {
        let (backend, _) = backend();
        backend.enqueue(request("r1")).unwrap();
        let ask = |op: &str| backend.call_ext(op, r#"{"id":"r1"}"#).unwrap();
        let cancelled: control::CancelResponse =
            serde_json::from_str(&ask(control::CANCEL)).unwrap();
        assert_eq!(cancelled.outcome, control::CancelOutcome::Cancelled);
        let stored = backend.get_result("r1").unwrap();
        assert_eq!(stored.status, TaskResultStatus::Failed);
        assert!(control::is_cancellation(&stored.errors));
        assert_eq!(cancelled.result, stored);
        let again: control::CancelResponse = serde_json::from_str(&ask(control::CANCEL)).unwrap();
        assert_eq!(again.outcome, control::CancelOutcome::AlreadyFinished);
        let retried: control::RetryResponse = serde_json::from_str(&ask(control::RETRY)).unwrap();
        assert_eq!(retried.outcome, control::RetryOutcome::Retried);
        assert_eq!(retried.result.status, TaskResultStatus::Ready);
        assert_eq!(retried.result.errors.len(), 1);
        let not: control::RetryResponse = serde_json::from_str(&ask(control::RETRY)).unwrap();
        assert_eq!(not.outcome, control::RetryOutcome::NotFailed);
        let err = backend
            .call_ext(control::CANCEL, r#"{"id":"nope"}"#)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
    }

    #[test]
    fn update_of_a_missing_id_says_the_id() {
        let (backend, _) = backend();
        let mut ghost = backend.enqueue(request("r1")).unwrap();
        ghost.id = "ghost".into();
        let payload = serde_json::to_string(&ghost).unwrap();
        let err = backend.call_ext(UPDATE, &payload).unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
        assert_eq!(err.message(), "ghost");
    }

    #[test]
    fn a_bad_update_payload_is_an_invalid_request() {
        let (backend, _) = backend();
        let err = backend.call_ext(UPDATE, "{}").unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
        let prefix = format!("invalid {UPDATE} payload: ");
        assert!(err.message().starts_with(&prefix), "{err}");
    }

    #[test]
    fn enqueue_many_stores_all_in_order_and_signals_each() {
        let (backend, test_host) = backend();
        let returned = backend.enqueue_many(vec![request("a"), request("b"), request("c")]);
        let returned = returned.unwrap();
        assert_eq!(ids(&returned), ["a", "b", "c"]);
        assert_eq!(backend.results().unwrap(), returned);
        assert!(returned
            .iter()
            .all(|r| r.status == TaskResultStatus::Ready && r.enqueued_at.is_some()));
        let signals: Vec<_> = returned
            .into_iter()
            .map(|r| (Signal::TASK_ENQUEUED, r))
            .collect();
        assert_eq!(test_host.signals(), signals);
    }

    #[test]
    fn enqueue_of_a_stored_id_is_refused_and_signals_nothing() {
        let (backend, test_host) = backend();
        backend.enqueue(request("a")).unwrap();
        already_stored(backend.enqueue(request("a")).unwrap_err(), "a");
        assert_eq!(stored_ids(&backend), ["a"]);
        assert_eq!(test_host.signals().len(), 1);
    }

    #[test]
    fn other_operations_are_not_supported() {
        let (backend, _) = backend();
        let errors = [
            ("rescue", backend.rescue().unwrap_err()),
            ("migrate", backend.migrate().unwrap_err()),
            (
                "taskhost.prune",
                backend.call_ext("taskhost.prune", "{}").unwrap_err(),
            ),
        ];
        for (operation, err) in errors {
            assert_eq!(err.kind, ErrorKind::NOT_SUPPORTED, "{operation}");
            let message = format!("This backend does not support '{operation}'.");
            assert_eq!(err.message(), message);
        }
    }

    #[test]
    fn check_reports_nothing() {
        let (backend, _) = backend();
        assert_eq!(backend.check().unwrap(), []);
    }

    #[test]
    fn options_are_rejected_by_name() {
        let mut params = params();
        params
            .options
            .insert("results_limit".to_string(), 10.into());
        let err = DummyBackend::new(params, test_host().host()).err().unwrap();
        assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS);
        assert_eq!(
            err.message(),
            "Unknown option(s) for DummyBackend 'default': 'results_limit'. \
             This backend takes no options."
        );
    }

    #[test]
    fn creating_a_backend_logs_one_debug_event() {
        let test_host = test_host();
        let mut params = params();
        params.alias = "log-check".to_string();
        let (built, logs) = test_host.capture_logs(|| DummyBackend::new(params, test_host.host()));
        assert!(built.is_ok());
        let logs: Vec<_> = logs.iter().map(|l| (l.level, l.message.as_str())).collect();
        assert_eq!(
            logs,
            [(LogLevel::DEBUG, "DummyBackend created alias=log-check")]
        );
    }
}
