//! A panic inside a plugin comes back as an error; the process carries on.

use serde_json::Map;
use taskhost::{task_backends, Error};
use taskhost_e2e::TestConfig;
use taskhost_plugin_api::{
    ClaimRequest, Completion, ErrorKind, LeaseRequest, TaskDescription, TaskOutcome,
};

fn description() -> TaskDescription {
    TaskDescription {
        path: "e2e::panics::nothing".into(),
        priority: 0,
        queue_name: "default".into(),
        backend: "panicky".into(),
        run_after: None,
        takes_context: false,
        is_async: false,
        max_attempts: None,
        timeout_secs: None,
    }
}

fn assert_panic_error(result: Result<impl std::fmt::Debug, Error>, method: &str) {
    match result {
        Err(Error::Backend {
            alias,
            kind,
            message,
        }) => {
            assert_eq!(alias, "panicky");
            assert_eq!(kind, ErrorKind::PANIC);
            assert_eq!(
                message,
                format!("plugin panicked: PanickingBackend::{method} panicked on purpose")
            );
        }
        other => panic!("{method}: expected a panic error, got {other:?}"),
    }
}

#[test]
fn every_panicking_method_returns_an_error_and_the_process_lives() {
    let _c = TestConfig::new(
        "[tasks.panicky]\nbackend = \"taskhost.fixtures.panicking.PanickingBackend\"\nqueues = []\n",
    );
    let backend = task_backends().get("panicky").unwrap();
    assert_panic_error(
        backend.enqueue_json(&description(), vec![], Map::new()),
        "enqueue",
    );
    assert_panic_error(backend.get_result("x"), "get_result");
    assert_panic_error(backend.check(), "check");
    assert_panic_error(backend.results(), "results");
    assert_panic_error(backend.call_ext("acme.op", "{}"), "call_ext");
    let claim = ClaimRequest {
        worker_id: "w".into(),
        queues: None,
        exclude_queues: vec![],
        limit: 1,
        lease_secs: 1.0,
        start_now: None,
    };
    assert_panic_error(backend.claim(&claim), "claim");
    assert_panic_error(
        backend.enqueue_many_json(vec![(description(), vec![]), (description(), vec![])]),
        "enqueue_many",
    );
    let completion = Completion {
        id: "x".into(),
        worker_id: "w".into(),
        lease_token: 1,
        outcome: TaskOutcome::Successful {
            return_value: taskhost_plugin_api::Json::null(),
        },
        retry_at: None,
        started_at: None,
    };
    assert_panic_error(backend.complete(vec![completion]), "complete");
    let leases = LeaseRequest {
        worker_id: "w".into(),
        leases: vec![("x".into(), 1)],
        lease_secs: 1.0,
    };
    assert_panic_error(backend.renew_leases(&leases), "renew_leases");
    assert_panic_error(backend.release(&leases), "release");
    // And again: nothing was poisoned by the first round.
    assert_panic_error(
        backend.enqueue_json(&description(), vec![], Map::new()),
        "enqueue",
    );
    // `close` panics when the backend is dropped: caught too, and the plugin loads again.
    drop(backend);
    drop(_c);
    let _c = TestConfig::new(
        "[tasks.panicky]\nbackend = \"taskhost.fixtures.panicking.PanickingBackend\"\nqueues = []\n",
    );
    let again = task_backends().get("panicky").unwrap();
    assert_panic_error(again.check(), "check");
}

#[test]
fn a_panicking_constructor_is_an_invalid_backend() {
    let _c = TestConfig::new(
        "[tasks.panicky]\nbackend = \"taskhost.fixtures.panicking.PanicOnCreateBackend\"\n",
    );
    match task_backends().get("panicky") {
        Err(Error::InvalidTaskBackend { message, .. }) => assert_eq!(
            message,
            "Backend 'taskhost.fixtures.panicking.PanicOnCreateBackend' (alias 'panicky') could \
             not be created: plugin panicked: PanicOnCreateBackend refuses to be built"
        ),
        other => panic!("expected InvalidTaskBackend, got {other:?}"),
    }
}
