//! Unit tests: the backend called directly, with `TestHost` standing in for taskhost.

use super::*;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use taskhost_plugin_api::testing::TestHost;
use taskhost_plugin_api::{Json, LogLevel, TaskDescription, TaskResultStatus};

const START_MICROS: i64 = 1_700_000_000_000_000;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("acme-spool-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn params(alias: &str, options: Value, config_dir: Option<&Path>) -> BackendParams {
    BackendParams {
        alias: alias.to_string(),
        backend: "acme.spool.SpoolBackend".to_string(),
        queues: Vec::new(),
        options: options.as_object().unwrap().clone(),
        config_dir: config_dir.map(|d| d.display().to_string()),
    }
}

/// A backend spooling to `spool.jsonl` in a fresh temp dir, on a host whose clock is fixed.
fn backend() -> (SpoolBackend, TestHost, TempDir) {
    let dir = TempDir::new();
    let test_host = TestHost::new();
    test_host.set_now_micros(START_MICROS);
    let params = params(
        "default",
        json!({ "path": dir.0.join("spool.jsonl") }),
        None,
    );
    let backend = SpoolBackend::new(params, test_host.host()).unwrap();
    (backend, test_host, dir)
}

fn new_error(options: Value, config_dir: Option<&Path>) -> PluginError {
    let params = params("default", options, config_dir);
    SpoolBackend::new(params, TestHost::new().host())
        .err()
        .expect("the options are invalid")
}

fn request(id: &str) -> EnqueueRequest {
    let task = TaskDescription {
        priority: 10,
        ..TaskDescription::new("tests::add")
    };
    let args = Json::encode(&json!([1, "two\nlines"])).unwrap();
    let kwargs = Json::encode(&json!({ "k": 3 })).unwrap();
    EnqueueRequest {
        kwargs,
        ..EnqueueRequest::new(id, task, args)
    }
}

fn enqueue(backend: &SpoolBackend, id: &str) -> TaskResultData {
    backend.enqueue(request(id)).unwrap()
}

fn lines(backend: &SpoolBackend) -> Vec<String> {
    let text = std::fs::read_to_string(backend.path()).unwrap();
    text.lines().map(str::to_string).collect()
}

fn append_raw(backend: &SpoolBackend, text: &str) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(backend.path())
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn ids(results: &[TaskResultData]) -> Vec<&str> {
    results.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn capabilities_are_defer_priority_and_get_result() {
    let (backend, _, _dir) = backend();
    let expected = Capabilities::DEFER | Capabilities::PRIORITY | Capabilities::GET_RESULT;
    assert_eq!(backend.capabilities(), expected);
}

#[test]
fn enqueue_appends_one_ready_line_and_sends_task_enqueued() {
    let (backend, test_host, _dir) = backend();
    let result = enqueue(&backend, "r1");
    assert_eq!(result.id, "r1");
    assert_eq!(result.status, TaskResultStatus::Ready);
    assert_eq!(result.enqueued_at.unwrap().timestamp_micros(), START_MICROS);
    assert_eq!(result.args.as_str(), r#"[1,"two\nlines"]"#);
    assert_eq!(result.backend, "default");
    let lines = lines(&backend);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let stored: TaskResultData = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(stored, result);
    assert_eq!(test_host.signals(), vec![(Signal::TASK_ENQUEUED, result)]);
}

#[test]
fn arguments_with_line_breaks_between_values_still_make_one_line() {
    let (backend, _, _dir) = backend();
    let mut spread = request("r1");
    spread.args = Json::from_text("[1,\n 2]").unwrap();
    let result = backend.enqueue(spread).unwrap();
    assert_eq!(lines(&backend).len(), 1);
    assert_eq!(backend.get_result("r1").unwrap().args.as_str(), "[1,2]");
    assert_eq!(result.args.as_str(), "[1,\n 2]");
}

#[test]
fn get_result_returns_the_last_line_with_the_id() {
    let (backend, _, _dir) = backend();
    let first = enqueue(&backend, "r1");
    enqueue(&backend, "r2");
    assert_eq!(backend.get_result("r1").unwrap(), first);
    let mut done = first.clone();
    done.status = TaskResultStatus::Successful;
    done.return_value = Some(Json::encode(&42).unwrap());
    append_raw(
        &backend,
        &format!("{}\n", serde_json::to_string(&done).unwrap()),
    );
    assert_eq!(backend.get_result("r1").unwrap(), done);
}

#[test]
fn get_result_of_a_missing_id_says_the_id() {
    let (backend, _, _dir) = backend();
    enqueue(&backend, "r1");
    let err = backend.get_result("nope").unwrap_err();
    assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
    assert_eq!(err.message(), "nope");
}

#[test]
fn enqueue_many_appends_all_in_order_and_results_lists_every_line() {
    let (backend, test_host, _dir) = backend();
    enqueue(&backend, "c");
    let returned = backend
        .enqueue_many(vec![request("a"), request("b")])
        .unwrap();
    assert_eq!(ids(&returned), ["a", "b"]);
    assert_eq!(ids(&backend.results().unwrap()), ["c", "a", "b"]);
    assert_eq!(test_host.signals().len(), 3);
}

#[test]
fn unreadable_and_unfinished_lines_are_skipped() {
    let (backend, _, _dir) = backend();
    enqueue(&backend, "r1");
    append_raw(&backend, "not json\n");
    enqueue(&backend, "r2");
    append_raw(&backend, "{\"id\": \"half-writ");
    assert_eq!(ids(&backend.results().unwrap()), ["r1", "r2"]);
    // The next line starts after the fragment: the fragment is one unreadable line.
    append_raw(&backend, "\n");
    enqueue(&backend, "r3");
    assert_eq!(ids(&backend.results().unwrap()), ["r1", "r2", "r3"]);
}

#[test]
fn concurrent_enqueues_never_interleave() {
    let (backend, _, _dir) = backend();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let backend = &backend;
            scope.spawn(move || {
                for i in 0..25 {
                    enqueue(backend, &format!("{t}-{i}"));
                }
            });
        }
    });
    let lines = lines(&backend);
    assert_eq!(lines.len(), 100);
    let mut seen: Vec<taskhost_plugin_api::Text> = lines
        .iter()
        .map(|l| serde_json::from_str::<TaskResultData>(l).unwrap().id)
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 100);
}

