//! The suite against the workspace's real plugin files: the shipped backends pass every check
//! that applies to them; the panicking fixture fails checks without bringing the process down.

use serde_json::{json, Map, Value};
use taskhost_e2e::external::build_external;
use taskhost_e2e::{plugin_file, workspace_root};
use taskhost_testkit::{Conformance, Report, Status};

/// Every check of `report` either passed or was skipped; the report printed on failure.
fn assert_conforms(report: &Report) {
    assert!(report.is_success(), "{report}");
    assert!(report.passed() > 10, "{report}");
    assert_eq!(report.get("loads").unwrap().status, Status::Passed);
}

fn skipped(report: &Report, name: &str) -> bool {
    matches!(
        report.get(name).map(|c| &c.status),
        Some(Status::Skipped(_))
    )
}

fn options(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn immediate_conforms() {
    let report = Conformance::new(
        plugin_file("taskhost_backends_immediate"),
        "taskhost.backends.immediate.ImmediateBackend",
    )
    .run();
    assert_conforms(&report);
    // No get_result (NotSupported), no queue store.
    assert!(skipped(&report, "get_result_round_trip"), "{report}");
    assert!(skipped(&report, "claim_marks_running"), "{report}");
    // Runs at once: the signals check saw started and finished; defer is refused by the host.
    assert_eq!(report.get("signals").unwrap().status, Status::Passed);
    assert_eq!(report.get("defer").unwrap().status, Status::Passed);
    // Nothing to cancel or retry: the operations are not offered.
    assert!(skipped(&report, "cancel_ready"), "{report}");
    assert!(skipped(&report, "retry_failed"), "{report}");
}

#[test]
fn dummy_conforms() {
    let report = Conformance::new(
        plugin_file("taskhost_backends_dummy"),
        "taskhost.backends.dummy.DummyBackend",
    )
    .run();
    assert_conforms(&report);
    // Dummy does not declare supports_get_result, but implements it: the round trip is checked.
    assert_eq!(
        report.get("get_result_round_trip").unwrap().status,
        Status::Passed,
        "{report}"
    );
    assert!(skipped(&report, "expired_lease_rescued"), "{report}");
    // Cancel of a READY result and retry of a FAILED one; nothing runs here.
    for check in ["cancel_ready", "retry_failed"] {
        assert_eq!(
            report.get(check).unwrap().status,
            Status::Passed,
            "{report}"
        );
    }
    assert!(skipped(&report, "cancel_running"), "{report}");
}

#[test]
fn database_on_sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tasks.db").display());
    let report = Conformance::new(
        plugin_file("taskhost_backends_database"),
        "taskhost.backends.database.DatabaseBackend",
    )
    .options(options(json!({ "url": url })))
    .run();
    assert_conforms(&report);
    assert_eq!(report.skipped(), 0, "{report}");
    // supports_unique: concurrent enqueues under one key got one task.
    assert_eq!(
        report.get("unique_enqueue").unwrap().status,
        Status::Passed,
        "{report}"
    );
}

/// `examples/custom-backend`, the sample third-party backend, built on its own against the SDK
/// alone, as its author would test it.
#[test]
fn the_custom_example_conforms() {
    let library = build_external(
        "custom-backend",
        &workspace_root().join("examples").join("custom-backend"),
        "acme_spool",
    );
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool.jsonl");
    let report = Conformance::new(&library, "SpoolBackend")
        .options(options(json!({ "path": spool })))
        .run();
    assert_conforms(&report);
}

#[test]
fn the_panicking_fixture_fails_checks_and_the_process_lives() {
    let report = Conformance::new(
        plugin_file("taskhost_fixtures_panicking"),
        "taskhost.fixtures.panicking.PanickingBackend",
    )
    .run();
    assert!(!report.is_success(), "{report}");
    assert_eq!(report.get("loads").unwrap().status, Status::Passed);
    let Status::Failed(reason) = &report.get("enqueue_result").unwrap().status else {
        panic!("enqueue_result must fail:\n{report}");
    };
    assert!(reason.contains("panicked inside the plugin"), "{reason}");
    assert!(report.failed() >= 10, "{report}");
    // Still alive, and the suite still runs.
    let again = Conformance::new(
        plugin_file("taskhost_backends_dummy"),
        "taskhost.backends.dummy.DummyBackend",
    )
    .run();
    assert!(again.is_success(), "{again}");
}

#[test]
fn a_constructor_that_panics_fails_loading_and_skips_the_rest() {
    let report = Conformance::new(
        plugin_file("taskhost_fixtures_panicking"),
        "taskhost.fixtures.panicking.PanicOnCreateBackend",
    )
    .run();
    let Status::Failed(reason) = &report.get("loads").unwrap().status else {
        panic!("loads must fail:\n{report}");
    };
    assert!(reason.contains("refuses to be built"), "{reason}");
    assert_eq!(report.failed(), 1, "{report}");
    assert_eq!(report.skipped(), report.checks.len() - 1, "{report}");
}

#[test]
fn the_class_name_alone_is_completed_from_the_librarys_manifest() {
    let report = Conformance::new(plugin_file("taskhost_backends_dummy"), "DummyBackend").run();
    assert_conforms(&report);
    assert_eq!(report.get("manifest").unwrap().status, Status::Passed);
}

#[test]
fn a_class_name_the_library_does_not_export_fails_loading_with_those_it_does() {
    let dummy = plugin_file("taskhost_backends_dummy");
    let report = Conformance::new(&dummy, "NoSuchBackend").run();
    assert_eq!(
        report.get("loads").unwrap().status,
        Status::Failed(format!(
            "'{}': module 'taskhost.backends.dummy' has no class 'NoSuchBackend'; it exports: \
             DummyBackend; give one of them, alone or in full (e.g. \
             'taskhost.backends.dummy.DummyBackend')",
            dummy.display()
        ))
    );
}

#[test]
fn a_library_under_the_wrong_file_name_or_missing_fails_loading() {
    let dummy = plugin_file("taskhost_backends_dummy");
    let report = Conformance::new(&dummy, "taskhost.backends.other.DummyBackend").run();
    let Status::Failed(reason) = &report.get("loads").unwrap().status else {
        panic!("loads must fail:\n{report}");
    };
    assert!(reason.contains("taskhost_backends_other"), "{reason}");

    let missing = dummy.with_file_name(taskhost::plugin::name::library_file_name(
        "taskhost_backends_missing",
    ));
    let report = Conformance::new(&missing, "taskhost.backends.missing.MissingBackend").run();
    let Status::Failed(reason) = &report.get("loads").unwrap().status else {
        panic!("loads must fail:\n{report}");
    };
    assert!(reason.contains("cannot copy the library"), "{reason}");
}

#[test]
fn options_reach_the_backend() {
    // Dummy takes no options: the constructor's refusal is the `loads` failure.
    let report = Conformance::new(
        plugin_file("taskhost_backends_dummy"),
        "taskhost.backends.dummy.DummyBackend",
    )
    .options(options(json!({ "bogus": 1 })))
    .run();
    let Status::Failed(reason) = &report.get("loads").unwrap().status else {
        panic!("loads must fail:\n{report}");
    };
    assert!(reason.contains("'bogus'"), "{reason}");
}
