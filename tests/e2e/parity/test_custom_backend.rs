//! Django's `tests/tasks/test_custom_backend.py` (`CustomBackendTestCase`; `CustomTaskTestCase`
//! does not apply, see `docs/django-parity.md`).
//!
//! Django's custom backend is a class in the test module; ours is a plugin file built from
//! `tests/fixtures/panicking`: `PanickingBackend` accepts any options, declares only
//! `PRIORITY | GET_RESULT`, and panics in every method, so each test here also shows that
//! validation happens in the host, before the plugin is called.

use super::tasks::{noop_task, noop_task_async};
use super::{records, DUMMY, PANICKING};
use serde_json::json;
use taskhost::validate_task;
use taskhost::{default_task_backend, task_backends, Error, TaskOptions};
use taskhost_e2e::{logs, TestConfig};
use taskhost_plugin_api::Capabilities;

/// `CustomBackendTestCase`'s settings: `default` on the custom backend with a `prefix` option,
/// and `no_enqueue` on a backend that cannot be built.
fn settings() -> TestConfig {
    TestConfig::new(&format!(
        "[tasks.default]\nbackend = \"{PANICKING}\"\nqueues = []\nenqueue_on_commit = false\n\
         [tasks.default.options]\nprefix = \"PREFIX: \"\n\
         [tasks.no_enqueue]\nbackend = \"taskhost.fixtures.panicking.PanicOnCreateBackend\"\n"
    ))
}

// Mirrors test_using_correct_backend.
#[test]
fn a_custom_backend_gets_its_alias_and_options() {
    let _s = settings();
    let backend = default_task_backend().unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &backend,
        &task_backends().get("default").unwrap()
    ));
    assert_eq!(backend.class_name(), "PanickingBackend");
    assert_eq!(backend.alias(), "default");
    assert_eq!(
        serde_json::Value::Object(backend.options().clone()),
        json!({"prefix": "PREFIX: "})
    );
}

// Mirrors test_enqueue_async_task_on_non_async_backend.
#[tokio::test]
async fn an_async_task_is_refused_before_the_plugin_is_called() {
    let _s = settings();
    let expected = Error::InvalidTask("Backend does not support async Tasks.".into());
    let backend = default_task_backend().unwrap();
    assert_eq!(
        backend
            .validate_task(&noop_task_async.description())
            .unwrap_err(),
        expected
    );
    assert_eq!(noop_task_async.enqueue(1, 3).unwrap_err(), expected);
    assert_eq!(noop_task_async.aenqueue(1, 3).await.unwrap_err(), expected);
}

// Mirrors test_backend_does_not_support_priority. No plugin in this workspace leaves out
// `supports_priority`, so this runs Django's validate_task (the host's, which runs before any
// plugin call) on the capabilities such a plugin would declare.
#[test]
fn priority_is_refused_by_a_backend_without_priority_support() {
    let _s = settings();
    let without_priority = Capabilities::ASYNC_TASK | Capabilities::DEFER;
    for priority in [10, 101] {
        let description = taskhost_plugin_api::TaskDescription {
            priority,
            ..noop_task.description()
        };
        assert_eq!(
            validate_task(without_priority, &[], &description).unwrap_err(),
            Error::InvalidTask("Backend does not support setting priority of tasks.".into()),
            "priority {priority}: 'does not support' comes before the range check"
        );
    }
    // The fixture declares PRIORITY, so the same `using` passes on it.
    let copy = noop_task.using(TaskOptions::new().priority(10)).unwrap();
    assert_eq!(copy.priority(), 10);
}

// Mirrors test_options as far as it applies: Django's custom enqueue writes to the app's log.
// A plugin's `tracing` records reach the application's subscriber on the `taskhost::plugin`
// target (the Dummy backend writes one when it is created).
#[test]
fn a_plugins_log_records_reach_the_applications_subscriber() {
    // A backend created with no subscriber listening first, as happens in any process that
    // starts logging late.
    {
        let _quiet = TestConfig::new(&format!("[tasks.default]\nbackend = \"{DUMMY}\"\n"));
        default_task_backend().unwrap();
    }
    let _s = TestConfig::new(&format!("[tasks.logged]\nbackend = \"{DUMMY}\"\n"));
    let ((), captured) = logs::capture("taskhost::plugin=debug", || {
        task_backends().get("logged").unwrap();
    });
    let created: Vec<_> = records(&captured)
        .into_iter()
        .filter(|r| r.target == "taskhost::plugin" && r.text.contains("DummyBackend created"))
        .collect();
    assert_eq!(created.len(), 1, "{}", captured.text());
    assert_eq!(created[0].level, "DEBUG");
}

// Mirrors test_no_enqueue: a backend that cannot be built is reported when a task is pointed at
// its alias. (A plugin without `enqueue` cannot be compiled: the Backend trait requires it.)
#[test]
fn a_backend_that_cannot_be_built_is_reported_at_using() {
    let _s = settings();
    match noop_task.using(TaskOptions::new().backend("no_enqueue")) {
        Err(Error::InvalidTaskBackend { alias, message, .. }) => {
            assert_eq!(alias.as_deref(), Some("no_enqueue"));
            assert_eq!(
                message,
                "Backend 'taskhost.fixtures.panicking.PanicOnCreateBackend' (alias \
                 'no_enqueue') could not be created: plugin panicked: PanicOnCreateBackend \
                 refuses to be built"
            );
        }
        other => panic!("expected InvalidTaskBackend, got {other:?}"),
    }
}
