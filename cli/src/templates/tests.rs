//! Unit tests: the backend called directly, with `TestHost` standing in for taskhost.

use super::*;
use taskhost_plugin_api::testing::TestHost;
use taskhost_plugin_api::{ErrorKind, Json, TaskDescription, TaskResultStatus};

#[test]
fn enqueue_keeps_a_ready_result_and_sends_task_enqueued() {
    let test_host = TestHost::new();
    test_host.set_now_micros(1_700_000_000_000_000);
    let backend = MemoBackend::new(BackendParams::default(), test_host.host()).unwrap();
    let result = backend.enqueue(request("r1")).unwrap();
    assert_eq!(result.status, TaskResultStatus::Ready);
    assert_eq!(result.enqueued_at, Some(test_host.host().now()));
    assert_eq!(backend.get_result("r1").unwrap(), result);
    assert_eq!(
        test_host.signals(),
        [(Signal::TASK_ENQUEUED, result.clone())]
    );
    assert_eq!(backend.results().unwrap(), [result]);
}

#[test]
fn an_unknown_id_does_not_exist() {
    let backend = MemoBackend::new(BackendParams::default(), TestHost::new().host()).unwrap();
    backend.enqueue(request("r1")).unwrap();
    let err = backend.get_result("nope").unwrap_err();
    assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
    assert_eq!(err.message(), "nope");
}

#[test]
fn options_are_refused_naming_the_option() {
    let mut params = BackendParams::default();
    params.options.insert("colour".into(), "red".into());
    let err = MemoBackend::new(params, TestHost::new().host())
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS);
    assert_eq!(
        err.message(),
        "unknown option 'colour'; this backend takes none"
    );
}

/// What the host would send for a task `my_app::tasks::send(1, "two")` with priority 10.
fn request(id: &str) -> EnqueueRequest {
    let task = TaskDescription {
        priority: 10,
        ..TaskDescription::new("my_app::tasks::send")
    };
    EnqueueRequest::new(id, task, Json::encode(&(1, "two")).unwrap())
}
