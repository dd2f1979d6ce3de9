//! The `ImmediateBackend` class: Django's `ImmediateBackend`, run through the host.

use taskhost_plugin_api::{
    Backend, BackendParams, Capabilities, EnqueueRequest, Host, PluginError, Signal, TaskError,
    TaskOutcome, TaskResultData, TaskResultStatus,
};

/// Runs each task at once, in the caller's thread, and returns the finished result.
///
/// Capabilities: `supports_async_task` and `supports_priority` (priority has no effect). No
/// `run_after`, no `get_result`. Takes no options.
pub struct ImmediateBackend {
    alias: String,
    host: Host,
    /// Appended to `worker_ids` of every result this instance runs (Django:
    /// `get_random_string(32)`, made once per backend instance).
    worker_id: String,
}

impl ImmediateBackend {
    /// Build the backend for one alias of the host's config; it takes no options.
    pub fn new(params: BackendParams, host: Host) -> Result<Self, PluginError> {
        if !params.options.is_empty() {
            let keys: Vec<String> = params.options.keys().map(|k| format!("'{k}'")).collect();
            return Err(PluginError::invalid_options(format!(
                "Unknown option(s) for ImmediateBackend '{}': {}. This backend takes no options.",
                params.alias,
                keys.join(", ")
            )));
        }
        tracing::debug!(alias = %params.alias, "ImmediateBackend created");
        Ok(Self {
            alias: params.alias,
            host,
            worker_id: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// The id this instance appends to `worker_ids` when it runs a task.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }
}

impl Backend for ImmediateBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::ASYNC_TASK | Capabilities::PRIORITY
    }

    /// Django's `enqueue` + `_execute_task`: stamp, signal, run, record, signal. A failing
    /// task is recorded on the result, never returned as an error.
    fn enqueue(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
        let mut result = TaskResultData::ready(request, &self.alias);
        result.enqueued_at = Some(self.host.now());
        self.host.send_signal(Signal::TASK_ENQUEUED, &result);

        let started = self.host.now();
        result.status = TaskResultStatus::Running;
        result.started_at = Some(started);
        result.last_attempted_at = Some(started);
        result.worker_ids.push(self.worker_id.clone().into());
        self.host.send_signal(Signal::TASK_STARTED, &result);

        // The host could not run the task at all (no task at that path): a FAILED run too.
        let outcome = self
            .host
            .run_task(&result)
            .unwrap_or_else(|e| TaskOutcome::Failed {
                error: TaskError {
                    exception_class_path: "taskhost::RunError".into(),
                    traceback: format!("{}\n", e.message()).into(),
                },
            });
        result.finished_at = Some(self.host.now());
        match outcome {
            TaskOutcome::Successful { return_value } => {
                result.status = TaskResultStatus::Successful;
                result.return_value = Some(return_value);
            }
            TaskOutcome::Failed { error } => {
                result.status = TaskResultStatus::Failed;
                result.errors.push(error);
            }
        }
        self.host.send_signal(Signal::TASK_FINISHED, &result);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskhost_plugin_api::testing::TestHost;
    use taskhost_plugin_api::{ErrorKind, Json, LogLevel, TaskDescription};

    const T0: i64 = 1_700_000_000_000_000;

    /// A host at `T0` with three tasks: `tests::add` sums its arguments, `tests::fails`
    /// fails, and `tests::slow` takes 5 ms of the host's clock.
    fn test_host() -> TestHost {
        let test_host = TestHost::new();
        test_host.set_now_micros(T0);
        test_host.register("tests::add", |result| {
            let args: Vec<i64> = result.args.parse().unwrap();
            let return_value = Json::encode(&args.iter().sum::<i64>()).unwrap();
            TaskOutcome::Successful { return_value }
        });
        test_host.register("tests::fails", |_| TaskOutcome::Failed { error: boom() });
        let clock = test_host.clone();
        test_host.register("tests::slow", move |_| {
            clock.advance_micros(5_000);
            TaskOutcome::Successful {
                return_value: Json::null(),
            }
        });
        test_host
    }

    fn boom() -> TaskError {
        TaskError {
            exception_class_path: "tests::Boom".into(),
            traceback: "tests::Boom: it broke\n".into(),
        }
    }

    fn params() -> BackendParams {
        BackendParams {
            alias: "default".to_string(),
            backend: "taskhost.backends.immediate.ImmediateBackend".to_string(),
            ..BackendParams::default()
        }
    }

    fn backend() -> (ImmediateBackend, TestHost) {
        let test_host = test_host();
        (
            ImmediateBackend::new(params(), test_host.host()).unwrap(),
            test_host,
        )
    }

    fn request(id: &str, path: &str) -> EnqueueRequest {
        let args = Json::encode(&[1, 2]).unwrap();
        EnqueueRequest {
            kwargs: Json::from_text(r#"{"two":3}"#).unwrap(),
            ..EnqueueRequest::new(id, TaskDescription::new(path), args)
        }
    }

    /// The result's timestamps, in microseconds: enqueued, started, last attempted, finished.
    fn stamps(result: &TaskResultData) -> [Option<i64>; 4] {
        [
            result.enqueued_at,
            result.started_at,
            result.last_attempted_at,
            result.finished_at,
        ]
        .map(|at| at.map(|at| at.timestamp_micros()))
    }

    #[test]
    fn capabilities_are_async_task_and_priority() {
        let (backend, _) = backend();
        assert_eq!(
            backend.capabilities(),
            Capabilities::ASYNC_TASK | Capabilities::PRIORITY
        );
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
        let result = backend.enqueue(request("r1", "tests::add")).unwrap();
        assert_eq!(result.id, "r1");
        assert_eq!(result.status, TaskResultStatus::Successful);
        assert_eq!(result.return_value, Some(Json::encode(&3).unwrap()));
        assert_eq!(result.args.as_str(), "[1,2]");
        assert_eq!(result.kwargs.as_str(), r#"{"two":3}"#);
        assert_eq!(result.backend, "default");
        assert_eq!(result.worker_ids, vec![backend.worker_id().to_string()]);
        assert!(result.errors.is_empty());
    }

    #[test]
    fn timestamps_come_from_the_host_clock_like_django() {
        let (backend, _) = backend();
        let result = backend.enqueue(request("r1", "tests::slow")).unwrap();
        // Enqueued and started before the task ran, finished after its 5 ms.
        assert_eq!(
            stamps(&result),
            [Some(T0), Some(T0), Some(T0), Some(T0 + 5_000)]
        );
    }

    #[test]
    fn the_task_runs_with_status_running_and_the_worker_id_appended() {
        let (backend, test_host) = backend();
        backend.enqueue(request("r1", "tests::add")).unwrap();
        let runs = test_host.runs();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, "r1");
        assert_eq!(runs[0].status, TaskResultStatus::Running);
        assert_eq!(runs[0].worker_ids, vec![backend.worker_id().to_string()]);
        assert_eq!(stamps(&runs[0]), [Some(T0), Some(T0), Some(T0), None]);
    }

    #[test]
    fn enqueue_sends_enqueued_started_finished_in_order() {
        let (backend, test_host) = backend();
        let result = backend.enqueue(request("r1", "tests::slow")).unwrap();
        let signals = test_host.signals();
        let seen: Vec<_> = signals.iter().map(|(s, r)| (*s, r.status)).collect();
        assert_eq!(
            seen,
            vec![
                (Signal::TASK_ENQUEUED, TaskResultStatus::Ready),
                (Signal::TASK_STARTED, TaskResultStatus::Running),
                (Signal::TASK_FINISHED, TaskResultStatus::Successful),
            ]
        );
        let (_, enqueued) = &signals[0];
        assert_eq!(stamps(enqueued), [Some(T0), None, None, None]);
        assert!(enqueued.worker_ids.is_empty());
        let (_, started) = &signals[1];
        assert_eq!(stamps(started), [Some(T0), Some(T0), Some(T0), None]);
        assert_eq!(started.worker_ids, vec![backend.worker_id().to_string()]);
        assert_eq!(
            signals[2].1, result,
            "task_finished carries the returned result"
        );
    }

    #[test]
    fn a_failing_task_is_recorded_not_raised() {
        let (backend, test_host) = backend();
        let result = backend.enqueue(request("r1", "tests::fails")).unwrap();
        assert_eq!(result.status, TaskResultStatus::Failed);
        assert_eq!(result.errors, vec![boom()]);
        assert_eq!(result.return_value, None);
        assert_eq!(stamps(&result), [Some(T0); 4]);
        let (signal, finished) = test_host.signals().pop().unwrap();
        assert_eq!(signal, Signal::TASK_FINISHED);
        assert_eq!(finished, result);
    }

    #[test]
    fn a_task_the_host_cannot_run_fails_with_a_run_error() {
        let (backend, test_host) = backend();
        let result = backend.enqueue(request("r1", "tests::missing")).unwrap();
        assert_eq!(result.status, TaskResultStatus::Failed);
        let error = TaskError {
            exception_class_path: "taskhost::RunError".into(),
            traceback: "task 'tests::missing' is not registered with this TestHost\n".into(),
        };
        assert_eq!(result.errors, vec![error]);
        assert!(result.finished_at.is_some());
        let signals: Vec<_> = test_host.signals().into_iter().map(|(s, _)| s).collect();
        assert_eq!(
            signals,
            [
                Signal::TASK_ENQUEUED,
                Signal::TASK_STARTED,
                Signal::TASK_FINISHED
            ]
        );
    }

    #[test]
    fn enqueue_many_runs_each_in_order() {
        let (backend, test_host) = backend();
        let requests = vec![request("a", "tests::add"), request("b", "tests::fails")];
        let results = backend.enqueue_many(requests).unwrap();
        let seen: Vec<_> = results.iter().map(|r| (r.id.as_str(), r.status)).collect();
        assert_eq!(
            seen,
            [
                ("a", TaskResultStatus::Successful),
                ("b", TaskResultStatus::Failed)
            ]
        );
        let ran: Vec<_> = test_host.runs().into_iter().map(|r| r.id).collect();
        assert_eq!(ran, ["a", "b"]);
        assert_eq!(test_host.signals().len(), 6);
    }

    #[test]
    fn get_result_is_not_supported_with_djangos_message() {
        let (backend, _) = backend();
        let err = backend.get_result("r1").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NOT_SUPPORTED);
        assert_eq!(
            err.message(),
            "This backend does not support retrieving or refreshing results."
        );
    }

    #[test]
    fn results_clear_and_the_queue_store_are_not_supported() {
        let (backend, _) = backend();
        let errors = [
            ("results", backend.results().unwrap_err()),
            ("clear", backend.clear().unwrap_err()),
            ("rescue", backend.rescue().unwrap_err()),
            ("acme.op", backend.call_ext("acme.op", "{}").unwrap_err()),
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
        params.options.insert("retries".to_string(), 3.into());
        params.options.insert("colour".to_string(), "blue".into());
        let err = ImmediateBackend::new(params, test_host().host())
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS);
        assert!(err
            .message()
            .starts_with("Unknown option(s) for ImmediateBackend 'default': "));
        assert!(err.message().contains("'retries'") && err.message().contains("'colour'"));
        assert!(
            err.message().ends_with("'. This backend takes no options."),
            "{err}"
        );
    }

    #[test]
    fn creating_a_backend_logs_one_debug_event() {
        let test_host = test_host();
        let mut params = params();
        params.alias = "log-check".to_string();
        let (built, logs) =
            test_host.capture_logs(|| ImmediateBackend::new(params, test_host.host()));
        assert!(built.is_ok());
        let logs: Vec<_> = logs.iter().map(|l| (l.level, l.message.as_str())).collect();
        assert_eq!(
            logs,
            [(LogLevel::DEBUG, "ImmediateBackend created alias=log-check")]
        );
    }
}
