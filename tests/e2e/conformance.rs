//! `taskhost plugin test`: the conformance suite from the command line, against the real files.

use std::process::Command;
use taskhost_e2e::{plugin_file, taskhost_bin};

const DUMMY: &str = "taskhost.backends.dummy.DummyBackend";
const PANICKING: &str = "taskhost.fixtures.panicking.PanickingBackend";

/// Run `taskhost plugin test <args>`: exit code, stdout, stderr.
fn plugin_test(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(taskhost_bin())
        .args(["plugin", "test"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn file(lib_name: &str) -> String {
    plugin_file(lib_name).display().to_string()
}

/// `N passed, N failed, N skipped` as numbers.
fn summary(line: &str) -> (u32, u32, u32) {
    let n: Vec<u32> = line
        .split(", ")
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(n.len(), 3, "{line}");
    (n[0], n[1], n[2])
}

#[test]
fn the_dummy_plugin_passes_with_a_summary_line() {
    let dummy = file("taskhost_backends_dummy");
    let (code, out, err) = plugin_test(&[&dummy, "--class", DUMMY]);
    assert_eq!(code, 0, "{out}{err}");
    let last = out.lines().last().unwrap();
    let (passed, failed, _) = summary(last);
    assert!(passed > 10 && failed == 0, "{out}");
    assert!(out.lines().next().unwrap() == "PASS loads", "{out}");
    for line in out.lines().take(out.lines().count() - 1) {
        assert!(
            line.starts_with("PASS ") || line.starts_with("SKIP "),
            "{line}\n{out}"
        );
    }
}

#[test]
fn the_panicking_fixture_fails_without_a_crash() {
    let panicking = file("taskhost_fixtures_panicking");
    let (code, out, err) = plugin_test(&[&panicking, "--class", PANICKING]);
    assert_eq!(code, 1, "{out}{err}");
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(fails.len() >= 10, "{out}");
    assert!(
        fails
            .iter()
            .any(|l| l.starts_with("FAIL enqueue_result: ") && l.contains("panicked")),
        "{out}"
    );
    let (_, failed, _) = summary(out.lines().last().unwrap());
    assert_eq!(failed as usize, fails.len(), "{out}");
}

#[test]
fn json_output_parses_and_matches_the_exit_code() {
    let dummy = file("taskhost_backends_dummy");
    let (code, out, err) = plugin_test(&[&dummy, "--class", DUMMY, "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["failed"], 0, "{out}");
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks[0]["name"], "loads");
    assert_eq!(checks[0]["status"], "passed");
    assert!(checks
        .iter()
        .all(|c| c["status"] == "passed" || c["status"] == "skipped"));

    let panicking = file("taskhost_fixtures_panicking");
    let (code, out, _) = plugin_test(&[&panicking, "--class", PANICKING, "--format", "json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["failed"].as_u64().unwrap() >= 10, "{out}");
}

#[test]
fn bad_options_are_an_error() {
    let dummy = file("taskhost_backends_dummy");
    let (code, out, err) = plugin_test(&[&dummy, "--class", DUMMY, "--options", "[1]"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("--options must be a JSON object"), "{err}");
    let (code, out, _) = plugin_test(&[&dummy, "--class", DUMMY, "--options", r#"{"x": 1}"#]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL loads: "), "{out}");
}

#[test]
fn the_class_name_alone_is_completed_from_the_librarys_manifest() {
    let dummy = file("taskhost_backends_dummy");
    let (code, out, err) = plugin_test(&[&dummy, "--class", "DummyBackend"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("PASS loads\nPASS manifest\n"), "{out}");
    let (full_code, full_out, _) = plugin_test(&[&dummy, "--class", DUMMY]);
    assert_eq!((code, &out), (full_code, &full_out));
}

#[test]
fn a_class_name_the_library_does_not_export_lists_those_it_does() {
    let dummy = file("taskhost_backends_dummy");
    let (code, out, err) = plugin_test(&[&dummy, "--class", "MemoBackend"]);
    assert_eq!(code, 1, "{out}{err}");
    let first = out.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "FAIL loads: '{dummy}': module 'taskhost.backends.dummy' has no class 'MemoBackend'; \
             it exports: DummyBackend; give one of them, alone or in full (e.g. \
             'taskhost.backends.dummy.DummyBackend')"
        )
    );
}