#[test]
fn a_relative_path_is_resolved_against_the_config_dir() {
    let dir = TempDir::new();
    let params = params("default", json!({ "path": "rel.jsonl" }), Some(&dir.0));
    let backend = SpoolBackend::new(params, TestHost::new().host()).unwrap();
    assert_eq!(backend.path(), dir.0.join("rel.jsonl"));
    enqueue(&backend, "r1");
    assert!(dir.0.join("rel.jsonl").is_file());
}

#[test]
fn bad_options_are_invalid_options_naming_the_option() {
    let cases = [
        (json!({}), "option 'path' is required"),
        (json!({ "path": 3 }), "option 'path' is not a file: 3"),
        (json!({ "path": "" }), "option 'path' is not a file: \"\""),
        (
            json!({ "path": "x", "size": 1 }),
            "unknown option 'size'; it takes only 'path'",
        ),
    ];
    for (options, message) in cases {
        let err = new_error(options.clone(), None);
        assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS, "{options}");
        assert_eq!(err.message(), message);
    }
}

#[test]
fn a_spool_file_that_cannot_be_opened_is_named() {
    let dir = TempDir::new();
    let path = dir.0.join("missing-dir").join("spool.jsonl");
    let err = new_error(json!({ "path": path }), None);
    assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS);
    let expected = format!("cannot open the spool file '{}': ", path.display());
    assert!(err.message().starts_with(&expected), "{err}");
}

#[test]
fn check_reports_a_removed_spool_file() {
    let (backend, _, _dir) = backend();
    assert_eq!(backend.check().unwrap(), []);
    std::fs::remove_file(backend.path()).unwrap();
    let messages = backend.check().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].level, "error");
    assert!(messages[0].message.contains("was removed"), "{messages:?}");
    let err = backend.get_result("r1").unwrap_err();
    assert_eq!(err.kind, ErrorKind::UNAVAILABLE);
}

#[test]
fn what_a_spool_does_not_do_is_not_supported() {
    let (backend, _, _dir) = backend();
    let calls = [
        ("clear", backend.clear().err()),
        ("rescue", backend.rescue().err()),
        (
            "acme.spool.compact",
            backend.call_ext("acme.spool.compact", "{}").err(),
        ),
    ];
    for (operation, err) in calls {
        let err = err.unwrap();
        assert_eq!(err.kind, ErrorKind::NOT_SUPPORTED, "{operation}");
        let expected = format!("This backend does not support '{operation}'.");
        assert_eq!(err.message(), expected);
    }
}

#[test]
fn creating_a_backend_logs_one_info_event_naming_the_alias_and_the_file() {
    let dir = TempDir::new();
    let test_host = TestHost::new();
    let path = dir.0.join("log.jsonl");
    let params = params("log-check", json!({ "path": path }), None);
    let (created, logs) = test_host.capture_logs(|| SpoolBackend::new(params, test_host.host()));
    created.unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].level, LogLevel::INFO);
    assert_eq!(logs[0].target, "acme_spool");
    let expected = format!(
        "SpoolBackend created alias=log-check path={}",
        path.display()
    );
    assert_eq!(logs[0].message, expected);
}
