//! Cancel and retry on the reference backends: the Dummy backend cancels a READY result and
//! retries a FAILED one; the Immediate backend (which runs a task at enqueue, so nothing is
//! ever left to cancel) answers with a typed error naming the backend.

use serde_json::json;
use taskhost::{Cancellation, Error, TaskResultStatus};
use taskhost_e2e::TestConfig;
use taskhost_plugin_api::TaskDescription;

#[test]
fn the_dummy_backend_cancels_a_ready_result_and_retries_it() {
    let _config =
        TestConfig::new("[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n");
    let backend = taskhost::default_task_backend().unwrap();
    let task = TaskDescription::new("taskhost_worker_app::record_key");
    let mut result = backend
        .enqueue_json(&task, vec![json!("k")], Default::default())
        .unwrap();
    assert_eq!(result.cancel().unwrap(), Cancellation::Cancelled);
    assert!(result.is_cancelled());
    result.retry().unwrap();
    assert_eq!(result.status(), TaskResultStatus::Ready);
    assert!(!result.is_cancelled());
}

#[test]
fn the_immediate_backend_says_it_cannot_cancel_naming_itself() {
    let _config = TestConfig::new(
        "[tasks.fast]\nbackend = \"taskhost.backends.immediate.ImmediateBackend\"\n",
    );
    let backend = taskhost::task_backends().get("fast").unwrap();
    for err in [
        backend
            .cancel("0190c0de-0000-7000-8000-000000000000")
            .unwrap_err(),
        backend
            .retry("0190c0de-0000-7000-8000-000000000000")
            .unwrap_err(),
    ] {
        let Error::NotSupported(message) = err else {
            panic!("not NotSupported: {err:?}");
        };
        assert!(
            message.starts_with(
                "Backend 'fast' (taskhost.backends.immediate.ImmediateBackend) does not support"
            ),
            "{message}"
        );
    }
}
